"""``policyengine lsp``: a language server (LSP over stdio) for authors of policy YAML.

Diagnostics are ``policyengine check``'s problems of the open file, computed from the unsaved
text at every change (``lsp_index.check_text``: with the saved files of its pack). Completion,
hover and go-to-definition read the names of the pack the file belongs to (its event types and
fields, parameters, rules and clauses) from the last check; while the file does not load, the
last good load of that document (kept per document, in the server, never process-wide) fills in
what the broken text no longer declares. Which name a position asks for is read from the text
around the cursor (the key it follows: ``on:``, ``overrides:``, ``clause:``, ...); where that
name is declared comes from the loader's positions. pygls is imported by this module only, and
the command line imports this module only when ``lsp`` is run: pygls is an optional extra.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Final

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from policyengine.errors import Location
from policyengine.tools.lsp_index import Checked, Note, PackIndex, Symbol, check_text
from policyengine.version import __version__

SEVERITY: Final = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
}
_WORD: Final = re.compile(r"[\w\-]")
_KEY_VALUE: Final = re.compile(r"(\w+):\s*(?:\[(?:[^\]\[]*,)?\s*)?([\w\-.]*)$")
_ITEM: Final = re.compile(r"^(\s*)-\s+([\w\-.]*)$")
_KEY_LINE: Final = re.compile(r"^\s*(?:-\s+)?(\w+):\s*(?:#.*)?$")
_RULE_START: Final = re.compile(r"^(\s*)-\s+(?:\{\s*)?id:")
_ON: Final = re.compile(r"^\s*(?:-\s+)?(on|event):\s*(.*?)\s*(?:#.*)?$")
_TOP: Final = re.compile(r"^([A-Za-z_]\w*):")
_REF: Final = re.compile(r"\$(event|trigger|params)\.(\w*)$")
# the key a value follows -> the kind of name it takes (``id`` and ``rule``: see _kind_of)
_KINDS: Final = {
    "on": "events",
    "event": "events",
    "overrides": "rules",
    "rule": "rules",
    "clause": "clauses",
}


# ---------------------------------------------------------------- positions


def _units(line: str, column: int) -> int:
    """A code-point column as the UTF-16 units LSP counts."""
    return len(line[:column].encode("utf-16-le", "surrogatepass")) // 2


def _points(line: str, units: int) -> int:
    """LSP's UTF-16 column as a code-point index into ``line``."""
    count = 0
    for i, char in enumerate(line):
        if count >= units:
            return i
        count += 2 if ord(char) > 0xFFFF else 1
    return len(line)


def _line(lines: list[str], n: int) -> str:
    return lines[n] if 0 <= n < len(lines) else ""


def _range(lines: list[str], loc: Location) -> types.Range:
    """The range of the token a location points at (to the end of its word, at least one
    character), so that the editor underlines the name, not the whole line."""
    n = max(loc.line - 1, 0)
    text = _line(lines, n)
    start = min(max(loc.column - 1, 0), len(text))
    m = re.compile(r"[^\s,\]\}#]+").match(text, start)
    end = m.end() if m else min(start + 1, len(text))
    if end <= start:
        end = start + 1
    return types.Range(types.Position(n, _units(text, start)), types.Position(n, _units(text, end)))


def diagnostic(lines: list[str], note: Note) -> types.Diagnostic:
    message = note.message + (f" ({note.hint})" if note.hint else "")
    return types.Diagnostic(
        range=_range(lines, note.location),
        message=message,
        severity=SEVERITY.get(note.severity, types.DiagnosticSeverity.Information),
        code=note.code or None,
        source="policyengine",
    )


def _target(loc: Location, open_lines: dict[str, list[str]]) -> types.Location:
    path = str(Path(loc.file).resolve()) if loc.file and not loc.file.startswith("<") else loc.file
    lines = open_lines.get(path)
    if lines is None:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, ValueError):
            lines = []
    return types.Location(uri=from_fs_path(path) or path, range=_range(lines, loc))


# ---------------------------------------------------------------- reading the text


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def _blank(text: str) -> bool:
    stripped = text.strip()
    return not stripped or stripped.startswith("#")


def _section(lines: list[str], n: int) -> str | None:
    """The top-level key (``rules``, ``replace``, ``clauses``...) line ``n`` is under."""
    for j in range(n, -1, -1):
        m = _TOP.match(_line(lines, j))
        if m:
            return m.group(1)
    return None


def _parent_key(lines: list[str], n: int) -> str | None:
    """The key whose block list holds the item on line ``n`` (``overrides:`` then ``- a``)."""
    indent = _indent(_line(lines, n))
    for j in range(n - 1, -1, -1):
        text = _line(lines, j)
        if _blank(text):
            continue
        ind = _indent(text)
        if ind > indent or (ind == indent and text.lstrip().startswith("-")):
            continue
        m = _KEY_LINE.match(text)
        return m.group(1) if m else None
    return None


def _kind_of(key: str, lines: list[str], n: int) -> str | None:
    if key == "id":
        return "rules" if _section(lines, n) in ("replace",) else None
    return _KINDS.get(key)


def _names(value: str) -> list[str]:
    return re.findall(r"[\w\-]+", value)


def _rule_events(lines: list[str], n: int) -> list[str]:
    """The event types of the rule line ``n`` is in: its ``on:`` and ``expect``'s ``event:``."""
    start = next((j for j in range(n, -1, -1) if _RULE_START.match(_line(lines, j))), None)
    if start is None:
        return []
    indent = _indent(_line(lines, start))
    found: list[str] = []
    j = start
    while j < len(lines):
        text = lines[j]
        if (
            j > start
            and not _blank(text)
            and (
                _indent(text) < indent
                or (_indent(text) == indent and text.lstrip().startswith("-"))
            )
        ):
            break
        m = _ON.match(text)
        if m:
            found += _names(m.group(2))
            k = j + 1  # a block list under `on:`
            while k < len(lines) and _ITEM.match(lines[k]) and _indent(lines[k]) >= _indent(text):
                found += _names(lines[k].split("-", 1)[1])
                k += 1
        j += 1
    return found


def complete(index: PackIndex, lines: list[str], n: int, before: str) -> list[Symbol]:
    """The names that fit at the end of ``before`` (line ``n`` up to the cursor)."""
    ref = _REF.search(before)
    if ref is not None:
        if ref.group(1) == "params":
            return list(index.params.values())
        wanted = [t for t in _rule_events(lines, n) if t in index.fields]
        pools = [index.fields[t] for t in wanted] or list(index.fields.values())
        merged: dict[str, Symbol] = {}
        for pool in pools:
            for name, sym in pool.items():
                merged.setdefault(name, sym)
        return list(merged.values())
    kind: str | None = None
    m = _KEY_VALUE.search(before)
    if m is not None:
        kind = _kind_of(m.group(1), lines, n)
    else:
        item = _ITEM.match(before)
        parent = _parent_key(lines, n) if item is not None else None
        kind = _kind_of(parent, lines, n) if parent is not None else None
        if parent == "id":
            kind = None
    table: dict[str, Symbol] = getattr(index, kind) if kind else {}
    return list(table.values())


def word_at(text: str, column: int) -> tuple[str, int]:
    """The name (letters, digits, ``_``, ``-``) around ``column`` and where it starts."""
    start = column
    while start > 0 and _WORD.match(text[start - 1]):
        start -= 1
    end = column
    while end < len(text) and _WORD.match(text[end]):
        end += 1
    return text[start:end], start


def lookup(index: PackIndex, lines: list[str], n: int, column: int) -> tuple[str, Symbol] | None:
    """What the name at a position is: ``(kind, symbol)``; a ``$params.x`` is a parameter,
    else the first of rule, event type, clause, parameter that has the name."""
    text = _line(lines, n)
    name, start = word_at(text, column)
    if not name:
        return None
    if text[:start].endswith("$params."):
        sym = index.params.get(name)
        return ("params", sym) if sym else None
    if re.search(r"\$(event|trigger)\.$", text[:start]):
        for pool in index.fields.values():
            if name in pool:
                return "fields", pool[name]
        return None
    for kind in ("rules", "events", "clauses", "params"):
        table: dict[str, Symbol] = getattr(index, kind)
        if name in table:
            return kind, table[name]
    return None


def hover_text(kind: str, sym: Symbol) -> str:
    if kind == "clauses":
        parts = [f"**{sym.name}**" + (f" ({sym.detail})" if sym.detail else "")]
        if sym.text:
            parts.append(f"> {sym.text}")
        if sym.reading:
            parts.append(f"Reading: {sym.reading}")
        return "\n\n".join(parts)
    label = {"rules": "rule", "events": "event type", "params": "parameter", "fields": "field"}
    return f"**{sym.name}** ({label.get(kind, kind)})" + (f"\n\n{sym.detail}" if sym.detail else "")


# ---------------------------------------------------------------- the server


class PolicyServer(LanguageServer):
    """The server and what it remembers per open document: the index of its last check and
    of its last check that loaded (the fallback while the text is broken)."""

    def __init__(self) -> None:
        super().__init__("policyengine", __version__)
        self.current: dict[str, PackIndex] = {}
        self.last_good: dict[str, PackIndex] = {}

    def lines(self, uri: str) -> list[str]:
        return self.workspace.get_text_document(uri).source.splitlines()

    def path_of(self, uri: str) -> str:
        doc = self.workspace.get_text_document(uri)
        path = doc.path or to_fs_path(uri) or uri
        try:
            return str(Path(path).resolve())
        except (OSError, ValueError):
            return path

    def refresh(self, uri: str) -> Checked:
        doc = self.workspace.get_text_document(uri)
        checked = check_text(self.path_of(uri), doc.source)
        if checked.loaded:
            self.last_good[uri] = checked.index
            self.current[uri] = checked.index
        else:
            self.current[uri] = checked.index.over(self.last_good.get(uri, PackIndex()))
        lines = doc.source.splitlines()
        try:
            found = [diagnostic(lines, note) for note in checked.notes]
        except Exception as exc:  # a bug of ours: said in the file, the session goes on
            start = types.Position(0, 0)
            found = [
                types.Diagnostic(
                    range=types.Range(start, start),
                    message=f"policyengine could not place its diagnostics: {exc!r}",
                    source="policyengine",
                )
            ]
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, version=doc.version, diagnostics=found)
        )
        return checked

    def index(self, uri: str) -> PackIndex:
        if uri not in self.current:
            self.refresh(uri)
        return self.current.get(uri, PackIndex())

    def open_lines(self) -> dict[str, list[str]]:
        return {self.path_of(uri): self.lines(uri) for uri in self.current}


def build_server() -> PolicyServer:
    """A server with every feature registered (a new one per call: tests and ``serve``)."""
    server = PolicyServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: PolicyServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: PolicyServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: PolicyServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: PolicyServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.current.pop(uri, None)
        ls.last_good.pop(uri, None)
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=[".", " ", "[", ","]),
    )
    def completion(ls: PolicyServer, params: types.CompletionParams) -> types.CompletionList:
        uri = params.text_document.uri
        lines = ls.lines(uri)
        n = params.position.line
        text = _line(lines, n)
        before = text[: _points(text, params.position.character)]
        items = [
            types.CompletionItem(label=s.name, detail=s.detail, kind=types.CompletionItemKind.Value)
            for s in complete(ls.index(uri), lines, n, before)
        ]
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: PolicyServer, params: types.HoverParams) -> types.Hover | None:
        uri = params.text_document.uri
        lines = ls.lines(uri)
        n = params.position.line
        found = lookup(ls.index(uri), lines, n, _points(_line(lines, n), params.position.character))
        if found is None:
            return None
        content = types.MarkupContent(kind=types.MarkupKind.Markdown, value=hover_text(*found))
        return types.Hover(contents=content)

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: PolicyServer, params: types.DefinitionParams) -> types.Location | None:
        uri = params.text_document.uri
        lines = ls.lines(uri)
        n = params.position.line
        found = lookup(ls.index(uri), lines, n, _points(_line(lines, n), params.position.character))
        if found is None or found[1].where is None:
            return None
        return _target(found[1].where, ls.open_lines())

    return server


def serve() -> int:
    """Speak LSP over stdin/stdout until the client says exit (0 after ``shutdown``, else 1,
    as LSP asks). pygls closes the streams it is given: it gets copies of the descriptors, so
    that the command line can still flush its own standard output on the way out."""
    with (
        os.fdopen(os.dup(sys.stdin.fileno()), "rb") as stdin,
        os.fdopen(os.dup(sys.stdout.fileno()), "wb") as stdout,
    ):
        try:
            build_server().start_io(stdin, stdout)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 1
    return 0
