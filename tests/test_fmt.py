"""``policyengine fmt``: canonical, idempotent, and never a change of meaning.

* the shipped packs and examples are formatted (``fmt --check`` is clean on them);
* formatting keeps comments, key order, quotes, block scalars, Chinese text and ``on:``;
* fmt(fmt(x)) == fmt(x), also on copies of the packs laid out differently (re-indented, wrapped
  at another width, trailing spaces, extra blank lines), and those copies format back to the
  shipped layout;
* a pack formatted from such a copy decides exactly as the shipped pack (decisions as JSON, on
  the example histories and on every scenario's events);
* unreadable YAML and a layout that would read differently are located errors, never written.
"""

from __future__ import annotations

import io
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.emitter import RoundTripEmitter

from policyengine import load_policy
from policyengine.cli import main as cli_main
from policyengine.errors import Code, PolicyError, ProblemSink
from policyengine.language.loader import load_text
from policyengine.tools import fmt
from policyengine.tools.fmt import format_text, run

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(
    p for top in ("policies", "examples") for p in (ROOT / top).rglob("*.yaml") if p.is_file()
)
# the example histories of each pack, with the instant examples/demo.py evaluates them at
EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "huixiao": [
        ("huixiao_march.json", "2026-03-31T23:59:59+08:00"),
        ("huixiao_after_sales.json", "2026-04-02T12:00:00+08:00"),
    ],
    "service_system": [("service_system.json", "2026-04-02T12:00:00+08:00")],
    "online_store": [
        ("online_store.json", "2026-03-01T00:00:00+08:00"),
        ("online_store_2027.json", "2027-01-31T23:59:59+08:00"),
    ],
    "customer_management": [("customer_management.json", "2026-03-31T23:59:59+08:00")],
}


def _data(text: str, name: str = "x.yaml") -> Any:
    sink = ProblemSink()
    source = load_text(text, name, sink)
    assert not sink.problems, sink.problems
    assert source is not None
    return fmt._typed(source.data)


class _KeepFolds(RoundTripEmitter):
    """ruamel's emitter, but folded scalars keep their folds (fmt keeps them as written)."""

    def write_folded(self, text: Any, comment: Any) -> None:
        width, self.best_width = self.best_width, 1 << 30
        try:
            super().write_folded(text, comment)
        finally:
            self.best_width = width


def _relayout(text: str, mapping: int, sequence: int, offset: int, width: int) -> str:
    """The same document laid out by plain ruamel.yaml with other indents and width."""
    yaml = YAML(typ="rt")
    yaml.Emitter = _KeepFolds
    yaml.preserve_quotes = True
    yaml.allow_unicode = True
    yaml.width = width
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    out = io.StringIO()
    yaml.dump(yaml.load(text), out)
    return out.getvalue()


def _untidy(text: str, rng: random.Random, blanks: float, spaces: float) -> str:
    """Blank lines doubled or tripled, the blank line before a top-level section dropped,
    trailing spaces, trailing blank lines; never inside a block scalar, where they are text."""
    lines = text.splitlines()
    block = fmt._block_lines(lines)
    leads = []  # where top-level sections start (their comments first); fmt separates them
    for i, line in enumerate(lines):
        if i not in block and fmt._is_top_key(line):
            while i and lines[i - 1].startswith("#"):
                i -= 1
            leads.append(i)
    leads = leads[1:]  # the blank line (or none) after the file's header comment is kept
    out: list[str] = []
    for i, line in enumerate(lines):
        if i not in block and not line.strip() and rng.random() < blanks:
            if i + 1 in leads:
                continue
            out.extend([""] * rng.randint(1, 3))
        if i not in block and line.strip() and rng.random() < spaces:
            line += " " * rng.randint(1, 3)
        out.append(line)
    return "\n".join(out) + "\n\n\n"


def _perturbed(text: str, seed: int) -> str:
    """An unformatted copy of ``text``: re-indented (list items flush or indented, mappings 2
    or 4), wrapped at another width (flow mappings split over lines), then untidied."""
    rng = random.Random(seed)
    mapping = rng.choice((2, 4))
    flush = rng.random() < 0.5
    sequence, offset = (mapping, 0) if flush else (mapping + 2, 2)
    out = _relayout(text, mapping, sequence, offset, rng.choice((60, 80, 140)))
    return _untidy(out, rng, 0.5, 0.2)


# ---------------------------------------------------------------- the shipped files


def test_shipped_files_are_formatted(capsys: pytest.CaptureFixture[str]) -> None:
    assert SHIPPED, "no shipped YAML found"
    for path in SHIPPED:
        text = path.read_text(encoding="utf-8")
        assert format_text(text, str(path)) == text, path
    code = cli_main(["fmt", "--check", str(ROOT / "policies"), str(ROOT / "examples")])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert out == ""
    assert f"0 files would be reformatted, {len(SHIPPED)} already formatted" in err


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_copies_of_a_shipped_file_format_back_to_its_layout(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    canonical = format_text(text, str(path))
    assert format_text(canonical, str(path)) == canonical
    for seed in range(2):
        copy = _perturbed(text, seed)
        assert copy != text
        assert _data(copy) == _data(text)  # the copy is the same document
        formatted = format_text(copy, str(path))
        assert _data(formatted) == _data(text)
        assert formatted == canonical


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    index=st.integers(min_value=0, max_value=len(SHIPPED) - 1),
    mapping=st.sampled_from((2, 3, 4)),
    flush=st.booleans(),
    width=st.integers(min_value=40, max_value=200),
    seed=st.integers(min_value=0, max_value=2**16),
    blanks=st.floats(min_value=0, max_value=1),
    spaces=st.floats(min_value=0, max_value=1),
)
def test_idempotent_on_perturbed_packs(
    index: int, mapping: int, flush: bool, width: int, seed: int, blanks: float, spaces: float
) -> None:
    text = SHIPPED[index].read_text(encoding="utf-8")
    sequence, offset = (mapping, 0) if flush else (mapping + 2, 2)
    copy = _untidy(
        _relayout(text, mapping, sequence, offset, width), random.Random(seed), blanks, spaces
    )
    once = format_text(copy)
    assert format_text(once) == once
    assert _data(once) == _data(text)
    assert once == format_text(text)


# ---------------------------------------------------------------- decisions do not change


def _decisions(pack: Path) -> dict[str, Any]:
    """Every decision of the pack, as JSON: on its example histories and on each scenario's
    events (read from the pack's own scenario files, formatted or not)."""
    out: dict[str, Any] = {}
    policy = load_policy(pack)
    for history, as_of in EXAMPLES[pack.name]:
        events = json.loads((ROOT / "examples" / history).read_text(encoding="utf-8"))
        out[history] = policy.evaluate(events, as_of=as_of).model_dump(mode="json")
    for file in sorted((pack / "tests").glob("*.yaml")):
        scenarios = _loaded(file)["scenarios"]
        for n, scenario in enumerate(scenarios):
            if scenario.get("params") or "error" in (scenario.get("expect") or {}):
                continue  # another policy (params), or no decision at all
            decision = policy.evaluate(scenario["events"], as_of=scenario["as_of"])
            out[f"{file.name}#{n}"] = decision.model_dump(mode="json")
    return out


def _loaded(file: Path) -> Any:
    return _loaded_text(file.read_text(encoding="utf-8"), str(file))


def _loaded_text(text: str, name: str = "x.yaml") -> Any:
    sink = ProblemSink()
    source = load_text(text, name, sink)
    assert source is not None and not sink.problems
    return source.data


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_formatting_an_unformatted_pack_keeps_its_decisions(name: str, tmp_path: Path) -> None:
    shipped = ROOT / "policies" / name
    messy = tmp_path / "messy" / name
    shutil.copytree(shipped, messy)
    files = sorted(messy.rglob("*.yaml"))
    for seed, file in enumerate(files):
        file.write_text(_perturbed(file.read_text(encoding="utf-8"), seed), encoding="utf-8")
    before = _decisions(messy)
    assert before == _decisions(shipped)
    out, err = io.StringIO(), io.StringIO()
    assert run([messy], "write", out, err) == 0, err.getvalue()
    assert out.getvalue().count("reformatted ") == len(files)
    for file in files:  # formatted back to the shipped layout
        shipped_text = (shipped / file.relative_to(messy)).read_text(encoding="utf-8")
        assert file.read_text(encoding="utf-8") == format_text(shipped_text)
    assert _decisions(messy) == before
    assert len(before) > len(EXAMPLES[name])  # scenarios were compared too


# ---------------------------------------------------------------- what is kept, what changes

MESSY = """\
# a pack  \n\
policy:
    id: demo     # the id (comments keep their column)
    title: 网店售后 / 'shop'
    version: "1.0.0"
clauses:
- id: C-1
  text: '售后客服应在[X]分鐘內做出響應'
  reading: >-
    folded   text   \n\
    kept as written



rules:
- id: r1
  on: created
  when: {any: [{eq: [$event.kind, complaint]}, {eq: [$event.urgent, true]}]}
  then:
  - release: null
  - flag: {name: x, doc: "yes"}
"""

CANONICAL = """\
# a pack
policy:
  id: demo       # the id (comments keep their column)
  title: 网店售后 / 'shop'
  version: "1.0.0"

clauses:
  - id: C-1
    text: '售后客服应在[X]分鐘內做出響應'
    reading: >-
      folded   text    kept as written

rules:
  - id: r1
    on: created
    when: {any: [{eq: [$event.kind, complaint]}, {eq: [$event.urgent, true]}]}
    then:
      - release: null
      - flag: {name: x, doc: "yes"}
"""


def test_layout_keeps_comments_quotes_chinese_block_scalars_and_on() -> None:
    assert format_text(MESSY) == CANONICAL
    assert format_text(CANONICAL) == CANONICAL
    assert _data(CANONICAL) == _data(MESSY)
    clause = _loaded_text(CANONICAL)["clauses"][0]
    assert clause["reading"] == "folded   text    kept as written"
    assert _loaded_text(CANONICAL)["rules"][0]["on"] == "created"  # a string key, not True


def test_block_scalars_keep_their_spaces_and_blank_lines() -> None:
    text = "a: |\n  x  \n\n\n  y\n\n\nb: |+\n  z\n\n\nc: 1\n"
    assert format_text(text) == "a: |\n  x  \n\n\n  y\n\nb: |+\n  z\n\n\nc: 1\n"


def test_long_plain_text_wraps_at_the_width_and_flow_collections_do_not() -> None:
    words = " ".join(f"word{i}" for i in range(40))
    event = ", ".join(f"f{i}: {i}" for i in range(30))
    text = f"doc: {words}\nevents:\n  - {{{event}}}\n"
    out = format_text(text)
    lines = out.splitlines()
    assert all(len(line) <= fmt.WIDTH for line in lines if not line.startswith("  - {"))
    assert len([line for line in lines if line.startswith("  ")]) == 3  # 2 folds + 1 event
    assert f"  - {{{event}}}" in lines
    assert _data(out) == _data(text)


def test_one_line_entries_of_a_params_file_stay_together() -> None:
    text = "a: 3 days\nb: 200 CNY\nc:\n  d: 1\ne: 2\n"
    assert format_text(text) == "a: 3 days\nb: 200 CNY\n\nc:\n  d: 1\n\ne: 2\n"


def test_comment_only_file_is_tidied() -> None:
    assert format_text("\n\n# nothing   \n\n\n") == "# nothing\n"


# ---------------------------------------------------------------- refusals


def test_malformed_yaml_is_a_located_error() -> None:
    with pytest.raises(PolicyError) as info:
        format_text("a: [1, 2\nb: 3\n", "bad.yaml")
    problem = info.value.first
    assert problem.code == Code.MALFORMED_YAML
    assert problem.location is not None
    assert (problem.location.file, problem.location.line) == ("bad.yaml", 2)
    assert problem.hint


def test_a_layout_that_reads_differently_is_refused_and_never_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = fmt._yaml

    class Spoiled:
        """Dumps another value: what a formatter bug would do."""

        def load(self, text: str) -> Any:
            return real().load(text)

        def dump(self, data: Any, stream: io.StringIO) -> None:
            stream.write("a: 2\n")

    monkeypatch.setattr(fmt, "_yaml", Spoiled)
    file = tmp_path / "p.yaml"
    file.write_text("a:   1\n", encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        format_text(file.read_text(encoding="utf-8"), str(file))
    assert info.value.first.code == Code.FORMAT_CHANGES_MEANING
    assert str(info.value).startswith(f"{file}:1:1: PE123 ")
    out, err = io.StringIO(), io.StringIO()
    assert run([file], "write", out, err) == 1
    assert file.read_text(encoding="utf-8") == "a:   1\n"
    assert "PE123" in err.getvalue() and out.getvalue() == ""


# ---------------------------------------------------------------- the command line


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "pack" / "tests").mkdir(parents=True)
    (tmp_path / "pack" / "p.yaml").write_text("a:\n    b: 1   \n", encoding="utf-8")
    (tmp_path / "pack" / "tests" / "s.yml").write_text("x:\n- 1\n", encoding="utf-8")
    (tmp_path / "pack" / "ok.yaml").write_text("a: 1\n", encoding="utf-8")
    (tmp_path / "pack" / "notes.txt").write_text("a:    1\n", encoding="utf-8")
    return tmp_path / "pack"


def test_check_is_the_default_lists_files_and_never_writes(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    for argv in (["fmt", str(tree)], ["fmt", "--check", str(tree)]):
        assert cli_main(argv) == 1
        out, err = capsys.readouterr()
        assert out.splitlines() == [
            f"would reformat {tree / 'p.yaml'}",
            f"would reformat {tree / 'tests' / 's.yml'}",
        ]
        assert "2 files would be reformatted, 1 already formatted" in err
    assert {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()} == before


def test_diff_prints_a_unified_diff(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["fmt", "--diff", str(tree / "p.yaml")]) == 1
    out, _ = capsys.readouterr()
    assert f"--- {tree / 'p.yaml'}\n" in out
    assert "-    b: 1   \n+  b: 1\n" in out
    assert cli_main(["fmt", "--diff", str(tree / "ok.yaml")]) == 0
    assert capsys.readouterr().out == ""


def test_write_rewrites_in_place_then_check_is_clean(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["fmt", "--write", str(tree)]) == 0
    out, _ = capsys.readouterr()
    assert out.count("reformatted ") == 2
    assert (tree / "p.yaml").read_text(encoding="utf-8") == "a:\n  b: 1\n"
    assert (tree / "tests" / "s.yml").read_text(encoding="utf-8") == "x:\n  - 1\n"
    assert (tree / "notes.txt").read_text(encoding="utf-8") == "a:    1\n"  # not YAML by name
    assert cli_main(["fmt", "--check", str(tree)]) == 0


def test_bad_files_are_reported_located_and_the_rest_still_formatted(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "broken.yaml").write_text("a: [1\n", encoding="utf-8")
    (tree / "latin1.yaml").write_bytes("a: caf\xe9\n".encode("latin-1"))
    assert cli_main(["fmt", "--write", str(tree), str(tree / "missing.yaml")]) == 1
    out, err = capsys.readouterr()
    assert out.count("reformatted ") == 2  # the good files still were
    assert f"{tree / 'broken.yaml'}:2:1: PE100 " in err
    assert f"{tree / 'latin1.yaml'}:1:" in err and "not UTF-8" in err
    assert f"{tree / 'missing.yaml'}:1:1: PE116 " in err
    assert "Traceback" not in err
    assert (tree / "broken.yaml").read_text(encoding="utf-8") == "a: [1\n"
    assert (tree / "p.yaml").read_text(encoding="utf-8") == "a:\n  b: 1\n"


def test_modes_are_exclusive_and_help_documents_the_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main(["fmt", "--check", "--write", "x.yaml"])
    assert info.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli_main(["fmt", "--help"])
    help_text = capsys.readouterr().out
    assert "the default" in help_text and "--diff" in help_text and "--write" in help_text


def test_run_refuses_an_unknown_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        run([tmp_path], "fix", io.StringIO(), io.StringIO())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n-   b: 1\n    c: 2\n", "- a\n- b: 1\n  c: 2\n"),  # a list at the root
        ("a:\r\n  - 1\r\nb: x  \r\n", "a:\n  - 1\n\nb: x\n"),  # CRLF, trailing spaces
        ("---\na: 1\n...\n", "a: 1\n"),
        ('"on": 1\n\'yes\': "2"\nno: ~\n', '"on": 1\n\'yes\': "2"\nno: null\n'),
        ("a: {b: [1,\n   2], c: 3}\nd: [x,\n  y]\n", "a: {b: [1, 2], c: 3}\nd: [x, y]\n"),
        (
            "a:\n  # first\n  - 1\n\n\n  # second\n  - 2\n",
            "a:\n  # first\n  - 1\n\n  # second\n  - 2\n",
        ),
    ],
)
def test_odd_documents_format_to_the_same_values(text: str, expected: str) -> None:
    out = format_text(text)
    assert out == expected
    assert format_text(out) == out
    assert _data(out) == _data(text.replace("\r\n", "\n"))
