"""Optional backends in the tests: skipped with the reason where they cannot run, required in CI.

durable_rules builds a C extension and does not import on Python 3.13 (pyproject's dev extra
leaves it out there), so a test that needs it skips with that reason on such a Python instead of
failing the whole run at collection. CI sets ``POLICYENGINE_REQUIRE_OPTIONAL=1``: there a backend
missing on a Python that supports it is a failure, so the differential tests cannot quietly vanish.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

import pytest

# the oldest Python each optional backend does *not* support (pyproject's environment markers)
UNSUPPORTED_FROM = {"durable": (3, 13)}


def require(module: str) -> ModuleType:
    """Import ``module`` (``"durable.engine"``) or skip the calling test or module, saying why."""
    root = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        unsupported = sys.version_info[:2] >= UNSUPPORTED_FROM.get(root, (99, 0))
        where = f"Python {sys.version_info.major}.{sys.version_info.minor}"
        if os.environ.get("POLICYENGINE_REQUIRE_OPTIONAL") == "1" and not unsupported:
            pytest.fail(f"{module} is required here ({where}) but cannot be imported: {exc}")
        why = "is not supported on" if unsupported else "is not installed on"
        pytest.skip(f"{root} {why} {where} ({exc})", allow_module_level=True)
        raise  # unreachable: pytest.skip raises


def available(module: str) -> bool:
    """Whether ``module`` imports; for a test that also checks a second backend when it can."""
    try:
        require(module)
    except pytest.skip.Exception:
        return False
    return True
