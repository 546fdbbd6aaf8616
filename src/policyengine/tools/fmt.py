"""``policyengine fmt``: one canonical layout for policy and scenario YAML, meaning unchanged.

Authors edit packs by hand, so layouts drift (two-space or flush list items, stray blank lines,
trailing spaces) and reviews fill with noise. The layout chosen is the one most shipped packs
already use, so formatting them changes little: mappings indented 2, list items 2 further
(``  - id:``), plain text wrapped at ``WIDTH`` columns, flow collections (``{...}``, ``[...]``)
and quoted text kept on one line (one event per line stays greppable), no trailing spaces, at
most one blank line in a row, one final newline. ruamel.yaml's round trip keeps comments, key
order, quote styles, block scalars and Chinese text as written.

A formatter must never change what a file means: every result is read back with the policy
loader (``language.loader``, which keeps ``on:`` a string key, unlike plain YAML 1.1) and its
values compared, types included, with the original's; a difference is refused (PE123) and the
file left as it is. A file the loader cannot read is refused with the loader's own located
problem, the one ``check`` reports.
"""

from __future__ import annotations

import argparse
import difflib
import io
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO, cast

from ruamel.yaml import YAML
from ruamel.yaml.emitter import RoundTripEmitter
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter

from policyengine.errors import Code, Location, PolicyError, Problem, ProblemSink
from policyengine.language.loader import MAX_BYTES, load_source, load_text

WIDTH: Final = 100  # plain text wraps here; flow collections and quoted text never wrap
SUFFIXES: Final = (".yaml", ".yml")
MODES: Final = ("check", "diff", "write")
_NO_WRAP: Final = 1 << 30
# a line that opens a block scalar: `key: |`, `- >-`, `key: |2 # comment`
_BLOCK_START: Final = re.compile(r"(?:^|:\s|-\s)\s*(?:[&!]\S*\s+)*[|>]([-+1-9]*)\s*(?:#.*)?$")


class _Emitter(RoundTripEmitter):
    """ruamel's round-trip emitter, except that only plain text in block context wraps.

    Wrapping a flow mapping or a quoted string moves its pieces to lines of ruamel's choosing,
    far from how the packs write them (an event a line, a clause's Chinese text a line), and a
    folded block scalar (``>``) is the author's own wrapping; so inside flow collections,
    quoted and folded scalars the width is unlimited.
    """

    _quoting = False
    _width = WIDTH

    @property
    def best_width(self) -> int:
        return _NO_WRAP if (self.flow_level or self._quoting) else self._width

    @best_width.setter
    def best_width(self, value: int) -> None:
        self._width = value

    def write_single_quoted(self, text: Any, split: Any = True) -> None:
        self._unwrapped(super().write_single_quoted, text, split)

    def write_double_quoted(self, text: Any, split: Any = True) -> None:
        self._unwrapped(super().write_double_quoted, text, split)

    def write_folded(self, text: Any, comment: Any) -> None:  # `>`: folds stay as written
        self._unwrapped(super().write_folded, text, comment)

    def _unwrapped(self, write: Callable[[Any, Any], None], text: Any, split: Any) -> None:
        self._quoting = True
        try:
            write(text, split)
        finally:
            self._quoting = False


class _Representer(RoundTripRepresenter):
    """Null is written ``null``: ruamel's round trip would leave ``release:`` with no value,
    which a non-programmer reads as something missing."""

    def represent_none(self, data: Any) -> ScalarNode:
        return self.represent_scalar("tag:yaml.org,2002:null", "null")


_Representer.add_representer(type(None), _Representer.represent_none)


def _yaml() -> YAML:
    """A fresh round-trip YAML per use: ruamel's instances carry state between documents."""
    yaml = YAML(typ="rt")
    yaml.Emitter = _Emitter
    yaml.Representer = _Representer
    yaml.preserve_quotes = True
    yaml.allow_unicode = True
    yaml.width = WIDTH
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.brace_single_entry_mapping_in_flow_sequence = True  # [{eq: [...]}], not [eq: [...]]
    return yaml


def _block_lines(lines: Sequence[str]) -> set[int]:
    """The lines inside block scalars (``|``, ``>``), where spaces and blank lines are text:
    from the line after the indicator while lines are blank or indented deeper than it; the
    blank lines that end one are text only when it keeps them (``|+``)."""
    inside: set[int] = set()
    region: list[int] = []
    parent: int | None = None
    keeps = False
    for i, line in enumerate([*lines, ""]):
        indent = len(line) - len(line.lstrip(" "))
        if parent is not None and i < len(lines) and (not line.strip() or indent > parent):
            region.append(i)
            continue
        while region and not keeps and not lines[region[-1]].strip():
            region.pop()
        inside.update(region)
        region = []
        start = _BLOCK_START.search(line)
        parent = indent if start else None
        keeps = start is not None and "+" in start.group(1)
    return inside


def _tidy(text: str) -> str:
    """No trailing spaces, no leading or doubled blank lines, exactly one final newline;
    inside block scalars lines are left as they are (trailing blank lines too: with ``|+``
    they are text, and the read-back check decides)."""
    lines = text.splitlines()
    keep = _block_lines(lines)
    out: list[str] = []
    for i, line in enumerate(lines):
        if i in keep:
            out.append(line)
            continue
        line = line.rstrip()
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out) + "\n" if out else ""


def _is_top_key(line: str) -> bool:
    return bool(line) and line[0] not in " #-.%}]\t"


def _sections(text: str) -> str:
    """A blank line between top-level sections (before the comments that lead into one),
    as every shipped pack separates ``policy:``, ``clauses:``, ``rules:``; one-line entries in
    a row (a params or calendar file's ``name: value``) stay together."""
    lines = text.splitlines()
    keep = _block_lines(lines)
    keys = [i for i, line in enumerate(lines) if i not in keep and _is_top_key(line)]
    if len(keys) < 2:  # a list, a scalar, or one section: nothing to separate
        return text
    leads = []
    for at, key in enumerate(keys):
        lead = key
        while lead > (keys[at - 1] if at else 0) and lines[lead - 1].startswith("#"):
            lead -= 1
        leads.append(lead)
    ends = [*leads[1:], len(lines)]
    multi = [len([x for x in lines[k:e] if x.strip()]) > 1 for k, e in zip(keys, ends, strict=True)]
    gaps = {
        leads[at]
        for at in range(1, len(keys))
        if lines[leads[at] - 1].strip() and (multi[at] or multi[at - 1])
    }
    out: list[str] = []
    for i, line in enumerate(lines):
        if i in gaps:
            out.append("")
        out.append(line)
    return "\n".join(out) + "\n" if out else ""


def _typed(value: Any) -> Any:
    """A value with its types spelt out, so ``1``, ``1.0``, ``true`` and ``"1"`` all differ
    (Python's ``==`` says ``1 == 1.0 == True``); mappings compare in key order."""
    if isinstance(value, dict):
        return ("map", tuple((k, _typed(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("seq", tuple(_typed(v) for v in value))
    return (type(value).__name__, value)


def _meaning(text: str, name: str) -> tuple[Any, list[Problem]]:
    """What the policy loader reads in ``text``: its values (typed), or the problems."""
    sink = ProblemSink()
    source = load_text(text, name, sink)
    if sink.problems or source is None:
        return None, sink.problems
    return _typed(source.data), []


def _is_blank(text: str) -> bool:
    """Only comments and blank lines: nothing for the loader to read, nothing to change."""
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


def _ruamel_problem(exc: YAMLError, name: str) -> Problem:
    mark = None
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
    where = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name, 1, 1)
    problem = exc.problem if isinstance(exc, MarkedYAMLError) and exc.problem else exc
    return Problem(
        Code.MALFORMED_YAML,
        f"malformed YAML: {problem}".splitlines()[0],
        where,
        "fix the YAML syntax",
    )


def format_text(text: str, name: str = "<text>") -> str:
    """The canonical layout of one YAML document; raises a located ``PolicyError`` when the
    text cannot be read, or when the layout would read back as different values."""
    if _is_blank(text):
        return _tidy(text)
    before, problems = _meaning(text, name)
    if problems:
        raise PolicyError(problems)
    yaml = _yaml()
    try:
        data = yaml.load(text)
        out = io.StringIO()
        yaml.dump(data, out)
    except YAMLError as exc:  # what PyYAML reads but ruamel refuses (rare)
        raise PolicyError([_ruamel_problem(exc, name)]) from None
    dumped = out.getvalue()
    if isinstance(data, list):  # a list at the root: items at column 0, not ruamel's offset
        dumped = "".join(
            line[2:] if line.startswith("  ") else line for line in dumped.splitlines(True)
        )
    # tidying is cosmetic; inside a block scalar trailing spaces are text, so the untidied
    # dump is the fallback when tidying alone would change a value
    for candidate in (_sections(_tidy(dumped)), _tidy(dumped), dumped):
        after, _ = _meaning(candidate, name)
        if after == before:
            return candidate
    raise PolicyError([_changed(text, _tidy(dumped), name)])


def _changed(old: str, new: str, name: str) -> Problem:
    """Where the formatted text first reads differently from the original (a formatter bug)."""
    line = 1
    for i, (a, b) in enumerate(zip(old.splitlines(), new.splitlines(), strict=False), 1):
        if a.strip() != b.strip():
            line = i
            break
    return Problem(
        Code.FORMAT_CHANGES_MEANING,
        "formatting would change what the file means, so it was left as it is",
        Location(name, line, 1),
        "keep the file's layout by hand, and report the file: the formatter must never "
        "change a value",
    )


@dataclass(frozen=True, slots=True)
class Formatted:
    """One file: its text as read and as formatted."""

    path: Path
    old: str
    new: str

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def diff(self) -> str:
        name = str(self.path)
        return "".join(
            difflib.unified_diff(
                self.old.splitlines(keepends=True),
                self.new.splitlines(keepends=True),
                fromfile=name,
                tofile=f"{name} (formatted)",
            )
        )


def format_file(path: Path) -> Formatted:
    """Read and format one file (at most ``MAX_BYTES`` of UTF-8, as the loader reads)."""
    try:
        raw = path.read_bytes() if path.stat().st_size <= MAX_BYTES else None
        text = raw.decode("utf-8") if raw is not None else None
    except (OSError, ValueError):  # unreadable, not UTF-8: the loader says where and why
        text = None
    if text is None:
        sink = ProblemSink()
        load_source(path, sink, str(path))
        raise PolicyError(
            sink.problems
            or [Problem(Code.FILE_NOT_FOUND, "cannot read", Location(str(path), 1, 1))]
        )
    return Formatted(path, text, format_text(text, str(path)))


def yaml_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Problem]]:
    """The files ``paths`` name: files as given, folders walked for ``*.yaml``/``*.yml``
    (hidden folders skipped), each once, in order; a missing path is a located problem."""
    found: dict[Path, None] = {}
    problems: list[Problem] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for sub in sorted(path.rglob("*")):
                rel = sub.relative_to(path).parts
                if (
                    sub.suffix in SUFFIXES
                    and sub.is_file()
                    and not any(p.startswith(".") for p in rel[:-1])
                ):
                    found.setdefault(sub, None)
        elif path.is_file():
            found.setdefault(path, None)
        else:
            problems.append(
                Problem(
                    Code.FILE_NOT_FOUND,
                    "no such file or folder to format",
                    Location(str(path), 1, 1),
                    "check the path",
                )
            )
    return list(found), problems


def run(paths: Sequence[str | Path], mode: str, out: TextIO, err: TextIO) -> int:
    """``fmt`` over ``paths``: 0 when nothing is (or was) to change, 1 when ``check``/``diff``
    found files to change or any file was refused (refused files are never written)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    files, problems = yaml_files(paths)
    changed = 0
    for path in files:
        try:
            result = format_file(path)
        except PolicyError as exc:
            problems.extend(exc.problems)
            continue
        if not result.changed:
            continue
        changed += 1
        if mode == "write":
            path.write_text(result.new, encoding="utf-8")
            print(f"reformatted {path}", file=out)
        elif mode == "diff":
            out.write(result.diff())
        else:
            print(f"would reformat {path}", file=out)
    for problem in problems:
        print(problem, file=err)
    verb = "reformatted" if mode == "write" else "would be reformatted"
    refused = f", {_plural(len(problems), 'problem')}" if problems else ""
    print(
        f"{_plural(changed, 'file')} {verb}, {len(files) - changed - _failed(problems, files)} "
        f"already formatted{refused}",
        file=err,
    )
    if problems:
        return 1
    return 1 if changed and mode != "write" else 0


def _failed(problems: list[Problem], files: list[Path]) -> int:
    names = {str(f) for f in files}
    return len({p.location.file for p in problems if p.location and p.location.file in names})


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fmt``'s arguments, shared by ``policyengine fmt`` and ``python -m ...tools.fmt``."""
    parser.add_argument(
        "paths", nargs="+", help="YAML files, or folders to walk for *.yaml and *.yml files"
    )
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--check",
        dest="mode",
        action="store_const",
        const="check",
        help="list the files that would change; exit 1 if any (the default: never writes)",
    )
    how.add_argument(
        "--diff",
        dest="mode",
        action="store_const",
        const="diff",
        help="print a unified diff of the changes; exit 1 if any",
    )
    how.add_argument(
        "--write",
        dest="mode",
        action="store_const",
        const="write",
        help="rewrite the files in place and list the ones changed",
    )
    parser.set_defaults(mode="check")


def run_args(args: argparse.Namespace) -> int:
    """The command line's ``fmt``, once parsed."""
    return run(cast(list[str], args.paths), cast(str, args.mode), sys.stdout, sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="policyengine fmt", description="canonical layout for policy and scenario YAML"
    )
    add_arguments(parser)
    return run_args(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
