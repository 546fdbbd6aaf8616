"""Stage 1, load: policy YAML -> plain Python values plus a table of source positions.

PyYAML is used only to compose a node graph; we build the values ourselves so that
(a) every key and value keeps its ``line:column`` for error messages later in the pipeline,
(b) only plain YAML is accepted: no ``!!python/...`` or any other tag constructs objects,
(c) duplicate keys are errors instead of silently keeping the last one,
(d) alias expansion is bounded (a "billion laughs" file is refused, not expanded), and
(e) booleans are YAML 1.2's ``true``/``false`` only, so the key ``on:`` stays the string "on",
(f) numbers are never misread: YAML 1.1 sexagesimals (``1:30``) and leading-zero octals
    (``010``) stay text, and NaN, infinities and unreadable tagged scalars are refused, and
(g) hostile input is refused in bounded time and memory, always with a located problem: files
    over ``MAX_BYTES``, nesting deeper than ``MAX_DEPTH`` (checked while scanning and composing,
    before PyYAML's recursive composer can run out of stack), more than ``MAX_NODES`` values,
    control characters and lone surrogates (raw or written as escapes).
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from yaml.composer import Composer
from yaml.error import Mark
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from policyengine.errors import Code, Location, ProblemSink

Path_ = tuple[str | int, ...]
MAX_NODES: Final = 200_000  # values built from one file, aliases expanded
MAX_DEPTH: Final = 64  # nested lists and mappings
MAX_BYTES: Final = 5 * 1024 * 1024  # one policy or params file, as UTF-8 (5 MiB)
# the characters YAML refuses when written raw; refused too when written as escapes ("\0")
_NON_PRINTABLE: Final = Reader.NON_PRINTABLE

_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
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
    """YAML 1.1 resolution minus yes/no/on/off booleans, sexagesimals and leading-zero octals
    (YAML 1.2 core schema behaviour): ``1:30`` and ``010`` stay text, never 90 or 8."""


_Resolver.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}
_Resolver.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_INT_RE: Final = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0o[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""",
    re.X,
)
_FLOAT_RE: Final = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Resolver.add_implicit_resolver(_INT, _INT_RE, list("-+0123456789"))
_Resolver.add_implicit_resolver(_FLOAT, _FLOAT_RE, list("-+0123456789."))
_TRUE: Final = ("true", "True", "TRUE")
_FALSE: Final = ("false", "False", "FALSE")


class _Refused(yaml.MarkedYAMLError):
    """The document is refused while it is being scanned or composed (too deep, too big)."""


def _too_deep(mark: Mark | None) -> _Refused:
    return _Refused(
        None,
        None,
        f"the document nests lists and mappings deeper than {MAX_DEPTH} levels",
        mark,
    )


class _ComposeLoader(Reader, Scanner, Parser, Composer, _Resolver):
    """Composes nodes only; construction is ours (see module doc)."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)
        self.depth = 0
        self.nodes = 0

    # PyYAML's composer recurses once per level: refuse deep documents before it can overflow
    # the stack (and before the scanner's simple-key bookkeeping grows with the depth)
    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level > MAX_DEPTH:
            raise _too_deep(self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Refused(
                None,
                None,
                f"the document has more than {MAX_NODES} values",
                self.peek_event().start_mark,  # type: ignore[no-untyped-call]
            )
        return super().compose_node(parent, index)

    def compose_sequence_node(self, anchor: Any) -> SequenceNode:
        self._descend()
        try:
            return super().compose_sequence_node(anchor)
        finally:
            self.depth -= 1

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        self._descend()
        try:
            return super().compose_mapping_node(anchor)
        finally:
            self.depth -= 1

    def _descend(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH + 1:
            self.depth -= 1
            raise _too_deep(self.peek_event().start_mark)  # type: ignore[no-untyped-call]


@dataclass
class Source:
    """One loaded YAML document: its values and where each of them was written."""

    file: str
    data: Any
    values: dict[Path_, Location] = field(default_factory=dict)
    keys: dict[Path_, Location] = field(default_factory=dict)
    # values the loader refused (and already reported): they stand as null in ``data``
    spoiled: tuple[Path_, ...] = ()

    def doc_path(self, path: Path_) -> Path_:
        """``path`` without the segments that are not in the document (pydantic's tags)."""
        walked: list[str | int] = []
        for seg in path:
            cand = (*walked, seg)
            if cand in self.values or cand in self.keys:
                walked.append(seg)
        return tuple(walked)

    def is_spoiled(self, path: Path_) -> bool:
        """Is a problem at ``path`` a knock-on of a value the loader refused: at that value,
        inside it, or at the mapping or list that holds it?"""
        if not self.spoiled:
            return False
        at = self.doc_path(path)
        return any(
            at[: len(s)] == s or (len(at) >= len(s) - 1 and s[: len(at)] == at)
            for s in self.spoiled
        )

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


def _short(value: str) -> str:
    return repr(value) if len(value) <= 40 else repr(value[:40]) + f"... ({len(value)} characters)"


class _Builder:
    def __init__(self, file: str, sink: ProblemSink) -> None:
        self.file = file
        self.sink = sink
        self.values: dict[Path_, Location] = {}
        self.keys: dict[Path_, Location] = {}
        self.count = 0
        self.bombed = False
        self.path: Path_ = ()
        self.spoiled: list[Path_] = []

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
        self.path = path
        if node.tag not in _PLAIN_TAGS:
            self.refuse(
                Code.FORBIDDEN_TAG,
                f"tag {node.tag!r} is not allowed in a policy",
                node,
                "policies are plain YAML: remove the tag",
            )
            return None
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if isinstance(node, SequenceNode) and node.tag == _SEQ:
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode) and node.tag == _MAP:
            return self._mapping(node, path, depth)
        kind = "list" if isinstance(node, SequenceNode) else "mapping"
        self.refuse(
            Code.MALFORMED_YAML, f"tag {node.tag!r} does not fit a {kind}", node, "remove the tag"
        )
        return None

    def scalar(self, node: ScalarNode) -> Any:
        """A scalar's value; what cannot be read exactly is reported, never guessed."""
        value: str = node.value
        tag = node.tag
        if tag in (_STR, "tag:yaml.org,2002:timestamp"):
            bad = _NON_PRINTABLE.search(value)
            if bad is not None:
                char = ord(bad.group())
                kind = "a lone surrogate" if 0xD800 <= char <= 0xDFFF else "a control character"
                self.refuse(
                    Code.MALFORMED_YAML,
                    f"the text contains the character U+{char:04X} ({kind}), which a policy "
                    "may not carry",
                    node,
                    "remove the character, or the escape that writes it",
                )
                return None
            return value
        if tag == _NULL:
            return None
        if tag == _BOOL and value in _TRUE + _FALSE:
            return value in _TRUE
        number: float | None = None
        if tag == _INT and _INT_RE.match(value):
            digits = value.replace("_", "")
            based = digits.lstrip("+-")[:2].lower() in ("0b", "0o", "0x")
            try:
                return int(digits, 0) if based else int(digits)
            except ValueError:  # more digits than Python reads (sys.get_int_max_str_digits())
                self.refuse(
                    Code.BAD_VALUE,
                    f"the number has {len(digits)} digits; a policy number has at most "
                    f"{sys.get_int_max_str_digits()}",
                    node,
                )
                return None
        if tag == _FLOAT:
            try:
                number = float(value.replace("_", "")) if "n" not in value.lower() else math.nan
            except ValueError:
                number = None
        if tag == _FLOAT and number is not None:
            if not math.isfinite(number):
                self.refuse(
                    Code.BAD_VALUE,
                    f"{_short(value)} is not a finite number; a policy number is finite "
                    "(no NaN or infinity)",
                    node,
                )
                return None
            return number
        self.refuse(
            Code.MALFORMED_YAML,
            f"cannot read {_short(value)} as {tag.rsplit(':', 1)[-1]}",
            node,
            "remove the tag, or write a value of its kind",
        )
        return None

    def refuse(self, code: Code, message: str, node: Node, hint: str | None = None) -> None:
        """Report a value the loader could not build; it stands as null, and the validation
        problems that null would cause at that place are not reported again (``spoiled``)."""
        self.sink.add(code, message, self.loc(node), hint)
        self.spoiled.append(self.path)

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
            refused = len(self.spoiled)
            key = str(self.build(key_node, (*path, "<key>"), depth + 1))
            if len(self.spoiled) > refused:
                continue  # a key the loader refused (reported): its value is not read
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


def _at(text: str, position: int, name: str) -> Location:
    before = text[:position]
    line = before.count("\n")
    return Location(name, line + 1, position - (before.rfind("\n") + 1) + 1)


def _too_large(name: str, sink: ProblemSink) -> None:
    sink.add(
        Code.ALIAS_TOO_LARGE,
        f"the file is larger than {MAX_BYTES:,} bytes ({MAX_BYTES // (1024 * 1024)} MiB), "
        "the most a policy or params file may be",
        Location(name, 1, 1),
        "split the policy into several files of one folder",
    )


# What an author typing with a Chinese input method writes where YAML needs ASCII: a colon
# after a key, a comma in a flow list, a space of indentation; and a tab in the indentation.
_FULL_COLON: Final = re.compile(r"^[ \t]*(?:- +)*[^\s#'\"{}\[\],:：]+[^:#{}\[\]\n]*?(：)")
_FULL_COMMA: Final = re.compile(r"[\[{][^\]}#\n]*?(，)")
_INDENT: Final = re.compile(r"^[ \t\u3000]*")
_LOOK_BACK: Final = 3  # lines before the parser's mark (it stops after the culprit's line)


def _culprit(text: str, mark_line: int, name: str) -> tuple[str, Location, str] | None:
    """The likely cause of a YAML syntax error near the parser's mark (0-based line), as
    (message, where, what to do): a full-width colon, comma or space where YAML needs the
    ASCII one, or a tab in the indentation. None when no such character is near."""
    lines = text.split("\n")
    for n in range(min(mark_line, len(lines) - 1), max(-1, mark_line - _LOOK_BACK - 1), -1):
        line = lines[n]
        indent = _INDENT.match(line)
        lead = indent.group(0) if indent else ""
        if "\t" in lead:
            return (
                "malformed YAML: a tab character in the indentation",
                Location(name, n + 1, lead.index("\t") + 1),
                "YAML indents with spaces; replace the tab",
            )
        if "\u3000" in lead:
            return (
                "malformed YAML: a full-width space (U+3000) in the indentation",
                Location(name, n + 1, lead.index("\u3000") + 1),
                "YAML indents with spaces: write ' ' (ASCII) instead of '\u3000'",
            )
        for pattern, ascii_, full in ((_FULL_COLON, ":", "："), (_FULL_COMMA, ",", "，")):
            found = pattern.search(line)
            if found is not None:
                return (
                    "malformed YAML: a full-width "
                    f"{'colon' if ascii_ == ':' else 'comma'} {full!r} "
                    f"(U+{ord(full):04X}) where YAML needs {ascii_!r}",
                    Location(name, n + 1, found.start(1) + 1),
                    f"write {ascii_!r} (ASCII) instead of {full!r}",
                )
    return None


def load_source(path: Path, sink: ProblemSink, display: str | None = None) -> Source | None:
    """Read one YAML policy file; problems go to ``sink``; None if nothing usable was read.

    At most ``MAX_BYTES`` are read, whatever the file is (a device or a pipe never ends).
    """
    name = display or str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a path with a NUL character
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        sink.add(
            Code.FILE_NOT_FOUND,
            f"cannot read the policy file: {reason}",
            Location(name, 1, 1),
        )
        return None
    if len(raw) > MAX_BYTES:
        _too_large(name, sink)
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        sink.add(
            Code.MALFORMED_YAML,
            f"the policy file is not UTF-8 text (byte {exc.start} cannot be read)",
            _at(raw[: exc.start].decode("utf-8", "replace"), exc.start, name)
            if exc.start < MAX_BYTES
            else Location(name, 1, 1),
        )
        return None
    return load_text(text, name, sink)


def load_text(text: str, name: str, sink: ProblemSink) -> Source | None:
    """Compose and build one YAML document; problems go to ``sink``; None if nothing usable."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            sink.add(Code.MALFORMED_YAML, "the policy text is not UTF-8", Location(name, 1, 1))
            return None
    if not isinstance(text, str):
        sink.add(
            Code.MALFORMED_YAML,
            f"policy text must be a str, not {type(text).__name__}",
            Location(name, 1, 1),
        )
        return None
    if len(text) > MAX_BYTES or (
        len(text) * 4 > MAX_BYTES and len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES
    ):
        _too_large(name, sink)
        return None
    try:
        loader = _ComposeLoader(text)
    except ReaderError as exc:  # a control character or a lone surrogate, written raw
        char = exc.character if isinstance(exc.character, int) else 0
        kind = "a lone surrogate" if 0xD800 <= char <= 0xDFFF else "a control character"
        sink.add(
            Code.MALFORMED_YAML,
            f"the text contains the character U+{char:04X} ({kind}), which YAML does not allow",
            _at(text, exc.position, name),
            "remove the character; save the file as UTF-8 text",
        )
        return None
    try:
        root = loader.get_single_node()
    except _Refused as exc:
        mark = exc.problem_mark
        sink.add(
            Code.ALIAS_TOO_LARGE,
            str(exc.problem),
            Location(name, mark.line + 1, mark.column + 1) if mark else Location(name, 1, 1),
            f"a policy has at most {MAX_NODES} values and {MAX_DEPTH} levels of nesting",
        )
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name, 1, 1)
        culprit = _culprit(text, mark.line if mark else 0, name)
        if culprit is not None:
            sink.add(Code.MALFORMED_YAML, *culprit)
            return None
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
    except RecursionError:  # pragma: no cover - the depth limit comes first
        sink.add(
            Code.ALIAS_TOO_LARGE,
            "the document nests too deeply",
            Location(name, 1, 1),
            f"a policy has at most {MAX_DEPTH} levels of nesting",
        )
        return None
    finally:
        if "loader" in locals():
            loader.dispose()
    if root is None:
        sink.add(Code.MISSING_FIELD, "the file is empty", Location(name, 1, 1))
        return None
    builder = _Builder(name, sink)
    data = builder.build(root, (), 0)
    if builder.bombed:
        return None
    return Source(name, data, builder.values, builder.keys, tuple(builder.spoiled))
