"""One large history evaluated in shards of subjects, on all cores or on a Dask cluster,
with the single-process decision as the result (design: ``docs/parallel.md``).

``plan`` (what reaches across subjects) -> ``partition`` (the caller joins subjects into
shards) -> ``shard`` (the engine, observed through hooks) -> ``merge`` (phase 2) -> ``run``
(processes) or ``dask_cluster``.
"""

from policyengine.backends.parallel.dask_cluster import evaluate_dask, run_dask
from policyengine.backends.parallel.merge import merge
from policyengine.backends.parallel.partition import (
    DROPPED,
    REPLICATED,
    Partition,
    Read,
    Reader,
    assemble,
    partition,
    shard_events,
)
from policyengine.backends.parallel.plan import Colocation, Plan, TokenSide, plan
from policyengine.backends.parallel.run import Report, Run, evaluate_many, run
from policyengine.backends.parallel.shard import ShardResult, evaluate_shard
from policyengine.backends.parallel.spec import PolicySpec, policy_spec, rebuild

__all__ = [
    "DROPPED",
    "REPLICATED",
    "Colocation",
    "Partition",
    "Plan",
    "PolicySpec",
    "Read",
    "Reader",
    "Report",
    "Run",
    "ShardResult",
    "TokenSide",
    "assemble",
    "evaluate_dask",
    "evaluate_many",
    "evaluate_shard",
    "merge",
    "partition",
    "plan",
    "policy_spec",
    "rebuild",
    "run",
    "run_dask",
    "shard_events",
]
