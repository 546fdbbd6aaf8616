"""The command line (issue 6): check, eval, explain, schema; exit codes as OPA's (0 clean,
1 policy or input error, 2 test failures)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from policyengine.__main__ import main
from policyengine.tools.tables import width

ROOT = Path(__file__).resolve().parents[1]
HUIXIAO = str(ROOT / "policies" / "huixiao")
MARCH = str(ROOT / "examples" / "huixiao_march.json")

POLICY = """\
policy: {id: demo-cli, title: 演示, version: "1.0.0", timezone: Asia/Shanghai, currency: CNY,
         subject: customer, unknown_events: reject}
clauses:
  - {id: D-1, text: 顾客报名后当天必须回访, reading: Call the same day.}
events:
  registered:
    fields: {customer: str, employee: str, visits: int, vip: bool, tags: "list[str]",
             amount: decimal, note: "str?"}
  called:
    fields: {customer: str, employee: str}
rules:
  - id: call-same-day
    clause: D-1
    on: registered
    expect:
      event: called
      match: {customer: $event.customer}
      within: same day
      obligation: 当天回访顾客
      party: $event.employee
"""

EVENTS: list[dict[str, Any]] = [
    {
        "id": "r1",
        "type": "registered",
        "at": "2026-03-01T09:00:00+08:00",
        "customer": "张三",
        "employee": "li",
        "visits": 2,
        "vip": True,
        "tags": ["a", "b"],
        "amount": "12.50",
    },
    {
        "id": "r2",
        "type": "registered",
        "at": "2026-03-01T10:00:00+08:00",
        "customer": "C2",
        "employee": "wang",
        "visits": 0,
        "vip": False,
        "tags": ["x"],
        "amount": "3",
        "note": "walk-in",
    },
    {
        "id": "c1",
        "type": "called",
        "at": "2026-03-01T15:00:00+08:00",
        "customer": "张三",
        "employee": "li",
    },
]
AS_OF = "2026-03-02T12:00:00+08:00"


@pytest.fixture
def policy(tmp_path: Path) -> str:
    path = tmp_path / "demo.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return str(path)


def _write_json(tmp_path: Path, events: Any, name: str = "h.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(events, ensure_ascii=False, indent=2), encoding="utf-8")
    return str(path)


def _write_jsonl(tmp_path: Path) -> str:
    path = tmp_path / "h.jsonl"
    path.write_text(
        "\n".join(json.dumps(e, ensure_ascii=False) for e in EVENTS) + "\n", encoding="utf-8"
    )
    return str(path)


def _write_yaml(tmp_path: Path) -> str:
    lines = ["events:"]
    for e in EVENTS:
        lines.append(f"  - id: {e['id']}")
        for k, v in e.items():
            if k == "id":
                continue
            if isinstance(v, bool):
                lines.append(f"    {k}: {'true' if v else 'false'}")
            elif isinstance(v, list):
                lines.append(f"    {k}: [{', '.join(v)}]")
            elif isinstance(v, int):
                lines.append(f"    {k}: {v}")
            else:
                lines.append(f'    {k}: "{v}"')
    path = tmp_path / "h.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _write_csv(tmp_path: Path, rows: list[dict[str, Any]] | None = None) -> str:
    header = ["id", "type", "at", "customer", "employee", "visits", "vip", "tags", "amount", "note"]
    path = tmp_path / "h.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for e in rows if rows is not None else EVENTS:
            cells = []
            for k in header:
                v = e.get(k)
                if v is None:
                    cells.append("")
                elif isinstance(v, bool):
                    cells.append("true" if v else "false")
                elif isinstance(v, list):
                    cells.append(";".join(v))
                else:
                    cells.append(str(v))
            w.writerow(cells)
    return str(path)


def _eval_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main(["eval", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


# ------------------------------------------------------------------ check


def test_check_clean_pack_prints_only_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(ROOT / "policies" / "online_store")]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "1 pack checked: 0 errors, 0 warnings\n"


def test_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["check", str(missing)]) == 1
    assert f"{missing}:1:1: PE116" in capsys.readouterr().err


def test_check_lists_every_problem_of_every_path(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    one = tmp_path / "one.yaml"
    one.write_text(POLICY.replace("clause: D-1", "clause: D-9"), encoding="utf-8")
    two = tmp_path / "two.yaml"
    two.write_text(
        POLICY.replace("within: same day", "within: $params.nope").replace(
            "event: called", "event: caled"
        ),
        encoding="utf-8",
    )
    assert main(["check", str(one), policy, str(two)]) == 1
    *err, summary = capsys.readouterr().err.splitlines()
    assert summary.startswith("3 packs checked: ") and " 0 errors" not in summary
    assert any(line.startswith(f"{one}:") and "PE108" in line for line in err), err
    two_lines = [line for line in err if line.startswith(f"{two}:")]
    assert {"PE109", "PE110"} <= {line.split()[1] for line in two_lines}, err
    for line in err:
        _file, ln, col, rest = line.split(":", 3)
        assert ln.isdigit() and col.isdigit() and rest.startswith(" PE"), line


def test_check_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("clause: D-1", "clause: D-9"), encoding="utf-8")
    assert main(["check", str(bad), "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert found and found[0]["code"] == "PE108"
    assert set(found[0]) >= {"file", "line", "column", "code", "message", "hint", "severity"}
    assert found[0]["severity"] == "error" and found[0]["line"] > 1


def test_check_warnings_and_strict(capsys: pytest.CaptureFixture[str]) -> None:
    """The service-system pack declares every event of events.md, and marks the ones no rule
    uses `accept_only: true`: no warning. Without the marks the analysis warns about them;
    that is exit 0, and exit 1 under --strict (tests/test_cli_authoring.py too)."""
    pack = str(ROOT / "policies/service_system")
    assert main(["check", pack, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["check", pack, "--strict"]) == 0
    assert main(["check", HUIXIAO, "--strict"]) == 0  # no finding at all


def test_check_reports_analysis_findings(
    policy: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever `policyengine.analysis` finds is printed; warnings fail only under --strict."""
    import policyengine.cli as cli
    from policyengine.errors import Location

    class Finding:
        code = "PE401"
        message = "rules a and b can both decide the owner"
        location = Location(policy, 12, 5)
        severity = "warning"
        related = (Location(policy, 20, 5),)
        hint = "declare `overrides:`"

    monkeypatch.setattr(cli, "_analyzer", lambda: lambda path: [Finding()])
    assert main(["check", policy]) == 0
    err = capsys.readouterr().err.strip()
    assert err == (
        f"{policy}:12:5: PE401 warning: rules a and b can both decide the owner "
        f"(declare `overrides:`) [see {policy}:20:5]\n1 pack checked: 0 errors, 1 warning"
    )
    assert main(["check", policy, "--strict"]) == 1
    capsys.readouterr()
    assert main(["check", policy, "--format", "json"]) == 0
    [found] = json.loads(capsys.readouterr().out)
    assert found["severity"] == "warning" and found["related"] == [f"{policy}:20:5"]


# ------------------------------------------------------------------ eval


def test_eval_table_aligns_chinese(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", policy, _write_json(tmp_path, EVENTS), "--as-of", AS_OF]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "当天回访顾客" in line]
    assert len(rows) == 2, out
    # the due column starts at the same terminal cell in both rows although 张三 is 4 cells
    starts = [width(line[: line.index("2026-03-02")]) for line in rows]
    assert starts[0] == starts[1], rows
    assert rows[0].split()[:3] == ["met", "li", "张三"]
    assert "overdue" in rows[1]


def test_eval_table_in_chinese(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17: `--lang zh` gives the headings, columns and statuses in Chinese; the pack's
    own text (the duty) as written; times in the policy's timezone."""
    history = _write_json(tmp_path, EVENTS)
    assert main(["eval", policy, history, "--as-of", AS_OF, "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "demo-cli 1.0.0（截至 2026-03-02 12:00，Asia/Shanghai）"
    assert "义务 (2)" in out and "状态" in out and "期限" in out
    rows = [line for line in out.splitlines() if "当天回访顾客" in line]
    assert rows[0].split()[:3] == ["已按时履行", "li", "张三"]
    assert rows[1].split()[0] == "逾期未履行"


def test_eval_json_drops_the_trace(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _eval_json(capsys, policy, _write_json(tmp_path, EVENTS), "--as-of", AS_OF)
    assert "trace" not in d
    assert [o["status"] for o in d["obligations"]] == ["met", "overdue"]


def test_every_format_gives_the_same_decision(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    wrapped = _write_json(tmp_path, {"events": EVENTS}, "wrapped.json")
    paths = [
        _write_json(tmp_path, EVENTS),
        wrapped,
        _write_jsonl(tmp_path),
        _write_yaml(tmp_path),
        _write_csv(tmp_path),
    ]
    decisions = [_eval_json(capsys, policy, p, "--as-of", AS_OF) for p in paths]
    assert all(d == decisions[0] for d in decisions[1:])


def test_huixiao_json_equals_api(capsys: pytest.CaptureFixture[str]) -> None:
    import policyengine as pe

    d = _eval_json(capsys, HUIXIAO, MARCH)
    events = json.loads(Path(MARCH).read_text(encoding="utf-8"))
    expected = pe.load_policy(HUIXIAO).evaluate(events).model_dump(mode="json", exclude={"trace"})
    assert d == expected


def test_bad_event_names_id_field_and_line(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [dict(e) for e in EVENTS]
    events[1]["visits"] = "many"
    path = _write_json(tmp_path, events)
    assert main(["eval", policy, path]) == 1
    err = capsys.readouterr().err
    assert "PE203" in err and "'r2'" in err and "'visits'" in err
    line = next(x for x in err.splitlines() if "PE203" in x).strip()
    lineno = int(line.split(":")[1])
    assert '"id": "r2"' in Path(path).read_text(encoding="utf-8").splitlines()[lineno], line


def test_bad_csv_cell_is_located(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [dict(e) for e in EVENTS]
    rows[0]["vip"] = "yes"
    path = _write_csv(tmp_path, rows)
    assert main(["eval", policy, path]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2:7: PE203" in err and "'r1'" in err and "'vip'" in err


def test_missing_and_malformed_history(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", policy, str(tmp_path / "none.json")]) == 1
    assert "PE116" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  {"id": "r1",\n  oops}\n]', encoding="utf-8")
    assert main(["eval", policy, str(broken)]) == 1
    assert f"{broken}:3:" in capsys.readouterr().err


def test_missing_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tmp_path / "none.yaml"), MARCH]) == 1
    assert "PE116" in capsys.readouterr().err


def test_a_folder_of_histories(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(3):
        _write_json(folder, EVENTS[: i + 1], f"h{i}.json")
    out = _eval_json(capsys, policy, str(folder), "--as-of", AS_OF)
    assert [Path(x["history"]).name for x in out] == ["h0.json", "h1.json", "h2.json"]
    assert [len(x["decision"]["obligations"]) for x in out] == [1, 2, 2]
    assert main(["eval", policy, str(folder / "*.json"), "--as-of", AS_OF]) == 0
    assert capsys.readouterr().out.count("duties (") == 3


# ------------------------------------------------------------------ explain


def test_explain_a_lapsed_claim_with_counterfactual(capsys: pytest.CaptureFixture[str]) -> None:
    # C-liu: li registered her via feedback, never pre-heated within HX-RS-2's 3 days, the claim
    # lapsed, and sun's second registration took her
    assert main(["explain", HUIXIAO, MARCH, "--subject", "C-liu"]) == 0
    out = capsys.readouterr().out
    assert "owner sun from 2026-03-08 09:00" in out
    assert "HX-RS-2 原文: 专卖店内或电话回馈顾客3天以内员工没有预热" in out
    assert "event e08: registered" in out
    what_if = next(x for x in out.splitlines() if "a preheated by li" in x)
    assert "(customer C-liu) by 2026-03-07 10:00" in what_if
    assert "'pre-heat the registered customer' (rule feedback-preheat-window, HX-RS-2)" in what_if
    assert "the claim of li lapsed" in what_if and "then sun took the customer" in what_if
    assert what_if.endswith("li would have kept the claim")


def test_explain_in_chinese(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", HUIXIAO, MARCH, "--subject", "C-liu", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("C-liu（截至 2026-03-20 17:00）")
    assert "归属人 sun，自 2026-03-08 09:00（当前）" in out
    assert "HX-RS-2 原文: 专卖店内或电话回馈顾客3天以内员工没有预热" in out  # as written
    assert "事件 e08：registered，2026-03-08 09:00" in out
    assert "怎样会改变结果：" in out
    what_if = next(x for x in out.splitlines() if "若 li 在 2026-03-07 10:00" in x)
    assert "即可履行“pre-heat the registered customer”" in what_if
    assert what_if.endswith("li 本可保留认领")


def test_explain_at_an_instant(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["explain", HUIXIAO, MARCH, "--subject", "C-wang"]
    assert main([*args, "--at", "2026-03-10T00:00:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert "owner at 2026-03-10 00:00: zhao" in out
    assert "first-preheat-owns" in out and "HX-RM-2 原文" in out
    assert main([*args, "--at", "2026-03-25T00:00:00+08:00"]) == 0
    assert "owner at 2026-03-25 00:00: company" in capsys.readouterr().out


def test_explain_unknown_subject(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", HUIXIAO, MARCH, "--subject", "C-lui"]) == 1
    assert "C-liu" in capsys.readouterr().err


def test_decision_explain_still_works() -> None:
    import policyengine as pe

    events = json.loads(Path(MARCH).read_text(encoding="utf-8"))
    text = pe.load_policy(HUIXIAO).evaluate(events).explain("C-liu")
    assert "owner sun" in text and "HX-RS-2" in text


# ------------------------------------------------------------------ schema


def test_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from policyengine.language.model import policy_json_schema

    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == policy_json_schema()
    target = tmp_path / "policy.schema.json"
    assert main(["schema", "--output", str(target)]) == 0
    assert json.loads(target.read_text(encoding="utf-8")) == policy_json_schema()


# ------------------------------------------------------------------ the installed script


def test_console_script_check() -> None:
    script = Path(sys.executable).parent / "policyengine"
    assert script.exists(), "pip install -e . installs the console script"
    done = subprocess.run(
        [str(script), "check", "policies/online_store"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
