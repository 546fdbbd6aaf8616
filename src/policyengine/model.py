"""Public path of the policy language's models (``policyengine.language.model``), kept stable:
``policy_json_schema()`` is the editor schema."""

from policyengine.language.model import *  # noqa: F403
from policyengine.language.model import policy_json_schema as policy_json_schema
