"""Streaming evaluation (``policyengine.stream``): every group's decision, written as JSON Lines
or Parquet and read back, equals ``Policy.evaluate`` of that group's events after the shared
ones, both as streamed and as cut from the whole history; a stream that is not grouped, or a
policy that reads across subjects, is refused at the event or reason; memory stays flat as
the number of groups grows."""

from __future__ import annotations

import io
import json
import os
import sys
import tracemalloc
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings

import policyengine as pe
from policyengine import stream
from policyengine.backends.stream import inert_types
from policyengine.cli import main
from policyengine.errors import EvaluationError, EventError
from policyengine.tools.stream_files import iter_history

ROOT = Path(__file__).parents[1]
PACKS = ROOT / "policies"
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(Path(__file__).parent))
from generate import generate  # noqa: E402

from strategies import hx_histories  # noqa: E402

Event = dict[str, Any]
AS_OF = "2026-09-30T23:59:59+08:00"


def _load(pack: str) -> pe.Policy:
    return pe.load_policy(PACKS / pack)


HX = _load("huixiao")
CM = _load("customer_management")


def _example(name: str) -> list[Event]:
    data: list[Event] = json.loads((ROOT / "examples" / name).read_text(encoding="utf-8"))
    return data


def _dump(policy: pe.Policy, events: Iterable[Event], as_of: str | None) -> dict[str, Any]:
    return policy.evaluate(list(events), as_of=as_of, resumable=False).model_dump(mode="json")


def _streamed(
    policy: pe.Policy, events: Sequence[Event], tmp: Path, fmt: str, as_of: str | None
) -> list[dict[str, Any]]:
    out = tmp / f"out.{fmt}"
    stream.evaluate_stream(policy, events, out, as_of=as_of)
    return list(stream.read_back(out))


def check_exact(
    policy: pe.Policy,
    history: Sequence[Event],
    tmp: Path,
    fmt: str,
    as_of: str | None = AS_OF,
    *,
    subjects_as_all_shared: bool = False,
) -> list[dict[str, Any]]:
    """Stream ``grouped(history)`` and compare every row with ``evaluate``: of the group's
    events as streamed, and of the whole history cut to the group's subjects."""
    sf = policy.compiled.subject_field
    order = stream.grouped(policy, history)
    assert sorted(map(id, order)) == sorted(map(id, history))
    rows = _streamed(policy, order, tmp, fmt, as_of)
    check_final(policy, order, rows.pop(), as_of)
    inert = inert_types(policy)
    shared = [e for e in history if not isinstance(e.get(sf), str)]
    relevant = [e for e in shared if e["type"] not in inert]
    results = list(stream.groups(policy, order, as_of=as_of))
    assert results.pop().index == -1
    if shared:
        assert rows[0]["subjects"] == []
        assert rows[0]["decision"] == _dump(policy, shared, as_of)
        rows_of_groups = rows[1:]
        results = results[1:]
    else:
        rows_of_groups = rows
    seen: list[str] = []
    for row, result in zip(rows_of_groups, results, strict=True):
        mine = set(row["subjects"])
        assert mine and not mine & set(seen)
        seen += row["subjects"]
        given = [order[i] for i in result.shared]  # the shared events routed to it
        assert {id(e) for e in given} <= {id(e) for e in relevant}
        as_streamed = [e for e in order if e.get(sf) in mine]
        assert row["events"] == len(as_streamed)
        assert row["decision"] == _dump(policy, given + as_streamed, as_of)
        cut = [e for e in history if e.get(sf) in mine]
        assert row["decision"] == _dump(policy, given + cut, as_of)
        if subjects_as_all_shared:  # the inert shared events change no subject's entries
            full = _dump(policy, shared + cut, as_of)
            assert _subject_part(row["decision"], mine) == _subject_part(full, mine)
    assert sorted(seen) == sorted({e[sf] for e in history if isinstance(e.get(sf), str)})
    return rows


def check_final(
    policy: pe.Policy, history: Sequence[Event], final: dict[str, Any], as_of: str | None
) -> dict[str, Any]:
    """The final line equals ``evaluate`` of the history as streamed (equal instants keep
    their input order) in what only the whole history decides: every penalty (offence numbers
    counted over all groups), the party counters, the metrics and awards."""
    assert final["group"] == -1 and final["final"] is True and final["subjects"] == []
    full = _dump(policy, history, as_of)
    d = final["decision"]
    assert set(d) == set(stream.FINAL_FIELDS)
    for name in ("as_of", "penalties", "metrics", "awards"):
        assert d[name] == full[name], name
    sf = policy.compiled.subject_field
    subjects = {e[sf] for e in history if isinstance(e.get(sf), str)}
    assert d["counters"] == {k: v for k, v in full["counters"].items() if k not in subjects}
    return d


def _subject_part(decision: dict[str, Any], subjects: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in decision.items():
        if isinstance(value, list):
            out[key] = [
                {k: v for k, v in x.items() if k != "seq"}
                for x in value
                if isinstance(x, dict) and x.get("subject") in subjects
            ]
        elif key in ("ownerships", "flags", "counters", "subject_labels"):
            out[key] = {s: v for s, v in value.items() if s in subjects}
    return out


# ---------------------------------------------------------------- exact, both writers


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
@pytest.mark.parametrize(
    ("pack", "example"),
    [
        ("huixiao", "huixiao_march.json"),
        ("huixiao", "huixiao_after_sales.json"),
        ("customer_management", "customer_management.json"),
    ],
)
def test_examples_stream_exactly(pack: str, example: str, fmt: str, tmp_path: Path) -> None:
    policy = HX if pack == "huixiao" else CM
    rows = check_exact(policy, _example(example), tmp_path, fmt, as_of=None)
    assert len(rows) >= 2


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_generated_history_streams_exactly(fmt: str, tmp_path: Path) -> None:
    history = generate(120, seed=7)
    rows = check_exact(HX, history, tmp_path, fmt, subjects_as_all_shared=True)
    assert any(len(r["subjects"]) > 1 for r in rows)  # referrals and venue lists link
    assert sum(len(r["subjects"]) for r in rows) == 120


@pytest.mark.parametrize("seed", [7, 21])
def test_offences_counters_and_metrics_across_groups(seed: int, tmp_path: Path) -> None:
    """One employee's repeated offences fall in different customers' groups: each group line
    numbers them within the group, the final line over the whole history, as ``evaluate``."""
    history = generate(160, seed=seed)
    order = stream.grouped(HX, history)
    out = tmp_path / "d.jsonl"
    stream.evaluate_stream(HX, order, out, as_of=AS_OF)
    rows = list(stream.read_back(out))
    final = check_final(HX, order, rows.pop(), AS_OF)
    by_party: dict[str, set[str]] = {}
    for p in final["penalties"]:
        if p["offence"] > 1 and p["subject"]:
            by_party.setdefault(p["party"], set()).add(p["subject"])
    assert any(len(s) > 1 for s in by_party.values())  # repeated across customers
    in_groups = [
        p for r in rows for p in r["decision"]["penalties"] if p["subject"] in r["subjects"]
    ]
    renumbered = sorted(p["offence"] for p in final["penalties"] if p["subject"])
    assert sorted(p["offence"] for p in in_groups) != renumbered  # the groups alone differ
    assert len(in_groups) == len(renumbered)
    assert final["metrics"] and final["counters"]


def test_shared_events_meet_only_the_groups_holding_their_token() -> None:
    """A venue-list delivery meets the duty of its (manager, day): only the groups whose
    venue purchase created it are evaluated with it."""
    assert set(stream.routes(HX)) == {"list_delivered"}
    history = generate(120, seed=7)
    summary = stream.Summary()
    results = list(stream.groups(HX, stream.grouped(HX, history), as_of=AS_OF, summary=summary))
    delivered = {
        i for r in results for i in r.shared
        if stream.grouped(HX, history)[i]["type"] == "list_delivered"
    }  # fmt: skip
    assert delivered and summary.routed_out > 0
    given = [len(r.shared) for r in results if r.subjects]
    assert min(given) < max(given)


def test_an_id_reused_in_another_group_is_refused() -> None:
    reg = {"employee": "li", "channel": "list_call"}
    events = [
        ev("a1", "registered", "01T09:00:00", customer="A", **reg),
        ev("a1", "registered", "01T10:00:00", customer="B", **reg),
    ]
    with pytest.raises(EventError) as err:
        _run(HX, events)
    assert err.value.codes == ["PE212"] and err.value.first.event_id == "a1"
    with pytest.raises(EventError) as direct:
        HX.evaluate(events, as_of=AS_OF)
    assert direct.value.codes == ["PE212"]


def test_native_backend_refuses_what_only_the_merge_counts() -> None:
    with pytest.raises(EvaluationError) as err:
        _run_native = list(stream.groups(HX, [], backend="native"))
        del _run_native
    assert err.value.codes == ["PE312"] and "evaluate_many" in str(err.value)


def test_inert_types_of_the_packs() -> None:
    assert inert_types(HX) == {"record_filed", "sale_transferred"}
    assert "employee_resigned" not in inert_types(HX)  # it transfers customers


@settings(max_examples=20, deadline=None)
@given(hx_histories(max_events=30))
def test_hypothesis_histories_stream_exactly(history: list[Event]) -> None:
    order = stream.grouped(HX, history)
    buf = io.StringIO()
    stream.evaluate_stream(HX, order, buf, as_of=AS_OF)
    sf = HX.compiled.subject_field
    inert = inert_types(HX)
    relevant = [e for e in history if e.get(sf) is None and e["type"] not in inert]
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    check_final(HX, order, lines.pop(), AS_OF)
    for row in lines:
        if row["subjects"]:
            mine = set(row["subjects"])
            as_streamed = [e for e in order if e.get(sf) in mine]
            full = _dump(HX, relevant + as_streamed, AS_OF)
            assert _subject_part(row["decision"], mine) == _subject_part(full, mine)
            cut = [e for e in history if e.get(sf) in mine]
            if cut == as_streamed:  # else grouped() had to move a subject's events
                full = _dump(HX, relevant + cut, AS_OF)
                assert _subject_part(row["decision"], mine) == _subject_part(full, mine)


def test_parquet_columns(tmp_path: Path) -> None:
    history = generate(40, seed=3)
    out = tmp_path / "d.parquet"
    summary = stream.evaluate_stream(HX, stream.grouped(HX, history), out, as_of=AS_OF)
    table = pq.read_table(out)
    assert table.column_names == [
        "group", "subject", "subjects", "events", "owner", "penalties", "overdue",
        "violations", "decision",
    ]  # fmt: skip
    assert table.num_rows == summary.groups
    rows = table.to_pylist()
    assert rows[-1]["group"] == -1 and rows[-1]["subject"] is None
    for row in rows[:-1]:
        d = json.loads(row["decision"])
        assert row["penalties"] == len(d["penalties"])
        assert row["overdue"] == sum(o["status"] == "overdue" for o in d["obligations"])
        assert row["violations"] == len(d["violations"])
        if row["subject"] is not None:
            spans = d["ownerships"].get(row["subject"], [])
            last = spans[-1] if spans else None
            assert row["owner"] == (last["owner"] if last and last["end"] is None else None)


# ---------------------------------------------------------------- grouping


def ev(i: str, etype: str, at: str, **fields: Any) -> Event:
    return {"id": i, "type": etype, "at": f"2026-03-{at}+08:00", **fields}


def _run(policy: pe.Policy, events: list[Event]) -> list[stream.Group]:
    """The groups' results (the final one, index -1, left off)."""
    out = list(stream.groups(policy, events, as_of=AS_OF))
    assert out[-1].index == -1
    return out[:-1]


def test_time_ordered_history_is_refused_at_the_event() -> None:
    with pytest.raises(EventError) as err:
        _run(HX, _example("huixiao_march.json"))
    assert err.value.codes == ["PE213"]
    assert err.value.first.event_id is not None
    assert "evaluate_many" in str(err.value)


def test_subject_seen_again_after_its_group_closed() -> None:
    events = [
        ev("a1", "registered", "02T09:00:00", customer="A", employee="li", channel="list_call"),
        ev("b1", "registered", "02T10:00:00", customer="B", employee="li", channel="list_call"),
        ev("a2", "preheated", "03T10:00:00", customer="A", employee="li"),
    ]
    with pytest.raises(EventError) as err:
        _run(HX, events)
    assert err.value.first.code == "PE213" and err.value.first.event_id == "a2"
    assert "'A'" in err.value.first.message


def test_event_without_subject_after_the_groups_began() -> None:
    events = [
        ev("a1", "registered", "02T09:00:00", customer="A", employee="li", channel="list_call"),
        ev("r1", "employee_resigned", "05T09:00:00", employee="li"),
    ]
    with pytest.raises(EventError) as err:
        _run(HX, events)
    assert err.value.first.code == "PE213" and err.value.first.event_id == "r1"


def test_linked_subjects_either_direction() -> None:
    reg = {"employee": "li", "channel": "list_call"}
    referrer_first = [
        ev("b1", "registered", "01T09:00:00", customer="B", **reg),
        ev("a1", "registered", "02T09:00:00", customer="A", referred_by="B", **reg),
        ev("c1", "registered", "02T10:00:00", customer="C", **reg),
    ]
    groups = _run(HX, referrer_first)
    assert [g.subjects for g in groups] == [("B", "A"), ("C",)]
    referred_first = [referrer_first[1], referrer_first[0], referrer_first[2]]
    groups = _run(HX, referred_first)
    assert [g.subjects for g in groups] == [("A", "B"), ("C",)]
    for g in groups:
        cut = [e for e in referred_first if e["customer"] in g.subjects]
        assert g.decision == HX.evaluate(cut, as_of=AS_OF, resumable=False)


def test_a_link_to_a_written_group_is_refused() -> None:
    reg = {"employee": "li", "channel": "list_call"}
    events = [
        ev("a1", "registered", "01T09:00:00", customer="A", **reg),
        ev("b1", "registered", "01T10:00:00", customer="B", **reg),
        ev("c1", "registered", "02T09:00:00", customer="C", referred_by="A", **reg),
    ]
    with pytest.raises(EventError) as err:
        _run(HX, events)
    assert err.value.first.code == "PE213" and err.value.first.event_id == "c1"
    assert "'C' to 'A'" in err.value.first.message
    assert [g.subjects for g in _run(HX, stream.grouped(HX, events))] == [("A", "C"), ("B",)]


def test_policy_reading_across_subjects_is_refused() -> None:
    with pytest.raises(EvaluationError) as err:
        _run(_load("online_store"), _example("online_store.json"))
    assert err.value.codes == ["PE312"]
    assert "metric" in str(err.value) and "evaluate_many" in str(err.value)


def test_link_without_subject_is_refused_at_the_event() -> None:
    events = [ev("x1", "registered", "01T09:00:00", employee="li", referred_by="A")]
    with pytest.raises(EvaluationError) as err:
        _run(HX, events)
    assert err.value.first.code == "PE312" and err.value.first.event_id == "x1"


def test_a_bad_event_is_reported_as_evaluate_reports_it() -> None:
    events = [ev("a1", "registered", "02T09:00:00", customer="A", employee="li", channel="?")]
    with pytest.raises(EventError) as err:
        _run(HX, events)
    with pytest.raises(EventError) as direct:
        HX.evaluate(events, as_of=AS_OF)
    assert err.value.codes == direct.value.codes


def test_missing_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"policyengine\[parquet\]"):
        stream.evaluate_stream(HX, [], tmp_path / "x.parquet")


# ---------------------------------------------------------------- memory


def _clones(template: list[list[Event]], n: int) -> Iterable[Event]:
    """``n`` groups, each a renamed copy of a template group (fresh subjects and ids)."""
    for k in range(n):
        for e in template[k % len(template)]:
            yield {
                **e,
                "id": f"{e['id']}-{k}",
                "customer": f"{e['customer']}-{k}",
                **({"referred_by": f"{e['referred_by']}-{k}"} if e.get("referred_by") else {}),
            }


def _peak(template: list[list[Event]], n: int) -> tuple[int, stream.Summary]:
    with open(os.devnull, "w", encoding="utf-8") as sink:
        tracemalloc.start()
        try:
            summary = stream.evaluate_stream(HX, _clones(template, n), sink, as_of=AS_OF)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert summary.groups == n + 1  # and the final line
    return peak, summary


def test_memory_is_flat_in_the_number_of_groups() -> None:
    """Memory grows with the ids and subjects read (a few dozen bytes each), neither with the
    penalties and counter increments the final line holds nor with the events of a group."""
    history = generate(30, seed=5)
    sf = HX.compiled.subject_field
    rows = _run(HX, stream.grouped(HX, history))
    by_subject = {e[sf]: e for e in history if isinstance(e.get(sf), str)}
    template = [
        [e for e in history if e.get(sf) in set(r.subjects)]
        for r in rows
        if r.subjects and all(s in by_subject for s in r.subjects)
    ]
    template = [t for t in template if t][:10]
    (small, s_sum), (large, l_sum) = _peak(template, 300), _peak(template, 1000)
    kept, events = l_sum.kept - s_sum.kept, l_sum.events - s_sum.events
    assert kept > 0
    # the final line's rows wait on disk (stream_store): a row cost about 2.7 KB when held
    assert large - small < 256 * (kept + events), (small, large, kept, events)
    # what a whole history of the large size holds, for scale: far above the stream's peak
    tracemalloc.start()
    try:
        whole = list(_clones(template, 300))
        HX.evaluate(whole, as_of=AS_OF, resumable=False)
        held = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert large < held, (large, held)


# ---------------------------------------------------------------- files and the command line


def test_jsonl_history_is_read_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text('{"id": "a", "type": "x"}\n\n{"id": "b", "type": "x"}\n{"id": \n')
    it = iter_history(path)
    assert next(it)["id"] == "a" and next(it)["id"] == "b"  # before the bad line is read
    with pytest.raises(EventError) as err:
        next(it)
    assert err.value.first.location is not None and err.value.first.location.line == 4


def test_jsonl_reader_is_strict(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text('{"id": "a", "id": "b"}\n')
    with pytest.raises(EventError) as err:
        list(iter_history(path))
    assert err.value.codes == ["PE210"]


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_cli_stream(suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = generate(25, seed=11)
    src = tmp_path / "h.jsonl"
    with src.open("w", encoding="utf-8") as f:
        for e in stream.grouped(HX, history):
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    out = tmp_path / f"d.{suffix}"
    rc = main(["eval", str(PACKS / "huixiao"), str(src), "--as-of", AS_OF, "--stream", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert "groups" in capsys.readouterr().err
    api = tmp_path / f"api.{suffix}"
    stream.evaluate_stream(HX, stream.grouped(HX, history), api, as_of=AS_OF, exclude={"trace"})
    rows = list(stream.read_back(out))
    assert rows == list(stream.read_back(api))
    assert rows and all("trace" not in r["decision"] for r in rows)  # as eval --format json


def test_cli_stream_refuses_an_ungrouped_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d.jsonl"
    march = str(ROOT / "examples" / "huixiao_march.json")
    rc = main(["eval", str(PACKS / "huixiao"), march, "--stream", str(out)])
    assert rc == 1
    assert "PE213" in capsys.readouterr().err
