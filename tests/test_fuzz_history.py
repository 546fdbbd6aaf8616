"""Fuzzing histories (issue 14): whatever a history holds, the API and every history reader end
in a clean decision or a ``PolicyEngineError``, never another exception.

Bounded for CI: each fuzzer takes at most its ``CAP`` examples of the profile
(``HYPOTHESIS_PROFILE``, see tests/strategies.py; ``ci`` is derandomized), a few hundred in all;
``FUZZ_SCALE=20 HYPOTHESIS_PROFILE=thorough`` hunts longer.
Inputs that once broke something are kept as explicit cases (``@example`` and the
parametrized regressions at the end; more in tests/test_hostile_history.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import policyengine as pe
from policyengine.tools.history_io import read_located
from strategies import profile

ROOT = Path(__file__).resolve().parents[1]
POLICY = pe.load_policy(ROOT / "policies" / "huixiao")
# decimals, sums and budgets: where 1e999999999 once overflowed the decimal arithmetic
DECIMALS = pe.load_policy(ROOT / "policies" / "customer_management")
TYPES = sorted({*POLICY.compiled.events, *DECIMALS.compiled.events})
FIELDS = sorted(
    {c.name for p in (POLICY, DECIMALS) for checks in p.compiled.events.values() for c in checks}
)
WORK = Path(tempfile.mkdtemp(prefix="fuzz-history-"))


def capped(n: int) -> settings:
    """The profile, with at most ``n`` examples (times ``FUZZ_SCALE``, for a long local hunt)."""
    base = profile()
    return settings(
        base, max_examples=min(base.max_examples, n * int(os.environ.get("FUZZ_SCALE", "1")))
    )


# ---------------------------------------------------------------- values and events

instants = st.one_of(
    st.sampled_from(
        [
            "2026-03-02T10:00:00+08:00",
            "2026-03-03T00:00:00+08:00",
            "0001-01-01T00:00:00+14:00",
            "0001-01-02T00:00:00Z",
            "9999-12-20T00:00:00Z",
            "9999-12-30T23:59:59Z",
            "9999-12-31T23:59:59Z",
            "2026-03-02T10:00:00",  # no offset
            "2026-02-30T10:00:00+08:00",
        ]
    ),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)
texts = st.text(st.characters(blacklist_categories=()), max_size=12)  # surrogates included
atoms = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([5000, 4400, 4299]).map(lambda n: 10**n),  # hypothesis cannot repr it
    st.floats(),
    texts,
    st.sampled_from(["C1", "C2", "A", "B", "list_call", "feedback", "specialist", "2026-03-01"]),
    st.sampled_from(["12.50", "1e999999999", "-1", "1e4000", "NaN", "0"]),  # decimal-ish text
    instants,
)
keys = st.one_of(st.sampled_from(FIELDS), texts, st.integers(), st.none())
values = st.recursive(
    atoms,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=6,
)
events = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.sampled_from(["e1", "e2", "e3"]), atoms),
        "type": st.one_of(st.sampled_from(TYPES), atoms),
        "at": st.one_of(instants, atoms),
        "customer": st.one_of(st.sampled_from(["C1", "C2"]), atoms),
        "employee": st.one_of(st.sampled_from(["A", "B"]), atoms),
        "channel": st.sampled_from(["list_call", "feedback", "store", "x"]),
        "boxes": st.one_of(st.integers(-2, 5), atoms),
    },
).flatmap(
    lambda base: st.dictionaries(keys, values, max_size=3).map(lambda extra: {**extra, **base})
)
histories = st.lists(st.one_of(events, events, values), max_size=6)


def clean_or_refused(items: Any, as_of: Any = None, policy: pe.Policy = POLICY) -> None:
    try:
        decision = policy.evaluate(items, as_of=as_of)
    except pe.PolicyEngineError as exc:
        str(exc)
        assert exc.problems
        return
    body = decision.model_dump(mode="json")
    json.dumps(body, ensure_ascii=False).encode("utf-8")


@capped(120)
@given(histories, st.one_of(st.none(), instants))
@example([{"type": "registered", "at": "9999-12-30T23:59:59Z", "customer": "C1",
           "employee": "A", "channel": "list_call"}], None)  # fmt: skip
@example([{"customer": {1: "a", "b": 2}}], None)
@example([{"id": 10**20}, {"boxes": 2**64}], None)
@example([{"type": "registered", "customer": "\ud800"}], "0001-01-01T00:00:00+14:00")
def test_api_fuzz(items: list[Any], as_of: Any) -> None:
    clean_or_refused(items, as_of)


@capped(60)
@given(histories, st.one_of(st.none(), instants))
@example(
    [
        {
            "id": "e",
            "type": "expense_recorded",
            "at": "2026-03-03T10:00:00+08:00",
            "customer": "C1",
            "employee": "A",
            "line": "L",
            "amount": "1e999999999",
        }
    ],
    None,
)
def test_api_fuzz_decimals(items: list[Any], as_of: Any) -> None:
    clean_or_refused(items, as_of, DECIMALS)


# ---------------------------------------------------------------- history files


def text_of(value: Any) -> str:
    try:
        return str(value)
    except ValueError:  # an int of more than 4300 digits: written out as digits
        return "9" * 5000


def as_csv(items: list[Any]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    header = sorted({text_of(k) for e in items if isinstance(e, dict) for k in e})
    w.writerow(header)
    for e in items:
        if isinstance(e, dict):
            w.writerow([text_of(e.get(k, "")) for k in header])
    return out.getvalue()


def as_yaml(items: list[Any]) -> str:
    lines = []
    for e in items:
        if isinstance(e, dict):
            pairs = ", ".join(f"{text_of(k)}: {text_of(v)}" for k, v in e.items())
            lines.append("- {" + pairs + "}")
    return "\n".join(lines)


def safe_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return "[]"


plain_events = st.lists(events, max_size=4)


def file_text(suffix: str) -> st.SearchStrategy[bytes]:
    shaped = {
        ".json": plain_events.map(safe_json),
        ".jsonl": plain_events.map(lambda es: "\n".join(safe_json(e) for e in es)),
        ".csv": plain_events.map(as_csv),
        ".yaml": plain_events.map(as_yaml),
    }[suffix]
    damaged = st.tuples(shaped, st.integers(0, 400), texts).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
    )
    encoded = st.one_of(shaped, damaged, texts).map(lambda s: s.encode("utf-8", "surrogatepass"))
    return st.one_of(encoded, encoded, st.binary(max_size=200))


def read_and_evaluate(suffix: str, data: bytes) -> None:
    path = WORK / f"h{suffix}"
    path.write_bytes(data)
    try:
        history = read_located(path, POLICY)
    except pe.EventError as exc:
        assert all(p.location is not None for p in exc.problems), exc
        return
    clean_or_refused(history.events)


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv", ".yaml"])
@capped(60)
@given(data=st.data())
def test_reader_fuzz(suffix: str, data: st.DataObject) -> None:
    read_and_evaluate(suffix, data.draw(file_text(suffix)))


# ---------------------------------------------------------------- regressions found by fuzzing


@pytest.mark.parametrize(
    "suffix,data",
    [
        (".json", b"[" * 5000),
        (".json", b'[{"id": 1e999999}]'),
        (".json", b'[{"a": 1, "a": 1}]'),
        (".jsonl", '{"id": "a\u2028b"}'.encode()),
        (".jsonl", b"\x0b\x1c\x1d\x1e\x85"),
        (".csv", b"type,type\n"),
        (".csv", b'id\n"unclosed'),
        (".csv", b"at,type\n9999-12-31T23:59:59Z,registered\n"),
        (".yaml", b"- id: !!python/object:os.system echo\n"),
        (".yaml", b"- {id: 0b101, at: 1:30, type: 0x1A}\n"),
        (".yaml", b"&a [*a]"),
        (".yaml", b"\xef\xbb\xbf- {}"),
    ],
)
def test_reader_regressions(suffix: str, data: bytes) -> None:
    read_and_evaluate(suffix, data)
