"""The policy language: YAML with positions (``loader``) -> pydantic models (``model``) ->
one validated policy set (``validate``) -> closures and indexes (``compiler``) -> a
``Program`` (``program``), the value every later layer receives. Nothing here evaluates."""
