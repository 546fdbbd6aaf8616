"""``python -m policyengine``: the command line (``policyengine.cli``)."""

from policyengine.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
