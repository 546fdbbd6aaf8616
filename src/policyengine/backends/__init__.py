"""Other ways to run the runtime: resumable snapshots (``snapshot``), a second evaluator on
durable_rules (``durable``), many subjects over processes or a Dask cluster (``parallel``).
Each takes a ``Program`` and observes the engine through its ``Hooks``."""
