"""Public path of the static analysis (``policyengine.tools.analysis``), kept stable."""

from policyengine.tools.analysis import CODES, Finding, analyze

__all__ = ["CODES", "Finding", "analyze"]
