"""Issue 17, the same words everywhere: ``tools/present.py`` and every output that uses it.

``policyengine eval`` (tables) and ``policyengine explain`` on every shipped pack's example
history, in English and Chinese: no Python repr, times as the policy's local time
``2026-03-02 09:00``, money as ``¥200`` or the manual's range ``¥20–100``, the Chinese headings
under ``--lang zh``. Then present's own formats: numbers, money, instants, word fallbacks.
"""

from __future__ import annotations

import json
import re
import string
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe
from policyengine.__main__ import main
from policyengine.tools.explain import explain_full, explain_subject
from policyengine.tools.present import LANGS, NOTHING, WORDS, money, number, plain, when, word
from policyengine.tools.tables import render, width

ROOT = Path(__file__).resolve().parents[1]

# every shipped pack with its example history (the Makefile's `demo`, the README's examples)
PAIRS = [
    ("policies/huixiao", "examples/huixiao_march.json"),
    ("policies/huixiao/resources.yaml", "examples/huixiao_march.json"),
    ("policies/huixiao", "examples/huixiao_after_sales.json"),
    ("policies/service_system", "examples/service_system.json"),
    ("policies/online_store", "examples/online_store.json"),
    ("policies/online_store", "examples/online_store_2027.json"),
    ("policies/customer_management", "examples/customer_management.json"),
    ("examples/overlay", "examples/huixiao_march.json"),
]
REPRS = ("Decimal(", "None", "DateTime(", "['", "datetime.", "Timezone(")
TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d|[+-]\d\d:\d\d\b")
MONEY = re.compile(r"(¥|\$|€)\d[\d.]*(–\d[\d.]*)?( \(\d+ units\)|（\d+个单位）)?")
SALARY = re.compile(r"\d[\d.]* days of salary|\d[\d.]*天工资")
TIME_COLUMNS = {"since", "until", "due", "at"}
MONEY_COLUMNS = {"amount"}
STATUSES = ("met", "late", "open", "overdue", "cancelled")
SANCTIONS = ("fine", "salary_deduction", "warning", "transfer", "dismissal", "confiscation")
SECTIONS = [
    "owners",
    "penalties",
    "credits",
    "obligations",
    "violations",
    "rejected",
    "classifications",
    "metrics",
    "awards",
    "notices",
]


def _events(history: str) -> list[dict[str, Any]]:
    data = json.loads((ROOT / history).read_text(encoding="utf-8"))
    return list(data["events"] if isinstance(data, dict) else data)


@pytest.fixture(scope="module", params=PAIRS, ids=lambda p: f"{Path(p[0]).name}+{Path(p[1]).stem}")
def decided(request: pytest.FixtureRequest) -> tuple[str, str, pe.Policy, pe.Decision, list[Any]]:
    pack, history = request.param
    policy = pe.load_policy(ROOT / pack)
    events = _events(history)
    return pack, history, policy, policy.evaluate(events), events


def _subjects(d: pe.Decision) -> list[str]:
    found = set(d.ownerships) | {o.subject for o in d.obligations if o.subject}
    found |= {p.subject for p in d.penalties if p.subject}
    found |= {v.subject for v in d.violations if v.subject}
    return sorted(found)


def _no_repr(text: str) -> None:
    for bad in REPRS:
        assert bad not in text, (bad, [x for x in text.splitlines() if bad in x][:3])
    assert not ISO.search(text), [x for x in text.splitlines() if ISO.search(x)][:3]


def _cells(line: str, starts: list[int]) -> list[str]:
    """A table row cut at the columns' starting terminal cells (Chinese takes two)."""
    out = [""] * len(starts)
    pos, col = 0, 0
    for ch in line:
        while col + 1 < len(starts) and pos >= starts[col + 1]:
            col += 1
        out[col] += ch
        pos += width(ch)
    return [c.strip() for c in out]


def _tables(text: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """(heading, headers, rows) of every section of a rendered decision."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        if i + 2 < len(lines) and lines[i + 2] and set(lines[i + 2]) <= {"-", " "}:
            dashes = lines[i + 2]
            starts = [m.start() for m in re.finditer(r"-+", dashes)]
            headers = _cells(lines[i + 1], starts)
            rows = []
            for row in lines[i + 3 :]:
                if not row.strip():
                    break
                rows.append(_cells(row, starts))
            found.append((line, headers, rows))
    return found


# ---------------------------------------------------------------- every pack, both languages


@pytest.mark.parametrize("lang", LANGS)
def test_eval_tables_show_no_repr_and_present_formats(
    decided: tuple[str, str, pe.Policy, pe.Decision, list[Any]], lang: str
) -> None:
    _, _, _, d, _ = decided
    text = render(d, lang=lang)  # type: ignore[arg-type]
    _no_repr(text)
    assert TIME.search(text.splitlines()[0])
    sections = _tables(text)
    assert sections, text
    en = {word(k, "zh" if lang == "zh" else "en"): k for k in WORDS}
    for heading, headers, rows in sections:
        for row in rows:
            for head, value in zip(headers, row, strict=True):
                key = en.get(head, head)
                if value == NOTHING:
                    continue
                if key in TIME_COLUMNS:
                    assert TIME.fullmatch(value), (heading, head, value)
                if key in MONEY_COLUMNS:
                    assert MONEY.fullmatch(value) or SALARY.fullmatch(value), (heading, value)
                    if MONEY.fullmatch(value):
                        assert value.startswith("¥"), value  # every shipped pack is in CNY
                if key == "clause":
                    assert re.fullmatch(r"[A-Z]+-[\w-]+(, [A-Z]+-[\w-]+)*", value), value


def test_penalties_have_their_offence_column_and_the_manuals_range(
    decided: tuple[str, str, pe.Policy, pe.Decision, list[Any]],
) -> None:
    _, _, _, d, _ = decided
    if not d.penalties:  # nothing to show: no penalty rows under any heading
        assert not [s for s in _tables(render(d)) if s[0].startswith("penalties (") and s[2]]
        return
    [(_, headers, rows)] = [s for s in _tables(render(d)) if s[0].startswith("penalties (")]
    assert headers[:4] == ["party", "sanction", "offence", "amount"]
    for p, row in zip(d.penalties, rows, strict=True):
        assert row[2] == str(p.offence) and "#" not in row[1]
        if p.amount_min is not None and p.amount_min != p.amount_max:
            assert row[3] == f"¥{number(p.amount_min)}–{number(p.amount_max)}"


def test_chinese_tables_have_the_chinese_headings(
    decided: tuple[str, str, pe.Policy, pe.Decision, list[Any]],
) -> None:
    _, _, _, d, _ = decided
    en, zh = render(d, lang="en"), render(d, lang="zh")
    assert "（截至 " in zh.splitlines()[0]
    shown = 0
    for key in SECTIONS:
        if f"\n{word(key)} (" in en:
            assert f"\n{word(key, 'zh')} (" in zh, key
            shown += 1
    assert shown
    heads = {h for _, headers, _ in _tables(zh) for h in headers}
    assert not heads & {"status", "party", "clause", "rule", "customer", "due", "amount"}
    for _, headers, rows in _tables(zh):
        for row in rows:
            cells = dict(zip(headers, row, strict=True))
            assert cells.get("达标", "是") in ("是", "否", NOTHING), row
            assert cells.get("状态", "待履行") in {word(s, "zh") for s in STATUSES}, row
            assert cells.get("处罚方式", "罚款") in {word(s, "zh") for s in SANCTIONS}, row


@pytest.mark.parametrize("lang", LANGS)
def test_explain_every_subject_short_and_full(
    decided: tuple[str, str, pe.Policy, pe.Decision, list[Any]], lang: str
) -> None:
    _, _, policy, d, events = decided
    for subject in _subjects(d):
        short = explain_subject(d, subject, lang=lang)  # type: ignore[arg-type]
        full = explain_full(d, subject, policy, history=events, lang=lang)  # type: ignore[arg-type]
        for text in (short, full):
            _no_repr(text)
            assert TIME.search(text.splitlines()[0]), text.splitlines()[0]
            if lang == "zh":
                assert "（截至 " in text.splitlines()[0]
        if lang == "zh" and any(o.subject == subject for o in d.obligations):
            assert "的义务：" in full
        if lang == "en":
            assert short == d.explain(subject)


@pytest.mark.parametrize("lang", LANGS)
def test_the_command_line_on_every_pack(
    decided: tuple[str, str, pe.Policy, pe.Decision, list[Any]],
    lang: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pack, history, _, d, _ = decided
    args = [str(ROOT / pack), str(ROOT / history)]
    assert main(["eval", *args, "--lang", lang]) == 0
    table = capsys.readouterr().out
    _no_repr(table)
    subject = _subjects(d)[0]
    assert main(["explain", *args, "--subject", subject, "--lang", lang]) == 0
    told = capsys.readouterr().out
    _no_repr(told)
    if lang == "zh":
        assert "截至" in table and "截至" in told
    # JSON stays JSON, whatever the language
    assert main(["eval", *args, "--format", "json", "--lang", lang]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body == d.model_dump(mode="json", exclude={"trace"})


def test_the_demo_in_both_languages(capsys: pytest.CaptureFixture[str]) -> None:
    import runpy

    demo = runpy.run_path(str(ROOT / "examples/demo.py"))
    for lang in LANGS:
        assert demo["main"](["--lang", lang]) == 0
        out = capsys.readouterr().out
        _no_repr(out)
        assert "¥20–100" in out and "HX-RM-3, HX-RS-10" in out
        assert TIME.search(out)
        if lang == "zh":
            assert "处罚方式" in out and "已按时履行" in out and "为什么归属" in out
        else:
            assert "15 days of salary" in out


# ---------------------------------------------------------------- present itself


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("92.4"), "92.4"),
        (Decimal("92.40"), "92.4"),
        (200, "200"),
        (Decimal("200.00"), "200"),
        (Decimal("0.5"), "0.5"),
        (0.5, "0.5"),
        (Decimal("-3.50"), "-3.5"),
        (-20, "-20"),
        (Decimal("1E+6"), "1000000"),
        (Decimal("12345678901234567890.25"), "12345678901234567890.25"),
        (Decimal("0.0001"), "0.0001"),
        (0, "0"),
    ],
)
def test_number(value: Decimal | int | float, shown: str) -> None:
    assert number(value) == shown
    assert plain(value) == shown


def test_money() -> None:
    assert money(Decimal("200")) == "¥200"
    assert money(Decimal("20"), Decimal("100")) == "¥20–100"  # the manual's own range
    assert money(Decimal("50"), Decimal("50")) == "¥50"
    assert money(Decimal("0.13"), currency="CNY") == "¥0.13"
    assert money(Decimal("92.40"), currency="RMB") == "¥92.4"
    assert money(10, currency="USD") == "$10"
    assert money(5, 8, currency="GBP") == "5–8 GBP"
    assert money(-20) == "¥-20"
    assert money(Decimal("1500000")) == "¥1500000"
    assert money(None) == NOTHING


def test_when_is_local_time_in_the_policys_timezone() -> None:
    utc = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert when(utc, "Asia/Shanghai") == "2026-03-02 09:00"
    assert when(datetime(2026, 3, 31, 15, 59, 59, tzinfo=UTC), "Asia/Shanghai") == (
        "2026-03-31 23:59:59"
    )
    assert when(datetime(2026, 3, 1, 16, 0, tzinfo=UTC), "Asia/Shanghai") == "2026-03-02 00:00"
    assert when(None) == NOTHING
    assert plain(utc) == "2026-03-02 01:00"


def test_plain_never_shows_a_repr() -> None:
    assert plain(["HX-RM-3", "HX-RM-4"]) == "HX-RM-3, HX-RM-4"
    assert plain(("a",)) == "a"
    assert plain([]) == NOTHING
    assert plain(None) == NOTHING
    assert plain({"score": Decimal("90.0"), "rate": None}) == f"score: 90, rate: {NOTHING}"
    assert plain("专卖店") == "专卖店"  # the packs' text as written


def test_word_and_its_fallbacks() -> None:
    assert word("met") == "met" and word("met", "zh") == "已按时履行"
    assert word("obligations") == "duties" and word("obligations", "zh") == "义务"
    assert word("salary_deduction") == "salary deduction"
    assert word("a-packs-own-word", "zh") == "a-packs-own-word"  # unknown: shown as it is
    assert word("fine", "en") == word("fine")
    fields = string.Formatter()
    for key, pair in WORDS.items():
        assert len(pair) == 2 and all(pair), key
        en, zh = ({f for _, f, _, _ in fields.parse(t) if f} for t in pair)
        assert zh <= en | {"who", "event", "sanction"}, key  # zh fills what en is given
