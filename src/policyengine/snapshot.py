"""Public path of incremental evaluation (``policyengine.backends.snapshot``), kept stable:
``history_of(snapshot)`` gives the events a refused snapshot holds."""

from policyengine.backends.snapshot import FORMAT, FORMAT_VERSION, history_of
from policyengine.runtime.decision import ResumeInfo

__all__ = ["FORMAT", "FORMAT_VERSION", "ResumeInfo", "history_of"]
