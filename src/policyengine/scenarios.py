"""Public path of the scenario kit (``policyengine.tools.scenarios``), kept stable:
``collect``, ``run_suite``, ``coverage`` and ``mutate``."""

from policyengine.tools.scenarios import *  # noqa: F403
