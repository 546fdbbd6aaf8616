"""How one customer's history cost grows with its length: issue 14's quadratic queries.

Run from the repository root::

    .venv/bin/python benchmarks/history_scaling.py            # 2k, 4k, 8k expenses
    .venv/bin/python benchmarks/history_scaling.py 1000 2000  # other sizes

One project (customer P1) of ``policies/customer_management`` is approved and has one budget
line; then N expenses follow, one a minute. Each expense triggers the spend-cap rule (the sum of
every earlier expense of the project) and the budget-line rules (the latest budget line of the
expense's line). Printed: seconds of ``policy.evaluate(events, resumable=False)`` (best of 2,
``time.perf_counter``) and the ratio to the previous size: about 2 for linear cost per event
doubling N, about 4 for quadratic. A measurement, not a test: the machine's noise is in it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import policyengine as pe

ROOT = Path(__file__).resolve().parents[1]
MINUTE = 60


def expenses(n: int) -> list[dict[str, Any]]:
    base = 1_772_330_400  # 2026-03-01T10:00:00+08:00, in seconds
    out: list[dict[str, Any]] = [
        {"id": "pa", "type": "project_approved", "at": base, "customer": "P1", "employee": "E1"},
        {
            "id": "bl",
            "type": "budget_line_submitted",
            "at": base + 1,
            "customer": "P1",
            "employee": "E1",
            "line": "travel",
            "amount": 100,
        },
    ]
    for i in range(n):
        out.append(
            {
                "id": f"x{i}",
                "type": "expense_recorded",
                "at": base + 2 + i * MINUTE,
                "customer": "P1",
                "employee": "E1",
                "line": "travel",
                "amount": 1,
            }
        )
    for e in out:
        e["at"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(e["at"]))
    return out


def main(sizes: list[int]) -> None:
    policy = pe.load_policy(ROOT / "policies" / "customer_management")
    previous = None
    print(f"{'expenses':>9} {'seconds':>9} {'x previous':>11}")
    for n in sizes:
        events = expenses(n)
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            policy.evaluate(events, resumable=False)
            best = min(best, time.perf_counter() - t0)
        ratio = f"{best / previous:.2f}" if previous else ""
        print(f"{n:>9,} {best:>9.3f} {ratio:>11}")
        previous = best


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2000, 4000, 8000])
