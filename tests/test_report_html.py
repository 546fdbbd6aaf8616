"""Issue 17, "Out": the HTML report for managers (``policyengine report ... --out report.html``,
``policyengine.tools.report.render_html``): one self-contained page, checked as text here and
in a real headless browser (Debian's ``chromium``; ``.ci/run`` installs it, and the browser
tests fail, never skip, without it)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections import defaultdict
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe
from policyengine.__main__ import main
from policyengine.tools.present import word
from policyengine.tools.report import (
    anchor,
    customers_of,
    department_map,
    render_html,
    statement_totals,
)

ROOT = Path(__file__).resolve().parent.parent
HUIXIAO = ROOT / "policies" / "huixiao"
MARCH = ROOT / "examples" / "huixiao_march.json"


@pytest.fixture(scope="module")
def huixiao() -> tuple[pe.Policy, pe.Decision, list[dict[str, Any]]]:
    policy = pe.load_policy(HUIXIAO)
    events = json.loads(MARCH.read_text(encoding="utf-8"))
    return policy, policy.evaluate(events), events


class Page(HTMLParser):
    """What the tests read of a page: timelines, statement totals, ids, links, tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.timelines: list[str] = []
        self.totals: list[tuple[str, str, str, Decimal, Decimal]] = []
        self.departments: list[str] = []
        self.statement: tuple[str, str] | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        if "id" in a:
            self.ids.append(a["id"])
        if "href" in a:
            self.hrefs.append(a["href"])
        classes = a.get("class", "").split()
        if tag == "svg" and "timeline" in classes:
            self.timelines.append(a["data-customer"])
        if tag == "article" and "statement" in classes:
            self.statement = (a["data-employee"], a["data-month"])
        if tag == "article" and "department" in classes:
            self.departments.append(a["data-department"])
        if tag == "td" and "total-fines" in classes:
            assert self.statement is not None
            self.totals.append(
                (
                    *self.statement,
                    a["data-currency"],
                    Decimal(a["data-min"]),
                    Decimal(a["data-max"]),
                )
            )

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def read(page: str) -> Page:
    parsed = Page()
    parsed.feed(page)
    parsed.close()
    return parsed


def fines_by_party(decision: pe.Decision) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    """(party, currency) -> (low, high): the decision's penalties with an amount, summed."""
    out: dict[tuple[str, str], tuple[Decimal, Decimal]] = defaultdict(
        lambda: (Decimal(0), Decimal(0))
    )
    for p in decision.penalties:
        if p.amount_min is None and p.amount_max is None:
            continue
        low = p.amount_min if p.amount_min is not None else p.amount_max
        high = p.amount_max if p.amount_max is not None else p.amount_min
        assert low is not None and high is not None
        lo, hi = out[(p.party, p.currency or "")]
        out[(p.party, p.currency or "")] = (lo + low, hi + high)
    return dict(out)


def totals_by_party(page: Page) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    out: dict[tuple[str, str], tuple[Decimal, Decimal]] = defaultdict(
        lambda: (Decimal(0), Decimal(0))
    )
    for party, _month, currency, low, high in page.totals:
        if low == high == 0 and not currency:  # a statement without fines shows ¥0
            continue
        lo, hi = out[(party, currency)]
        out[(party, currency)] = (lo + low, hi + high)
    return dict(out)


# ---------------------------------------------------------------- the page as text


def test_structure_of_the_march_report(huixiao: Any) -> None:
    policy, decision, events = huixiao
    page = render_html(policy, decision, events=events)
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert '<meta charset="utf-8">' in page
    parsed = read(page)
    customers = customers_of(decision)
    assert customers == ["C-wang", "C-liu", "C-chen", "C-zhou", "C-wu"]
    assert parsed.timelines == customers
    # every link points into the page, at an element that is there
    assert parsed.hrefs and all(h.startswith("#") for h in parsed.hrefs)
    assert len(parsed.ids) == len(set(parsed.ids))
    assert {h[1:] for h in parsed.hrefs} <= set(parsed.ids)
    for cid in ("HX-RM-3", "HX-RM-9", "HX-RS-8"):
        assert f'id="clause-{cid}"' in page
        assert policy.compiled.clauses[cid].text in page  # the clause's original text, as written
    assert 'href="#clause-HX-RM-3"' in page and 'href="#rule-dispute-fine"' in page
    assert 'id="event-e21"' in page and 'href="#event-e21"' in page
    assert "<title>" in page.split("<svg", 1)[1]  # tooltips in the chart
    # a range stays a range, for the manager to settle
    assert "¥20–100" in page and "¥240–400" in page
    # statements: per employee and month, totals as the decision's penalties
    assert totals_by_party(parsed) == fines_by_party(decision)
    assert {(e, m) for e, m, *_ in parsed.totals} == {
        ("li", "2026-03"),
        ("sun", "2026-03"),
        ("zhao", "2026-03"),
    }
    assert parsed.departments == ["all"]  # no mapping: one department


def test_self_contained_no_network_no_script(huixiao: Any) -> None:
    policy, decision, events = huixiao
    for lang in ("en", "zh"):
        page = render_html(policy, decision, lang=lang, events=events)
        low = page.lower()
        assert "http://" not in low and "https://" not in low and "file:" not in low
        for banned in ("<script", "<link", "<img", "<iframe", "@import", "url(", " src="):
            assert banned not in low, banned
        assert {"svg", "style", "table"} <= read(page).tags
        assert len(page.encode()) < 250_000  # a phone opens it at once


def test_hostile_text_is_escaped(huixiao: Any) -> None:
    policy, _, events = huixiao
    hostile = copy.deepcopy(events)
    for ev in hostile:
        if ev.get("employee") == "li":
            ev["employee"] = '<img src=x onerror="alert(1)">li'
        if ev.get("customer") == "C-wang":
            ev["customer"] = "C-</svg><script>alert(2)</script>"
        if ev["type"] == "record_filed":
            ev["record"] = "<script>alert(3)</script>&amp;"
    hostile = [ev for ev in hostile if ev["type"] != "dispute"]  # `employees` names li too
    decision = policy.evaluate(hostile)
    page = render_html(policy, decision, events=hostile, departments={"sun": "<b>二部</b>"})
    low = page.lower()
    assert "<script" not in low and "<img" not in low and "<b>二部" not in page
    assert "&lt;script&gt;alert(3)&lt;/script&gt;&amp;amp;" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;li" in page
    assert "&lt;b&gt;二部&lt;/b&gt;" in page
    parsed = read(page)
    assert parsed.timelines == customers_of(decision)
    assert "C-</svg><script>alert(2)</script>" in parsed.timelines
    assert {h[1:] for h in parsed.hrefs} <= set(parsed.ids)  # hostile ids still link
    assert anchor("customer", "C-</svg>") == "customer-C-_3c__2f_svg_3e_"


def test_labels_in_english_and_chinese(huixiao: Any) -> None:
    policy, decision, events = huixiao
    en = render_html(policy, decision, lang="en", events=events)
    zh = render_html(policy, decision, lang="zh", events=events)
    assert '<html lang="en">' in en and '<html lang="zh-CN">' in zh
    for key in ("statements", "departments", "customers", "overdue_duties", "fines_total"):
        assert word(key, "en") in en and word(key, "zh") in zh
        assert word(key, "zh") not in en
    assert "公司公共池" in zh and "company pool" in en
    # the packs' own text is shown as written, in either language
    for page in (en, zh):
        assert "pre-heat the registered customer" in page
        assert policy.compiled.clauses["HX-RM-1"].text in page


def test_departments_from_a_mapping_or_the_events(huixiao: Any) -> None:
    policy, decision, events = huixiao
    depts = {"li": "一部", "zhao": "一部", "sun": "二部"}
    parsed = read(render_html(policy, decision, events=events, departments=depts))
    assert parsed.departments == ["一部", "二部"]
    tagged = [
        {**ev, "department": depts[ev["employee"]]} if ev.get("employee") in depts else ev
        for ev in events[:3]
    ]
    assert department_map(None, tagged) == {"li": "一部", "zhao": "一部"}
    assert department_map(policy, events) == {}


def test_kpis_awards_and_non_cash_sanctions() -> None:
    policy = pe.load_policy(ROOT / "policies" / "online_store")
    events = json.loads((ROOT / "examples" / "online_store.json").read_text(encoding="utf-8"))
    decision = policy.evaluate(events)
    assert decision.metrics and decision.awards
    page = render_html(policy, decision, lang="zh", events=events)
    for mt in decision.metrics:
        assert f'href="#rule-{mt.rule}"' in page
    for aw in decision.awards:
        assert (aw.title or aw.rule) in page
    for p in decision.penalties:
        assert word(p.sanction, "zh") in page
    assert read(page).timelines == customers_of(decision)


CREDITS = """\
policy: {id: report-credits, title: 报告, version: "1", timezone: Asia/Shanghai, currency: CNY}
clauses:
  - {id: R-1, text: 成交提成2.5%, reading: commission of 2.5 percent}
  - {id: R-2, text: 伪造记录扣两天工资, reading: two days of salary}
events:
  sale: {fields: {customer: str, employee: str, amount: decimal}}
  falsified: {fields: {customer: str, employee: str}}
rules:
  - id: commission
    clause: R-1
    on: sale
    then:
      - credit: {party: $event.employee, kind: commission,
                 amount: {round: [{mul: [$event.amount, 0.025]}, 2]}}
  - id: falsified
    clause: R-2
    on: falsified
    then: [{penalty: {party: $event.employee, sanction: salary_deduction, salary_days: 2}}]
"""


def test_credits_and_salary_days_in_the_statements() -> None:
    policy = pe.load_policy_text(CREDITS)
    events = [
        {
            "id": "s1",
            "type": "sale",
            "at": "2026-03-02T10:00:00+08:00",
            "customer": "C1",
            "employee": "李雷",
            "amount": "1000",
        },
        {
            "id": "f1",
            "type": "falsified",
            "at": "2026-04-01T00:10:00+08:00",
            "customer": "C1",
            "employee": "李雷",
        },
    ]
    decision = policy.evaluate(events)
    page = render_html(policy, decision, lang="zh", events=events)
    assert 'data-amount="25"' in page and "¥25" in page
    assert "2天工资" in page
    parsed = read(page)
    assert {(e, m) for e, m, *_ in parsed.totals} == {("李雷", "2026-03"), ("李雷", "2026-04")}
    assert statement_totals(decision) == {}


def test_cli_writes_html_and_hands_xlsx_to_the_statements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report.html"
    code = main(["report", str(HUIXIAO), str(MARCH), "--out", str(out), "--lang", "zh"])
    assert code == 0
    page = out.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in page and page.count('<svg class="timeline"') == 5
    assert "员工月度结算单" in page
    as_of = main(
        [
            "report",
            str(HUIXIAO),
            str(MARCH),
            "--out",
            str(out),
            "--as-of",
            "2026-03-10T00:00:00+08:00",
        ]
    )
    assert as_of == 0 and "2026-03-10 00:00" in out.read_text(encoding="utf-8")

    missing = tmp_path / "no-such-folder" / "report.html"
    assert main(["report", str(HUIXIAO), str(MARCH), "--out", str(missing)]) == 1

    from policyengine.tools import statements

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        statements, "write_workbook", lambda d, path, **kw: calls.append((d, path, kw))
    )
    xlsx = tmp_path / "statement.xlsx"
    assert main(["report", str(HUIXIAO), str(MARCH), "--out", str(xlsx), "--lang", "zh"]) == 0
    assert len(calls) == 1 and calls[0][1] == xlsx and calls[0][2]["lang"] == "zh"
    assert isinstance(calls[0][0], pe.Decision)


# ---------------------------------------------------------------- in a real browser


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        pytest.fail(
            "chromium is not installed: the HTML report is checked in a real headless browser. "
            "Install it with `apt-get install -y chromium` (.ci/run does this before `make test`)"
        )
    return found


def browse(tmp_path: Path, page: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        *flags,
        page.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"
    return done


def test_report_in_a_headless_browser(tmp_path: Path, huixiao: Any) -> None:
    policy, decision, events = huixiao
    path = tmp_path / "report.html"
    path.write_text(render_html(policy, decision, lang="zh", events=events), encoding="utf-8")
    dom = read(browse(tmp_path, path, "--dump-dom").stdout)
    # the browser built a timeline <svg> for every customer of the decision
    assert dom.timelines == customers_of(decision)
    assert "svg" in dom.tags and "rect" in dom.tags
    # and the statement totals are the decision's penalties, per employee
    assert dom.totals, "no statement totals in the DOM"
    assert totals_by_party(dom) == fines_by_party(decision)
    assert "员工月度结算单" in "".join(dom.text)

    shot = tmp_path / "report.png"
    browse(tmp_path, path, f"--screenshot={shot}", "--window-size=1200,1600")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
