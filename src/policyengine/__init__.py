"""policyengine: customer-management manuals as YAML policies, evaluated over event histories.

import policyengine as pe
policy = pe.load_policy("policies/huixiao/resources.yaml")
decision = policy.evaluate(events, as_of="2026-03-05T12:00:00+08:00")
decision.owner("C1"), decision.penalties, decision.obligations, decision.trace
policy.resume(decision.snapshot(), new_events)       # incremental
policy.evaluate_many(events, workers=2)              # many subjects over processes
"""

from policyengine.calendars import Calendar
from policyengine.errors import (
    Code,
    EvaluationError,
    EventError,
    Location,
    PolicyEngineError,
    PolicyError,
    Problem,
    SnapshotError,
    WorkerError,
)
from policyengine.policy import Policy, load_params_file, load_policy, load_policy_text
from policyengine.runtime.decision import (
    Award,
    Classification,
    Decision,
    Metric,
    Notice,
    Obligation,
    OwnershipSpan,
    Penalty,
    Rejection,
    TraceEntry,
    Violation,
)
from policyengine.tools.explain import explain
from policyengine.tools.report import render_html
from policyengine.version import __version__

__all__ = [
    "Award",
    "Calendar",
    "Classification",
    "Code",
    "Decision",
    "EvaluationError",
    "EventError",
    "Location",
    "Metric",
    "Notice",
    "Obligation",
    "OwnershipSpan",
    "Penalty",
    "Policy",
    "PolicyEngineError",
    "PolicyError",
    "Problem",
    "Rejection",
    "SnapshotError",
    "TraceEntry",
    "Violation",
    "WorkerError",
    "__version__",
    "explain",
    "load_params_file",
    "load_policy",
    "load_policy_text",
    "render_html",
]
