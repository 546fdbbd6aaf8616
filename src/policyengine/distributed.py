"""Public path of the parallel backend (``policyengine.backends.parallel``), kept stable:
``distributed.plan(policy)``, ``distributed.run(policy, events, workers=2)``, ``evaluate_dask``."""

from policyengine.backends.parallel import *  # noqa: F403
from policyengine.backends.parallel import __all__ as __all__
