"""``policyengine`` / ``python -m policyengine``: the command line (grows with the tools issue).

Exit codes follow OPA's: 0 clean, 1 a policy or input error, 2 test failures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import PolicyEngineError
from .policy import load_policy
from .scenarios import (
    MutationOutcome,
    PolicyCache,
    Result,
    collect,
    coverage,
    mutate,
    run_suite,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="policyengine")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="load and validate policies")
    check.add_argument("paths", nargs="+")
    ev = sub.add_parser("eval", help="evaluate a JSON history against a policy")
    ev.add_argument("policy")
    ev.add_argument("history")
    ev.add_argument("--as-of", default=None)
    test = sub.add_parser(
        "test", help="run the YAML scenarios of packs (policies/<pack>/tests/*.yaml)"
    )
    test.add_argument("paths", nargs="+", help="scenario files, pack folders, or a tree of packs")
    test.add_argument(
        "--coverage",
        type=float,
        default=None,
        metavar="PERCENT",
        help="fail when a pack's rule coverage is below PERCENT (e.g. 100)",
    )
    test.add_argument(
        "--mutate",
        action="store_true",
        help="nudge every duration, amount and count parameter; report mutations no scenario "
        "notices",
    )
    test.add_argument("--format", choices=("text", "json"), default="text")
    test.add_argument("-v", "--verbose", action="store_true", help="list passing scenarios too")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            for path in args.paths:
                load_policy(path)
            return 0
        if args.command == "test":
            return _test(args)
        policy = load_policy(args.policy)
        events = json.loads(Path(args.history).read_text(encoding="utf-8"))
        decision = policy.evaluate(events, as_of=args.as_of)
        print(
            json.dumps(
                decision.model_dump(mode="json", exclude={"trace"}), ensure_ascii=False, indent=2
            )
        )
        return 0
    except PolicyEngineError as exc:
        print(exc, file=sys.stderr)
        return 1


def _test(args: argparse.Namespace) -> int:
    """Scenarios, then coverage, then (on request) mutations; 2 if anything falls short."""
    failed = False
    report: list[dict[str, Any]] = []
    for path in args.paths:
        for suite in collect(path):
            cache = PolicyCache()
            results = run_suite(suite, cache)
            cov = coverage(load_policy(suite.policy_path), results)
            below = args.coverage is not None and cov.percent < args.coverage
            outcomes: list[MutationOutcome] = mutate(suite) if args.mutate else []
            survivors = [o for o in outcomes if o.survived and o.accepted is None]
            failed |= any(not r.passed for r in results) or below or bool(survivors)
            if args.format == "json":
                report.append(_json(suite.policy_path, results, cov, outcomes, below))
                continue
            _print_text(suite.policy_path, results, cov, outcomes, below, args.verbose)
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False, indent=2))
    return 2 if failed else 0


def _print_text(
    policy: Path,
    results: list[Result],
    cov: Any,
    outcomes: list[MutationOutcome],
    below: bool,
    verbose: bool,
) -> None:
    passed = sum(r.passed for r in results)
    print(f"{policy}: {passed}/{len(results)} scenarios pass")
    for r in results:
        if verbose or not r.passed:
            print(r.report())
    print(cov.report() + ("  BELOW THRESHOLD" if below else ""))
    if outcomes:
        killed = sum(not o.survived for o in outcomes)
        print(f"  mutations killed: {killed}/{len(outcomes)}")
        for o in outcomes:
            if o.survived:
                why = f" (accepted: {o.accepted})" if o.accepted else ""
                print(f"    survived: {o.mutation.label}{why}")


def _json(
    policy: Path,
    results: list[Result],
    cov: Any,
    outcomes: list[MutationOutcome],
    below: bool,
) -> dict[str, Any]:
    return {
        "policy": str(policy),
        "scenarios": [
            {
                "name": r.case.scenario.name,
                "location": str(r.case.location),
                "passed": r.passed,
                "failures": r.failures,
            }
            for r in results
        ],
        "coverage": {
            "percent": cov.percent,
            "never_fired": cov.never_fired,
            "clauses": cov.clauses,
            "below_threshold": below,
        },
        "mutations": [
            {
                "mutation": o.mutation.label,
                "killed_by": o.killed_by,
                "accepted": o.accepted,
            }
            for o in outcomes
        ],
    }


if __name__ == "__main__":
    sys.exit(main())
