"""Public path of the Dask runner (``policyengine.backends.parallel.dask_cluster``), kept stable."""

from policyengine.backends.parallel.dask_cluster import evaluate_dask, run_dask

__all__ = ["evaluate_dask", "run_dask"]
