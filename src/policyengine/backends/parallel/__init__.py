"""One large history evaluated in shards of subjects, on all cores or on a Dask cluster,
with the single-process decision as the result (design: ``docs/parallel.md``).

``planner`` (what reaches across subjects) -> ``partitioner`` (the caller joins subjects
into shards) -> ``shard`` (the engine, observed through hooks) -> ``merger`` (phase 2) ->
``runner`` (processes) or ``dask_cluster``.
"""

from policyengine.backends.parallel.dask_cluster import evaluate_dask, run_dask
from policyengine.backends.parallel.merger import merge
from policyengine.backends.parallel.partitioner import (
    DROPPED,
    REPLICATED,
    Partition,
    Read,
    Reader,
    assemble,
    partition,
    shard_events,
)
from policyengine.backends.parallel.planner import Colocation, Plan, TokenSide, plan
from policyengine.backends.parallel.runner import Report, Run, evaluate_many, run
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
