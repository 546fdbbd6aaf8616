"""Histories from Excel: ``.xlsx`` workbooks (python-calamine), CSV saved by Excel in UTF-8 with
a BOM or in GBK (GB18030), and Excel's renderings of local times (``2026/3/2 09:00``), read in
the policy's timezone under ``naive_times="policy"``; problems located at their cell."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl  # the dev extra installs it (and the excel extra)
import pytest
import python_calamine  # noqa: F401  (the reader needs it; installed by the dev extra)

import policyengine as pe
from policyengine.cli import main
from policyengine.errors import Code
from policyengine.runtime.events import naive_wall_time
from policyengine.tools.history_io import (
    SUFFIXES,
    Cell,
    column_letters,
    expand,
    read_history,
    read_located,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "huixiao_march.json"
PACK = ROOT / "policies" / "huixiao"


@pytest.fixture(scope="module")
def policy() -> pe.Policy:
    return pe.load_policy(PACK)


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    data = json.loads(EXAMPLE.read_text("utf-8"))
    return list(data["events"] if isinstance(data, dict) else data)


@pytest.fixture(scope="module")
def want(policy: pe.Policy, events: list[dict[str, Any]]) -> Any:
    return policy.evaluate(events).model_dump(mode="json")


def columns(events: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for e in events:
        out.extend(k for k in e if k not in out)
    return out


def local(at: str) -> datetime:
    """The example's ``+08:00`` time as the naive Asia/Shanghai wall time Excel keeps."""
    found = datetime.fromisoformat(at)
    assert found.utcoffset() is not None and found.utcoffset().total_seconds() == 8 * 3600
    return found.replace(tzinfo=None)


def cell_value(key: str, value: Any) -> Any:
    if key == "at":
        return local(value)  # a real date-and-time cell
    if isinstance(value, list):
        return ";".join(value)
    return value  # numbers stay numbers, booleans TRUE/FALSE cells


def write_xlsx(
    path: Path,
    events: list[dict[str, Any]],
    *,
    sheet: str = "Sheet1",
    before: str | None = None,
    header: dict[str, str] | None = None,
) -> Path:
    book = openpyxl.Workbook()
    ws = book.active
    if before is not None:  # a first sheet that is not the history
        ws.title = before
        ws.append(["notes", "not a history"])
        ws = book.create_sheet(sheet)
    else:
        ws.title = sheet
    keys = columns(events)
    ws.append([(header or {}).get(k, k) for k in keys])
    for e in events:
        ws.append([cell_value(k, e[k]) if k in e else None for k in keys])
    book.save(path)
    return path


def csv_text(events: list[dict[str, Any]], *, at: Any = None) -> str:
    keys = columns(events)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(keys)
    for e in events:
        row = []
        for k in keys:
            v = e.get(k)
            if k == "at" and at is not None:
                v = at(local(v))
            elif isinstance(v, list):
                v = ";".join(v)
            elif isinstance(v, bool):
                v = str(v).lower()
            row.append("" if v is None else v)
        writer.writerow(row)
    return out.getvalue()


def dump(decision: pe.Decision) -> Any:
    return decision.model_dump(mode="json")


# ------------------------------------------------------------------ .xlsx


def test_an_xlsx_history_decides_as_its_json(
    tmp_path: Path, policy: pe.Policy, events: list[dict[str, Any]], want: Any
) -> None:
    path = write_xlsx(tmp_path / "history.xlsx", events)
    read = read_history(path, policy, naive_times="policy")
    assert read[0]["at"] == "2026-03-02T09:00:00+08:00"
    assert dump(policy.evaluate(read)) == want
    # or read as it is, and the local times given their offsets by evaluate
    plain = read_history(path, policy)
    assert plain[0]["at"] == "2026-03-02T09:00:00"
    assert dump(policy.evaluate(plain, naive_times="policy")) == want
    by_id = {e["id"]: e for e in plain}
    assert by_id["e22"]["boxes"] == 4 and type(by_id["e22"]["boxes"]) is int  # not 4.0
    assert by_id["e23"]["stamped"] is False and by_id["e23"]["record"] == "预热情况统计表"
    assert by_id["e21"]["employees"] == ["li", "zhao"]


def test_date_and_time_cells_need_the_opt_in(
    tmp_path: Path, policy: pe.Policy, events: list[dict[str, Any]]
) -> None:
    path = write_xlsx(tmp_path / "history.xlsx", events)
    history = read_located(path, policy)
    with pytest.raises(pe.EventError) as info:
        policy.evaluate(history.events)
    problems = history.relocate(info.value).problems
    assert {p.code for p in problems} == {Code.EVENT_NO_OFFSET}
    first = problems[0]
    assert str(first.location) == f"{path}:Sheet1!C2"  # the `at` cell of e01
    assert (first.event_id, first.field) == ("e01", "at")
    assert "naive-times policy" in (first.hint or "")


def test_a_bad_cell_is_named_by_sheet_row_and_column(
    tmp_path: Path, policy: pe.Policy, events: list[dict[str, Any]]
) -> None:
    # row 7 is the sixth event (e06); column D is `customer`, F is `channel`
    bad = [dict(e) for e in events]
    assert columns(bad)[3] == "customer" and columns(bad)[5] == "channel"
    bad[5]["channel"] = "carrier pigeon"
    path = write_xlsx(tmp_path / "file.xlsx", bad)
    history = read_located(path, policy, naive_times="policy")
    with pytest.raises(pe.EventError) as info:
        policy.evaluate(history.events)
    [p] = history.relocate(info.value).problems
    assert str(p.location) == f"{path}:Sheet1!F7"
    assert p.code == Code.EVENT_BAD_FIELD and (p.event_id, p.field) == ("e06", "channel")
    # a cell the reader itself refuses: a fraction of a box
    bad = [dict(e) for e in events]
    keys = columns(bad)
    bad[21]["boxes"] = 4.5  # e22, row 23
    path = write_xlsx(tmp_path / "file.xlsx", bad)
    with pytest.raises(pe.EventError) as info:
        read_located(path, policy)
    [p] = info.value.problems
    assert str(p.location) == f"{path}:Sheet1!{column_letters(keys.index('boxes') + 1)}23"
    assert p.code == Code.EVENT_BAD_FIELD and "4.5 is not a whole number" in p.message
    assert (p.event_id, p.field) == ("e22", "boxes")


def test_errors_located_at_d7(tmp_path: Path, policy: pe.Policy) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Sheet1"
    ws.append(["id", "type", "at", "customer", "employee", "channel"])
    for i in range(2, 8):
        ws.append([f"e{i}", "registered", datetime(2026, 3, i, 9), f"C{i}", "li", "store"])
    ws["D7"] = ""  # the customer of row 7 missing
    path = tmp_path / "file.xlsx"
    book.save(path)
    history = read_located(path, policy, naive_times="policy")
    with pytest.raises(pe.EventError) as info:
        policy.evaluate(history.events)
    [p] = history.relocate(info.value).problems
    assert p.code == Code.EVENT_MISSING_FIELD and p.field == "customer"
    assert str(p.location).startswith(f"{path}:Sheet1!A7")  # no cell: its row
    ws["D7"] = 42.5  # a number in a text field is its text: fine
    ws["C7"] = 46083.375  # a number where a date and time belongs (2026-03-02 09:00)
    ws["C7"].number_format = "General"
    book.save(path)
    with pytest.raises(pe.EventError) as info:
        read_located(path, policy)
    [p] = info.value.problems
    assert str(p.location) == f"{path}:Sheet1!C7" and p.code == Code.EVENT_BAD_FIELD
    assert "format the cell as a date and time" in p.message
    assert str(Cell("h.xlsx", 7, 28, "My sheet")) == "h.xlsx:'My sheet'!AB7"


def test_a_named_sheet(
    tmp_path: Path, policy: pe.Policy, events: list[dict[str, Any]], want: Any
) -> None:
    path = write_xlsx(tmp_path / "history.xlsx", events, sheet="三月", before="说明")
    for read in (
        read_history(path, policy, sheet="三月", naive_times="policy"),
        read_history(f"{path}#三月", policy, naive_times="policy"),
    ):
        assert dump(policy.evaluate(read)) == want
    assert read_history(path, policy) == []  # the first sheet: a header and no events
    with pytest.raises(pe.EventError) as info:
        read_history(path, policy, sheet="March")
    [p] = info.value.problems
    assert p.code == Code.MALFORMED_HISTORY and "'说明', '三月'" in p.message
    with pytest.raises(pe.EventError):
        read_history(f"{path}#三月", policy, sheet="说明")  # two different sheets named
    with pytest.raises(pe.EventError) as info:
        read_history(EXAMPLE, policy, sheet="三月")  # a JSON file has no sheets
    assert "not an .xlsx workbook" in info.value.problems[0].message


def test_chinese_column_names(
    tmp_path: Path, policy: pe.Policy, events: list[dict[str, Any]], want: Any
) -> None:
    names = {"customer": "客户", "employee": "员工", "at": "时间", "type": "类型"}
    path = write_xlsx(tmp_path / "history.xlsx", events, header=names)
    aliases = {v: k for k, v in names.items()}
    read = read_history(path, policy, naive_times="policy", aliases=aliases)
    assert dump(policy.evaluate(read)) == want
    with pytest.raises(pe.EventError):  # without them, 类型 is no field
        policy.evaluate(read_history(path, policy, naive_times="policy"))


def test_header_problems(tmp_path: Path, policy: pe.Policy) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["id", "type", "at", "id"])
    ws.append(["e1", "registered", datetime(2026, 3, 2, 9), "x"])
    path = tmp_path / "h.xlsx"
    book.save(path)
    with pytest.raises(pe.EventError) as info:
        read_history(path, policy)
    [p] = info.value.problems
    assert p.code == Code.HISTORY_DUPLICATE_KEY and str(p.location) == f"{path}:Sheet!D1"
    empty = openpyxl.Workbook()
    empty.save(path)
    with pytest.raises(pe.EventError) as info:
        read_history(path, policy)
    assert "empty" in info.value.problems[0].message
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")
    with pytest.raises(pe.EventError) as info:
        read_history(tmp_path / "broken.xlsx", policy)
    assert info.value.problems[0].code == Code.MALFORMED_HISTORY


def test_a_folder_takes_workbooks_but_not_excel_lock_files(tmp_path: Path) -> None:
    (tmp_path / "a.xlsx").write_bytes(b"")
    (tmp_path / "~$a.xlsx").write_bytes(b"")
    (tmp_path / "b.csv").write_text("id\n", encoding="utf-8")
    assert [p.name for p in expand([str(tmp_path)])] == ["a.xlsx", "b.csv"]


# ------------------------------------------------------------------ CSV as Excel saves it


@pytest.mark.parametrize(
    ("encoding", "named"),
    [("gbk", "GB18030"), ("gb18030", "GB18030"), ("utf-8-sig", "UTF-8 with BOM")],
)
def test_csv_in_gbk_or_with_a_bom(
    tmp_path: Path,
    policy: pe.Policy,
    events: list[dict[str, Any]],
    want: Any,
    encoding: str,
    named: str,
) -> None:
    text = csv_text(events)
    assert "预热情况统计表" in text  # Chinese text in a field
    path = tmp_path / "history.csv"
    path.write_bytes(text.encode(encoding))
    history = read_located(path, policy)
    assert history.encoding == named
    assert history.notices == ([f"read {path} as GB18030"] if named == "GB18030" else [])
    assert dump(policy.evaluate(history.events)) == want


def test_csv_neither_utf8_nor_gb18030(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_bytes(b"id,type\n\xff\xfe,x\n")
    with pytest.raises(pe.EventError) as info:
        read_history(path)
    [p] = info.value.problems
    assert p.code == Code.MALFORMED_HISTORY and "GB18030" in p.message


def test_json_stays_utf8_only(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    path.write_bytes('[{"id": "预热"}]'.encode("gbk"))
    with pytest.raises(pe.EventError) as info:
        read_history(path)
    assert "not UTF-8" in info.value.problems[0].message


# ------------------------------------------------------------------ Excel's local times


@pytest.mark.parametrize(
    "render",
    [
        lambda t: f"{t.year}/{t.month}/{t.day} {t:%H:%M}",  # 2026/3/2 09:00
        lambda t: f"{t:%Y/%m/%d %H:%M:%S}",  # 2026/03/02 09:00:00
        lambda t: f"{t.year}-{t.month}-{t.day} {t.hour}:{t:%M}",  # 2026-3-2 9:00
    ],
)
def test_slash_times_in_a_csv(
    tmp_path: Path, policy: pe.Policy, events: list[dict[str, Any]], want: Any, render: Any
) -> None:
    path = tmp_path / "history.csv"
    path.write_text(csv_text(events, at=render), encoding="utf-8")
    history = read_located(path, policy)
    with pytest.raises(pe.EventError) as info:
        policy.evaluate(history.events)
    p = history.relocate(info.value).problems[0]
    assert p.code == Code.EVENT_NO_OFFSET and "--naive-times policy" in (p.hint or "")
    assert str(p.location) == f"{path}:2:1"
    assert dump(policy.evaluate(history.events, naive_times="policy")) == want
    assert dump(policy.evaluate(read_history(path, policy, naive_times="policy"))) == want


@pytest.mark.parametrize(
    ("text", "wall"),
    [
        ("2026/3/2 09:00", datetime(2026, 3, 2, 9)),
        ("2026/03/02 09:00:00", datetime(2026, 3, 2, 9)),
        ("2026-3-2 9:00", datetime(2026, 3, 2, 9)),
        (" 2026/3/2 9:05:07.25 ", datetime(2026, 3, 2, 9, 5, 7, 250000)),
        ("2026/12/31T23:59", datetime(2026, 12, 31, 23, 59)),
        ("2026-03-02T09:00:00", datetime(2026, 3, 2, 9)),  # ISO, as before
    ],
)
def test_spreadsheet_renderings_are_wall_times(text: str, wall: datetime) -> None:
    assert naive_wall_time(text) == wall


@pytest.mark.parametrize(
    "text",
    [
        "3/2/2026 09:00",  # day or month first: never guessed
        "2/3/2026 9:00",
        "26/3/2 9:00",
        "2026/3-2 9:00",  # two different separators
        "2026/2/30 9:00",  # no such day
        "2026/3/2 24:00",
        "2026/3/2 9:0",
        "2026/3/2",  # a day alone is no time of day
        "2026/3/2 09:00+08:00",  # an offset, but not ISO 8601
        "２０２６/3/2 9:00",  # full-width digits
    ],
)
def test_other_renderings_are_refused(text: str) -> None:
    assert naive_wall_time(text) is None


# ------------------------------------------------------------------ formats and the CLI


def test_an_unknown_suffix_lists_the_formats(tmp_path: Path) -> None:
    for name in ("history.txt", "history.xls"):
        path = tmp_path / name
        path.write_text("[]", encoding="utf-8")
        with pytest.raises(pe.EventError) as info:
            read_history(path)
        [p] = info.value.problems
        assert p.code == Code.UNKNOWN_HISTORY_FORMAT
        assert ".json .jsonl .ndjson .yaml .yml .csv .xlsx" in p.message
        assert "malformed" not in p.message
    assert ".xlsx" in SUFFIXES and "save the workbook as .xlsx" in (p.hint or "")


def test_naive_times_policy_needs_the_policy(tmp_path: Path) -> None:
    with pytest.raises(pe.EventError) as info:
        read_history(EXAMPLE, naive_times="policy")
    assert info.value.problems[0].field == "naive_times"
    with pytest.raises(pe.EventError):
        read_history(EXAMPLE, naive_times="local")  # type: ignore[arg-type]


def test_cli_eval_an_xlsx(
    tmp_path: Path, events: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_xlsx(tmp_path / "history.xlsx", events, sheet="March", before="Notes")
    assert main(["eval", str(PACK), str(EXAMPLE), "--format", "json"]) == 0
    want = json.loads(capsys.readouterr().out)
    args = ["eval", str(PACK), f"{path}#March", "--format", "json", "--naive-times", "policy"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == want
    assert main(args[:-2]) == 1  # local times without the opt-in
    err = capsys.readouterr().err
    assert f"{path}:March!C2: PE204" in err and "--naive-times policy" in err


def test_cli_sheet_option_and_the_encoding_said_on_stderr(
    tmp_path: Path, events: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(PACK), str(EXAMPLE), "--format", "json"]) == 0
    want = json.loads(capsys.readouterr().out)
    book = write_xlsx(tmp_path / "history.xlsx", events, sheet="March", before="Notes")
    args = ["eval", str(PACK), str(book), "--sheet", "March", "--format", "json"]
    assert main([*args, "--naive-times", "policy"]) == 0
    assert json.loads(capsys.readouterr().out) == want
    assert main([*args[:3], "--sheet", "April", "--format", "json"]) == 1  # no such sheet
    capsys.readouterr()
    gbk = tmp_path / "history.csv"
    gbk.write_bytes(csv_text(events).encode("gbk"))
    assert main(["eval", str(PACK), str(gbk), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == want
    assert f"read {gbk} as GB18030" in captured.err
