"""``policyengine`` / ``python -m policyengine``: the command line (grows with the tools issue)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import PolicyEngineError
from .policy import load_policy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="policyengine")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="load and validate policies")
    check.add_argument("paths", nargs="+")
    ev = sub.add_parser("eval", help="evaluate a JSON history against a policy")
    ev.add_argument("policy")
    ev.add_argument("history")
    ev.add_argument("--as-of", default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            for path in args.paths:
                load_policy(path)
            return 0
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


if __name__ == "__main__":
    sys.exit(main())
