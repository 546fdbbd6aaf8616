"""Public path of the property-testing kit (``policyengine.tools.testing``), kept stable:
``histories`` (hypothesis strategies from a policy's own declarations) and ``check``."""

from policyengine.tools.testing import *  # noqa: F403
