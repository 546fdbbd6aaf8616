"""Stage 1, load: policy YAML -> plain Python values plus a table of source positions.

PyYAML is used only to compose a node graph; we build the values ourselves so that
(a) every key and value keeps its ``line:column`` for error messages later in the pipeline,
(b) only plain YAML is accepted: no ``!!python/...`` or any other tag constructs objects,
(c) duplicate keys are errors instead of silently keeping the last one,
(d) alias expansion is bounded (a "billion laughs" file is refused, not expanded), and
(e) booleans are YAML 1.2's ``true``/``false`` only, so the key ``on:`` stays the string "on".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from policyengine.errors import Code, Location, ProblemSink

Path_ = tuple[str | int, ...]
MAX_NODES: Final = 200_000  # values built from one file, aliases expanded
MAX_DEPTH: Final = 64

_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_PLAIN_TAGS: Final = {
    _STR,
    _BOOL,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",  # kept as text: the policy language parses its own times
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:merge",
}


class _Resolver(Resolver):
    """YAML 1.1 resolution minus yes/no/on/off booleans (YAML 1.2 core schema behaviour)."""


_Resolver.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}
_Resolver.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class _ComposeLoader(Reader, Scanner, Parser, Composer, _Resolver):
    """Composes nodes only; construction is ours (see module doc)."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)


@dataclass
class Source:
    """One loaded YAML document: its values and where each of them was written."""

    file: str
    data: Any
    values: dict[Path_, Location] = field(default_factory=dict)
    keys: dict[Path_, Location] = field(default_factory=dict)

    def locate(self, path: Path_, *, key: bool = False) -> Location:
        """Best position for ``path``: the exact one, else the nearest enclosing value.

        Paths from pydantic may carry segments that are not in the document (union tags,
        model names); those are skipped rather than failing the lookup.
        """
        table = self.keys if key else self.values
        walked: list[str | int] = []
        best = self.values.get((), Location(self.file, 1, 1))
        for seg in path:
            cand = (*walked, seg)
            if cand in self.values or cand in self.keys:
                walked.append(seg)
                best = table.get(cand) or self.values.get(cand) or best
        return best


class _Builder:
    def __init__(self, file: str, sink: ProblemSink) -> None:
        self.file = file
        self.sink = sink
        self.values: dict[Path_, Location] = {}
        self.keys: dict[Path_, Location] = {}
        self.count = 0
        self.bombed = False
        self.scalars = SafeConstructor()

    def loc(self, node: Node) -> Location:
        mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)

    def build(self, node: Node, path: Path_, depth: int) -> Any:
        if self.bombed:
            return None
        self.count += 1
        if self.count > MAX_NODES or depth > MAX_DEPTH:
            self.bombed = True
            self.sink.add(
                Code.ALIAS_TOO_LARGE,
                "the document expands to too many values (aliases or nesting)",
                self.loc(node),
                f"a policy expands to at most {MAX_NODES} values and {MAX_DEPTH} levels; "
                "remove the alias chain",
            )
            return None
        self.values.setdefault(path, self.loc(node))
        if node.tag not in _PLAIN_TAGS:
            self.sink.add(
                Code.FORBIDDEN_TAG,
                f"tag {node.tag!r} is not allowed in a policy",
                self.loc(node),
                "policies are plain YAML: remove the tag",
            )
            return None
        if isinstance(node, ScalarNode):
            if node.tag in (_STR, "tag:yaml.org,2002:timestamp"):
                return node.value
            try:
                return self.scalars.construct_object(node, deep=True)
            except yaml.YAMLError as exc:
                self.sink.add(Code.MALFORMED_YAML, f"bad scalar: {exc}", self.loc(node))
                return None
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        return None  # pragma: no cover - composer yields only the three node kinds

    def _mapping(self, node: MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        pairs = list(node.value)
        merged: list[tuple[Node, Node]] = []
        for key_node, value_node in pairs:
            if key_node.tag == "tag:yaml.org,2002:merge":
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for src in sources:
                    if isinstance(src, MappingNode):
                        merged.extend(src.value)
                    else:
                        self.sink.add(Code.BAD_VALUE, "'<<' merges mappings only", self.loc(src))
        # merged keys first so explicit keys win, as YAML specifies
        explicit_keys = {k.value for k, _ in pairs if isinstance(k, ScalarNode)}
        for key_node, value_node in merged:
            if isinstance(key_node, ScalarNode) and key_node.value not in explicit_keys:
                key = str(key_node.value)
                self.keys.setdefault((*path, key), self.loc(key_node))
                out[key] = self.build(value_node, (*path, key), depth + 1)
        for key_node, value_node in pairs:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if not isinstance(key_node, ScalarNode):
                self.sink.add(Code.BAD_VALUE, "a key must be plain text", self.loc(key_node))
                continue
            key = str(self.build(key_node, (*path, "<key>"), depth + 1))
            if key in out and key in explicit_keys and (*path, key) in self.keys:
                first = self.keys[(*path, key)]
                self.sink.add(
                    Code.DUPLICATE_KEY,
                    f"duplicate key {key!r} (first at line {first.line})",
                    self.loc(key_node),
                    "each key may appear once in a mapping: merge or rename them",
                )
                continue
            self.keys[(*path, key)] = self.loc(key_node)
            out[key] = self.build(value_node, (*path, key), depth + 1)
        return out


def load_source(path: Path, sink: ProblemSink, display: str | None = None) -> Source | None:
    """Read one YAML policy file; problems go to ``sink``; None if nothing usable was read."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        sink.add(
            Code.FILE_NOT_FOUND,
            f"cannot read the policy file: {exc.strerror}",
            Location(name, 1, 1),
        )
        return None
    except UnicodeDecodeError:
        sink.add(Code.MALFORMED_YAML, "the policy file is not UTF-8 text", Location(name, 1, 1))
        return None
    return load_text(text, name, sink)


def load_text(text: str, name: str, sink: ProblemSink) -> Source | None:
    loader = _ComposeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name, 1, 1)
        sink.add(
            Code.MALFORMED_YAML,
            f"malformed YAML: {exc.problem or exc}",
            where,
            "fix the YAML syntax",
        )
        return None
    except yaml.YAMLError as exc:
        sink.add(Code.MALFORMED_YAML, f"malformed YAML: {exc}", Location(name, 1, 1))
        return None
    finally:
        loader.dispose()
    if root is None:
        sink.add(Code.MISSING_FIELD, "the policy file is empty", Location(name, 1, 1))
        return None
    builder = _Builder(name, sink)
    data = builder.build(root, (), 0)
    if builder.bombed:
        return None
    return Source(name, data, builder.values, builder.keys)
