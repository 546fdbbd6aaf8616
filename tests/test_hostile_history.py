"""Hostile and broken histories (issue 14): every bad input gets the library's own error, with a
code and a place (event id and field, or file:line:col), in bounded time and memory; nothing is
half-applied, nothing ends in a traceback, nothing is silently misread.

Through the API (``Policy.evaluate``), each history reader (``tools.history_io.read_located``)
and the command line (``main`` in process, and a real ``python -m policyengine`` for the pipe).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe
from policyengine.calendars import STATUTORY
from policyengine.cli import main
from policyengine.runtime.events import content_digest, derived_id, event_id, same_content
from policyengine.times import MAX_US, MIN_US, parse_duration
from policyengine.tools.history_io import read_located

ROOT = Path(__file__).resolve().parents[1]
HUIXIAO = ROOT / "policies" / "huixiao" / "resources.yaml"

POLICY = """\
policy: {id: hostile, title: hostile input, version: "1", timezone: Asia/Shanghai,
         currency: CNY, subject: customer, unknown_events: reject}
clauses:
  - {id: H-1, text: 原文, reading: Call within 30 days; visit monthly.}
events:
  registered:
    fields: {customer: str, employee: str, visits: "int?", amount: "decimal?",
             tags: "list[str]?", codes: "list[int]?", when: "time?", note: "str?"}
  called: {fields: {customer: str, employee: str}}
rules:
  - id: call-within-30-days
    clause: H-1
    on: registered
    expect:
      event: called
      match: {customer: $event.customer}
      within: 30 days
      obligation: call the customer
      party: $event.employee
  - id: monthly-call
    clause: H-1
    on: called
    expect:
      event: called
      match: {customer: $event.customer}
      every: month
      obligation: call every month
      party: $event.employee
"""

BIG = 10**5000  # 5001 digits: str() of it raises ValueError (Python's 4300-digit limit)


@pytest.fixture(scope="module")
def policy() -> pe.Policy:
    return pe.load_policy_text(POLICY, "hostile.yaml")


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("policy") / "hostile.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return str(path)


def reg(**kw: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "r1",
        "type": "registered",
        "at": "2026-03-02T10:00:00+08:00",
        "customer": "C1",
        "employee": "A",
    }
    event.update(kw)
    return {k: v for k, v in event.items() if v is not None}


def refused(policy: pe.Policy, events: Any, as_of: Any = None) -> pe.PolicyEngineError:
    with pytest.raises(pe.PolicyEngineError) as info:
        policy.evaluate(events, as_of=as_of)
    return info.value


def one(error: pe.PolicyEngineError, code: str) -> pe.Problem:
    found = [p for p in error.problems if p.code == code]
    assert found, error
    return found[0]


# ---------------------------------------------------------------- the edges of time


@pytest.mark.parametrize(
    "at",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC: converting underflows
        "0001-01-01T00:00:00Z",  # year 1 in UTC, year 1 in +08:00 ... but 0000 in -01:00
        "9999-12-31T23:59:59Z",  # year 10000 in Asia/Shanghai
        "9999-12-31T00:00:00-12:00",
    ],
)
def test_an_event_at_the_edge_of_datetime_is_refused(policy: pe.Policy, at: str) -> None:
    error = refused(policy, [reg(at=at)])
    assert isinstance(error, pe.EventError)
    p = one(error, "PE208")
    assert (p.event_id, p.field) == ("r1", "at")
    assert "supported range" in p.message


@pytest.mark.parametrize(
    "as_of", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"]
)
def test_an_as_of_at_the_edge_is_refused(policy: pe.Policy, as_of: str) -> None:
    error = refused(policy, [reg()], as_of=as_of)
    assert isinstance(error, pe.EventError)
    assert error.codes == ["PE208"] and error.first.field == "as_of"


def test_the_last_supported_instants_evaluate(policy: pe.Policy) -> None:
    d = policy.evaluate([reg(at="0001-01-02T00:00:00Z")], as_of="0001-01-03T00:00:00Z")
    assert [o.status for o in d.obligations] == ["open"]
    json.dumps(d.model_dump(mode="json"))


def test_a_deadline_past_the_range_is_an_evaluation_error(policy: pe.Policy) -> None:
    # within: 30 days after 9999-12-20 is in year 10000
    error = refused(policy, [reg(at="9999-12-20T00:00:00Z")])
    assert isinstance(error, pe.EvaluationError)
    assert error.codes == ["PE307"] and "30 days after 9999-12-20" in error.first.message


def test_a_monthly_period_past_the_range_is_an_evaluation_error(policy: pe.Policy) -> None:
    called = {"id": "c", "type": "called", "at": "9999-12-05T00:00:00Z", "customer": "C1",
              "employee": "A"}  # fmt: skip
    error = refused(policy, [called])
    assert isinstance(error, pe.EvaluationError)
    assert error.codes == ["PE307"] and "month period" in error.first.message


def test_durations_at_the_edges() -> None:
    for text in ("30 days", "1 month", "2 years", "3 weeks", "same day", "end of month"):
        d = parse_duration(text)
        with pytest.raises(pe.EvaluationError) as info:
            d.due(MAX_US - 1, "Asia/Shanghai", STATUTORY)
        assert info.value.codes == ["PE307"]
        # a window open to the end
        assert d.covers(MAX_US - 2, MAX_US - 1, "Asia/Shanghai", STATUTORY)
        assert MIN_US <= d.back(MIN_US + 1, "America/New_York", STATUTORY) <= MIN_US + 1  # clamped
    with pytest.raises(pe.EvaluationError):
        parse_duration("10 hours").due(MAX_US - 1, "UTC", STATUTORY)


def test_a_working_day_window_past_the_calendar(policy: pe.Policy) -> None:
    text = POLICY.replace("within: 30 days", "within: 3 working days")
    p = pe.load_policy_text(text, "wd.yaml")
    error = refused(p, [reg(at="9999-12-20T00:00:00Z")])
    assert isinstance(error, pe.EvaluationError) and error.codes[0] in ("PE302", "PE307")


# ---------------------------------------------------------------- ids and numbers


def test_an_int_id_of_5000_digits(policy: pe.Policy) -> None:
    error = refused(policy, [reg(id=BIG)])
    p = one(error, "PE211")
    assert (p.event_id, p.field) == ("#0", "id")
    assert event_id(reg(id=BIG), 0) is None


def test_a_number_of_5000_digits_in_fields(policy: pe.Policy) -> None:
    for field, value in (("visits", BIG), ("amount", BIG), ("codes", [1, BIG])):
        p = one(refused(policy, [reg(**{field: value})]), "PE211")
        assert (p.event_id, p.field) == ("r1", field)
    p = one(refused(policy, [reg(amount="9" * 5000)]), "PE211")
    assert p.field == "amount"


def test_a_decimal_exponent_that_overflows_the_arithmetic() -> None:
    # found hunting: 1e999999999 passed the checks, then decimal.Overflow in a condition's sum
    pack = pe.load_policy(ROOT / "policies" / "customer_management")
    line = {"customer": "C1", "employee": "A", "line": "L"}
    events = [
        {"id": "b", "type": "budget_line_submitted", "at": "2026-03-02T10:00:00+08:00",
         **line, "amount": "100"},
        {"id": "e", "type": "expense_recorded", "at": "2026-03-03T10:00:00+08:00",
         **line, "amount": "1e999999999"},
    ]  # fmt: skip
    p = one(refused(pack, events), "PE211")
    assert (p.event_id, p.field) == ("e", "amount")
    events[1]["amount"] = "1e4000"
    pack.evaluate(events)


def test_a_number_of_5000_digits_in_an_event_without_id(policy: pe.Policy) -> None:
    error = refused(policy, [reg(id=None, extra=BIG)])
    p = one(error, "PE205")
    assert p.event_id is not None and p.event_id.startswith("auto-0-")


# ---------------------------------------------------------------- derived ids of odd content


def deep(n: int) -> Any:
    value: Any = "x"
    for _ in range(n):
        value = [value]
    return value


@pytest.mark.parametrize(
    "content",
    [
        {"customer": {1: "a", "b": 2}},  # keys of mixed types: json cannot sort them
        {"customer": deep(5000)},  # RecursionError in json.dumps
        {"customer": {"a": deep(5000)}},
        {"extra": BIG},  # the int -> str limit
        {"extra": "\ud800"},  # a lone surrogate: no UTF-8 for it
        {(1, 2): "tuple key", None: 1, 2.5: "float key"},
    ],
)
def test_derived_ids_of_hostile_content(policy: pe.Policy, content: dict[str, Any]) -> None:
    event = reg(id=None, **{str(k): v for k, v in content.items() if isinstance(k, str)})
    event.update({k: v for k, v in content.items() if not isinstance(k, str)})
    first, again = derived_id(event, 3), derived_id(dict(event), 3)
    assert first == again and first.startswith("auto-3-")
    assert same_content(event, dict(event))
    error = refused(policy, [event])
    assert isinstance(error, pe.EventError)
    assert all(p.event_id and p.event_id.startswith("auto-0-") for p in error.problems)


def test_a_cyclic_event_is_digested_and_refused(policy: pe.Policy) -> None:
    loop: list[Any] = []
    loop.append(loop)
    event = reg(id=None, extra=loop)
    assert content_digest(event) == content_digest(event)
    assert one(refused(policy, [event]), "PE205").field == "extra"


def test_a_shared_structure_does_not_explode() -> None:
    # 2**60 paths through 60 shared levels: json.dumps would never end
    value: Any = ["x"]
    for _ in range(60):
        value = [value, value]
    assert len(content_digest({"extra": value})) == 40


def test_derived_ids_of_plain_events_are_unchanged() -> None:
    event = {"type": "registered", "at": "2026-03-02T10:00:00+08:00", "customer": "张三"}
    text = json.dumps(event, sort_keys=True, default=str).encode("utf-8")
    import hashlib

    assert content_digest(event) == hashlib.sha1(text).hexdigest()


def test_repeated_deep_events_are_compared(policy: pe.Policy) -> None:
    a, b = reg(extra=deep(5000)), reg(extra=deep(5000))
    assert same_content(a, b)
    error = refused(policy, [a, b])
    assert error.codes == ["PE205"]  # the repeat is dropped, the first reported once


# ---------------------------------------------------------------- lone surrogates
# Decision: a lone surrogate is not text (no UTF-8 can carry it), so a history holding one in
# an id, a type or a text field is refused (PE203) rather than evaluated into a decision that
# no JSON consumer or terminal could take.


@pytest.mark.parametrize(
    "event,field",
    [
        (reg(customer="\ud800"), "customer"),
        (reg(customer="张\udfff三"), "customer"),
        (reg(id="\ud800"), "id"),
        (reg(tags=["ok", "\udc80"]), "tags"),
        (reg(type="\ud800"), "type"),
    ],
)
def test_lone_surrogates_are_refused(policy: pe.Policy, event: dict[str, Any], field: str) -> None:
    p = one(refused(policy, [event]), "PE203")
    assert p.field == field and "surrogate" in p.message
    str(p).encode("utf-8")  # the message itself is printable


def test_surrogates_in_an_ignored_type_are_refused() -> None:
    text = POLICY.replace("unknown_events: reject", "unknown_events: ignore")
    p = pe.load_policy_text(text, "ignore.yaml")
    error = refused(p, [reg(type="odd\ud800")])
    assert error.codes == ["PE203"]


def test_valid_non_ascii_text_still_evaluates_and_dumps(policy: pe.Policy) -> None:
    d = policy.evaluate([reg(customer="张三 😀", note="\u2028ok")])
    json.dumps(d.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")


def test_cli_json_refuses_a_surrogate_escape(
    tmp_path: Path, policy_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "h.json"
    path.write_text('[{"id": "r1", "type": "registered", "at": "2026-03-02T10:00:00+08:00", '
                    '"customer": "\\ud800", "employee": "A"}]', encoding="utf-8")  # fmt: skip
    assert main(["eval", policy_file, str(path), "--format", "json"]) == 1
    err = capsys.readouterr().err
    assert "PE203" in err and f"{path}:1:2" in err


# ---------------------------------------------------------------- not a history


@pytest.mark.parametrize(
    "events",
    [[1, "x", None], [[reg()]], "abc", {"a": 1}],
    ids=["scalars", "nested list", "a string", "a mapping"],
)
def test_not_a_list_of_mappings(policy: pe.Policy, events: Any) -> None:
    error = refused(policy, events)
    assert isinstance(error, pe.EventError) and "PE207" in error.codes


@pytest.mark.parametrize("events", [5, "abc", {"a": 1}, b"[]", None])
def test_prepare_refuses_what_is_not_a_history(policy: pe.Policy, events: Any) -> None:
    from policyengine.runtime.events import prepare

    with pytest.raises(pe.EventError) as info:
        prepare(policy.compiled, events)
    assert info.value.codes == ["PE207"] and "list of events" in info.value.first.message


def test_evaluate_refuses_a_number_or_a_text_as_history(policy: pe.Policy) -> None:
    for history in (5, "abc", {"id": "e1"}):
        assert refused(policy, history).codes == ["PE207"]
        with pytest.raises(pe.EventError):
            policy.evaluate(history, resumable=False)  # type: ignore[arg-type]


def test_resume_refuses_a_5000_digit_id_as_evaluate_does(policy: pe.Policy) -> None:
    stored = policy.evaluate([]).snapshot()
    with pytest.raises(pe.EventError) as info:
        policy.resume(stored, [{"id": 10**5000, "type": "x", "at": "2026-03-02T10:00:00Z"}])
    assert "PE211" in info.value.codes


@pytest.mark.parametrize(
    "change,code",
    [
        ({"type": 5}, "PE201"),
        ({"type": ["registered"]}, "PE201"),
        ({"type": {"a": 1}}, "PE201"),
        ({"at": 1772416800}, "PE204"),
        ({"at": True}, "PE204"),
        ({"at": ["2026-03-02T10:00:00+08:00"]}, "PE204"),
        ({"at": "2026-03-02T10:00:00+08:00" + "0" * 100_000}, "PE204"),
        ({"id": True}, "PE203"),
        ({"id": 1.5}, "PE203"),
        ({"when": "9999-12-31T23:59:59Z"}, "PE208"),
        ({"when": "2026-03-02T10:00:00"}, "PE203"),
        ({"visits": 1.0}, "PE203"),
        ({"amount": float("nan")}, "PE203"),
        ({"amount": "1e999999999"}, "PE211"),  # decimal.Overflow in conditions, found hunting
        ({"amount": "1e-999999999"}, "PE211"),
        ({"amount": "1e4000"}, None),
    ],
)
def test_odd_field_values(policy: pe.Policy, change: dict[str, Any], code: str | None) -> None:
    event = reg(**change)
    if code is None:
        policy.evaluate([event])
        return
    assert code in refused(policy, [event]).codes


def test_many_unknown_fields_are_all_reported(policy: pe.Policy) -> None:
    event = reg(**{f"f{i}": i for i in range(2000)})
    error = refused(policy, [event])
    assert error.codes.count("PE205") == 2000


def test_keys_that_are_not_text(policy: pe.Policy) -> None:
    event = reg()
    event[BIG] = 1  # type: ignore[index]
    event[(1, 2)] = 2  # type: ignore[index]
    error = refused(policy, [event])
    assert error.codes == ["PE205", "PE205"]
    str(error)


# ---------------------------------------------------------------- history files


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def read_refused(path: Path, policy: pe.Policy | None = None) -> pe.Problem:
    with pytest.raises(pe.EventError) as info:
        read_located(path, policy)
    p = info.value.first
    assert p.location is not None and p.location.file == str(path)
    return p


EVENT_JSON = (
    '{"id": "r1", "type": "registered", "at": "2026-03-02T10:00:00+08:00", '
    '"customer": "C1", "employee": "A"}'
)


def test_json_nested_100k_deep(tmp_path: Path) -> None:
    p = read_refused(write(tmp_path, "h.json", "[" * 100_000 + "]" * 100_000))
    assert p.code == "PE211" and p.location is not None and p.location.column == 65


def test_json_nested_deeper_than_the_limit_but_parseable(tmp_path: Path) -> None:
    text = '[{"id": "a", "x": ' + "[" * 100 + "]" * 100 + "}]"
    p = read_refused(write(tmp_path, "h.json", text))
    assert p.code == "PE211" and "64 levels" in p.message


def test_json_nested_100k_deep_and_unclosed(tmp_path: Path) -> None:
    assert read_refused(write(tmp_path, "h.json", "[" * 100_000)).code == "PE211"


def test_json_number_of_5000_digits(tmp_path: Path) -> None:
    text = '[\n  {"id": 1, "n": ' + "9" * 5000 + "}\n]"
    p = read_refused(write(tmp_path, "h.json", text))
    assert p.code == "PE211" and p.location is not None
    assert (p.location.line, p.location.column) == (2, 18)


def test_json_long_digits_inside_text_are_fine(tmp_path: Path) -> None:
    text = '[{"id": "' + "9" * 5000 + '"}]'
    assert read_located(write(tmp_path, "h.json", text)).events[0]["id"] == "9" * 5000


def test_json_duplicate_key_is_refused(tmp_path: Path) -> None:
    text = '[\n  {"id": "r1", "customer": "C1",\n   "customer": "C2"}\n]'
    p = read_refused(write(tmp_path, "h.json", text))
    assert p.code == "PE210" and "'customer'" in p.message
    assert p.location is not None and (p.location.line, p.location.column) == (3, 4)


def test_json_duplicate_key_written_with_escapes(tmp_path: Path) -> None:
    text = '[{"id": "r1", "\\u0069d": "r2"}]'  # "\u0069d" is "id"
    assert read_refused(write(tmp_path, "h.json", text)).code == "PE210"


def test_json_same_key_in_two_objects_is_fine(tmp_path: Path) -> None:
    text = '{"events": [{"id": "a", "x": {"id": 1}}, {"id": "b"}]}'
    assert len(read_located(write(tmp_path, "h.json", text)).events) == 2


def test_jsonl_duplicate_key_and_long_number_are_located(tmp_path: Path) -> None:
    text = EVENT_JSON + "\n" + '{"id": "a", "id": "b"}\n\n{"n": ' + "1" * 5000 + "}\n"
    with pytest.raises(pe.EventError) as info:
        read_located(write(tmp_path, "h.jsonl", text))
    assert info.value.codes == ["PE210", "PE211"]
    assert [p.location.line for p in info.value.problems if p.location] == [2, 4]


def test_jsonl_keeps_u2028_and_u2029_inside_a_line(tmp_path: Path) -> None:
    text = EVENT_JSON.replace('"C1"', '"C\u20281\u2029"') + "\r\n" + EVENT_JSON.replace("r1", "r2")
    text += "\n\x0c\n"  # a form feed alone: whitespace, an empty line
    history = read_located(write(tmp_path, "h.jsonl", text))
    assert [e["customer"] for e in history.events] == ["C\u20281\u2029", "C1"]
    assert [w.line for w in history.where] == [1, 2]


def test_jsonl_deep_line(tmp_path: Path) -> None:
    p = read_refused(write(tmp_path, "h.jsonl", EVENT_JSON + "\n" + "[" * 100_000 + "\n"))
    assert p.code == "PE211" and p.location is not None and p.location.line == 2


@pytest.mark.parametrize(
    "text,code",
    [
        ("", "PE207"),
        ("5", "PE207"),
        ("[1, 2]", None),  # read; prepare refuses each (PE207)
        ('"abc"', "PE207"),
        ("\ufeff" + "[]", None),  # a BOM
        ("[]\x00", "PE207"),
        ("NaN", "PE207"),
    ],
)
def test_json_top_levels(tmp_path: Path, text: str, code: str | None) -> None:
    path = write(tmp_path, "h.json", text)
    if code is None:
        read_located(path)
    else:
        assert read_refused(path).code == code


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv", ".yaml"])
def test_binary_garbage_and_invalid_utf8(tmp_path: Path, suffix: str) -> None:
    for data in (b"\xff\xfe\x00garbage\x80", bytes(range(256)), b"\xc3("):
        path = write(tmp_path, "h" + suffix, data)
        assert read_refused(path).code in ("PE100", "PE207")


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv", ".yaml"])
def test_a_bom_is_read(tmp_path: Path, suffix: str) -> None:
    body = {
        ".json": "[" + EVENT_JSON + "]",
        ".jsonl": EVENT_JSON + "\n",
        ".csv": "id,type,at,customer,employee\nr1,registered,2026-03-02T10:00:00+08:00,C1,A\n",
        ".yaml": "- {id: r1, type: registered, at: 2026-03-02T10:00:00+08:00, customer: C1, "
        "employee: A}\n",
    }[suffix]
    history = read_located(write(tmp_path, "h" + suffix, "\ufeff" + body))
    assert history.events[0]["id"] == "r1"


def test_unknown_suffix_lists_the_formats(tmp_path: Path) -> None:
    p = read_refused(write(tmp_path, "h.txt", "[" + EVENT_JSON + "]"))
    assert p.code == "PE209" and ".jsonl" in p.message and ".csv" in p.message
    assert "malformed" not in p.message
    assert read_refused(write(tmp_path, "history", "[]")).code == "PE209"


def test_a_history_that_is_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "h.json"
    folder.mkdir()
    p = read_refused(folder)
    assert p.code == "PE116" and "folder" in p.message


def test_csv_short_and_long_rows(tmp_path: Path) -> None:
    text = (
        "id,type,at,customer,employee\n"
        "r1,registered,2026-03-02T10:00:00+08:00,C1\n"
        "r2,registered,2026-03-02T10:00:00+08:00,C1,A,extra\n"
        "r3,registered\n"
    )
    with pytest.raises(pe.EventError) as info:
        read_located(write(tmp_path, "h.csv", text))
    assert info.value.codes == ["PE207"] * 3
    places = [(p.location.line, p.location.column) for p in info.value.problems if p.location]
    assert places == [(2, 5), (3, 6), (4, 3)]


def test_csv_cell_over_the_field_size_limit(tmp_path: Path) -> None:
    text = 'id,type,note\nr1,registered,"' + "x" * 200_000 + '"\nr2,registered,ok\n'
    p = read_refused(write(tmp_path, "h.csv", text))
    assert p.code == "PE211" and p.location is not None and p.location.line == 2


def test_csv_unclosed_quote_swallowing_the_file(tmp_path: Path) -> None:
    text = 'id,type,note\nr1,registered,"unclosed\n' + "r,registered,x\n" * 20_000
    assert read_refused(write(tmp_path, "h.csv", text)).code == "PE211"


def test_csv_nul_character(tmp_path: Path, policy: pe.Policy) -> None:
    # Python 3.11's csv reads NUL as a character: kept as written, and the type is unknown
    history = read_located(write(tmp_path, "h.csv", "id,type\nr1,reg\x00istered\n"))
    assert history.events == [{"id": "r1", "type": "reg\x00istered"}]
    assert refused(policy, history.events).codes == ["PE201"]


def test_csv_duplicate_header(tmp_path: Path) -> None:
    p = read_refused(write(tmp_path, "h.csv", "id,type,customer,customer\nr1,registered,a,b\n"))
    assert p.code == "PE210" and p.location is not None and p.location.column == 4


def test_csv_multiline_cell_keeps_line_numbers(tmp_path: Path, policy: pe.Policy) -> None:
    text = (
        "id,type,at,customer,employee,visits\n"
        'r1,registered,2026-03-02T10:00:00+08:00,"C\n1",A,1\n'
        "r2,registered,2026-03-02T10:00:00+08:00,C2,A,many\n"
    )
    p = read_refused(write(tmp_path, "h.csv", text), policy)
    assert p.code == "PE203" and p.location is not None and p.location.line == 4


@pytest.mark.parametrize("cell", ["1_000", "١٢", "0x1A", " 12 ", "9" * 5000])
def test_csv_int_cells_are_decimal_digits(tmp_path: Path, policy: pe.Policy, cell: str) -> None:
    text = (
        f"id,type,at,customer,employee,visits\nr1,registered,2026-03-02T10:00:00+08:00,C,A,{cell}\n"
    )
    path = write(tmp_path, "h.csv", text)
    if cell == " 12 ":
        assert read_located(path, policy).events[0]["visits"] == 12
        return
    p = read_refused(path, policy)
    assert p.code == ("PE211" if len(cell) > 100 else "PE203")
    assert len(p.message) < 300


def test_yaml_numbers_that_are_not_decimal_stay_text(tmp_path: Path) -> None:
    text = (
        "- {id: 0x1A, type: registered, at: 2026-03-02T10:00:00+08:00, customer: 1:30, "
        "employee: 012}\n"
        "- id: 0o17\n  type: registered\n  note: 1_000\n  tags: [0x10, 7]\n  n: 12\n  f: 1.5\n"
    )
    events = read_located(write(tmp_path, "h.yaml", text)).events
    assert events[0]["id"] == "0x1A" and events[0]["customer"] == "1:30"
    assert events[0]["employee"] == "012"
    assert events[1]["id"] == "0o17" and events[1]["note"] == "1_000"
    assert events[1]["tags"] == ["0x10", 7] and events[1]["n"] == 12 and events[1]["f"] == 1.5


def test_yaml_hex_count_is_refused_not_misread(
    tmp_path: Path, policy_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "- {id: r1, type: registered, at: 2026-03-02T10:00:00+08:00, customer: C, employee: A, visits: 0x10}\n"  # noqa: E501
    path = write(tmp_path, "h.yaml", text)
    assert main(["eval", policy_file, str(path)]) == 1
    err = capsys.readouterr().err
    assert "PE203" in err and "visits" in err and f"{path}:1:" in err


def test_yaml_duplicate_key_and_deep_nesting(tmp_path: Path) -> None:
    p = read_refused(write(tmp_path, "h.yaml", "- {id: a, id: b}\n"))
    assert p.code == "PE210"
    p = read_refused(write(tmp_path, "h.yaml", "[" * 100_000 + "]" * 100_000))
    assert p.code == "PE211"
    p = read_refused(write(tmp_path, "h.yaml", "- id: " + "9" * 5000 + "\n"))
    assert p.code in ("PE207", "PE211")


# ---------------------------------------------------------------- the command line


def run_cli(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policyengine", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        **kw,
    )


@pytest.mark.parametrize(
    "name,text",
    [
        ("deep.json", "[" * 100_000),
        ("big.json", '[{"id": ' + "1" * 5000 + "}]"),
        ("dup.json", '[{"id": "a", "id": "b"}]'),
        ("edge.json", json.dumps([reg(at="0001-01-01T00:00:00+14:00")])),
        ("late.json", json.dumps([reg(at="9999-12-20T00:00:00Z")])),
        ("short.csv", "id,type,at\nr1\n"),
        ("h.txt", "[]"),
        ("garbage.jsonl", "\x80\x81"),
    ],
)
def test_cli_never_prints_a_traceback(
    tmp_path: Path, policy_file: str, name: str, text: str
) -> None:
    path = write(tmp_path, name, text)
    done = run_cli("eval", policy_file, str(path))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "PE" in done.stderr


def test_cli_internal_errors_ask_to_be_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import policyengine.cli as cli

    def boom(args: Any) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "_schema", boom)
    assert cli.main(["schema"]) == cli.INTERNAL_ERROR
    err = capsys.readouterr().err
    assert "Traceback" in err and "please report" in err.lower()


def test_cli_eval_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    events = [
        reg(id=f"r{i}", customer=f"C{i}", at=f"2026-03-02T10:{i % 60:02d}:00+08:00")
        for i in range(3000)
    ]
    path = write(tmp_path, "h.json", json.dumps(events))
    cmd = [sys.executable, "-m", "policyengine", "eval", str(HUIXIAO.parent), str(path)]
    cmd[-2] = str(tmp_path / "p.yaml")
    (tmp_path / "p.yaml").write_text(POLICY, encoding="utf-8")
    producer = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert producer.stdout is not None and producer.stderr is not None
    first = producer.stdout.readline()  # `head -1`
    producer.stdout.close()
    err = producer.stderr.read().decode("utf-8", "replace")
    code = producer.wait(timeout=120)
    assert first
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code in (0, 1)


def test_cli_pipe_through_head(tmp_path: Path, policy_file: str) -> None:
    events = [reg(id=f"r{i}", customer=f"C{i}") for i in range(3000)]
    path = write(tmp_path, "h.json", json.dumps(events))
    done = subprocess.run(
        f"{sys.executable} -m policyengine eval {policy_file} {path} --format json | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.stdout.strip() == "{" and "Traceback" not in done.stderr, done.stderr
