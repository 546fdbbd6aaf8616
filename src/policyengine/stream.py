"""Public path of streaming evaluation (``policyengine.backends.stream``), kept stable:
``stream.evaluate_stream(policy, events, "out.jsonl")``, ``stream.groups``, ``stream.grouped``,
``stream.read_back``; ``FINAL_FIELDS``: what the final line holds."""

from policyengine.backends.stream import (
    FINAL_FIELDS,
    Group,
    JsonLinesWriter,
    ParquetWriter,
    Summary,
    evaluate_stream,
    grouped,
    groups,
    read_back,
)
from policyengine.backends.stream_routes import inert_types, party_routes, routes

__all__ = [
    "FINAL_FIELDS",
    "Group",
    "JsonLinesWriter",
    "ParquetWriter",
    "Summary",
    "evaluate_stream",
    "grouped",
    "groups",
    "inert_types",
    "party_routes",
    "read_back",
    "routes",
]
