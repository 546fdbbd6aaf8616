"""The service's page (issue 18): ``GET /`` and ``POST /v1/page/decide``.

The page is driven in a real headless browser: the app runs on a loopback port (uvicorn in a
thread), Debian's ``chromium`` through ``chromedriver`` (selenium) uploads
``examples/huixiao_march.json`` through the file input, and the owners the page shows are the
owners of the same evaluation, with a timeline ``<svg>`` per customer. ``.ci/run`` installs
chromium and chromium-driver; without them the browser test fails, never skips. The other tests
use FastAPI's TestClient.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

import policyengine as pe
from policyengine.tools.history_io import read_located
from policyengine.tools.report import customers_of

ROOT = Path(__file__).parents[1]
PACK = ROOT / "policies" / "huixiao"
MARCH = ROOT / "examples" / "huixiao_march.json"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class _Registry:
    """A stand-in for the service's registry when ``tools.service`` is not there."""

    def __init__(self, paths: list[str]) -> None:
        self._policies = {Path(p).name: pe.load_policy(p) for p in paths}

    def names(self) -> list[str]:
        return list(self._policies)

    def get(self, name: str | None) -> pe.Policy:
        return self._policies[name or next(iter(self._policies))]


def make_app() -> FastAPI:
    """The real app when the service core exists (it includes the page's router), else a
    minimal one with the page's router and a registry stand-in."""
    try:
        from policyengine.tools.service import create_app
    except ImportError:
        from policyengine.tools.service_page import router

        app = FastAPI()
        app.state.registry = _Registry([str(PACK)])
        app.include_router(router)
        return app
    made: FastAPI = create_app([str(PACK)])
    return made


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return make_app()


@pytest.fixture(scope="module")
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


def pack_name(app: FastAPI) -> str:
    names = app.state.registry.names()
    assert names, "the registry has no pack"
    return str(names[0])


def expected(app: FastAPI, path: Path = MARCH) -> pe.Decision:
    """The decision the page should show: the same pack, the same reading of the file."""
    policy = app.state.registry.get(pack_name(app))
    events = read_located(path, policy, naive_times="policy").events
    return policy.evaluate(events)


def decide(
    client: TestClient, name: str, data: bytes, lang: str = "zh", policy: str | None = None
) -> Any:
    form = {"lang": lang, "naive_times": "policy"}
    if policy is not None:
        form["policy"] = policy
    return client.post("/v1/page/decide", files={"file": (name, data)}, data=form)


# ------------------------------------------------------------------ without a browser


def test_page_has_no_outside_reference_and_is_chinese_by_default(
    client: TestClient, app: FastAPI
) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    text = r.text
    assert not re.search(r"https?://", text), "the page must not reference anything outside"
    assert "//cdn" not in text and "<link" not in text and " src=" not in text
    assert '<html lang="zh-CN">' in text
    assert "制度执行检查" in text and "判定" in text
    for name in app.state.registry.names():
        assert f'<option value="{name}">' in text
    assert 'type="file"' in text and 'id="drop"' in text
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'nonce-" in csp


def test_page_switches_to_english(client: TestClient) -> None:
    text = client.get("/?lang=en").text
    assert '<html lang="en">' in text
    assert "Policy check" in text and ">decide<" in text
    assert "制度执行检查" not in text


def test_decide_fragment_shows_owners_fines_duties_and_why(
    client: TestClient, app: FastAPI
) -> None:
    decision = expected(app)
    r = decide(client, "huixiao_march.json", MARCH.read_bytes(), policy=pack_name(app))
    assert r.status_code == 200, r.text[:2000]
    text = r.text
    assert not re.search(r"https?://", text)
    shown = dict(re.findall(r'<tr data-subject="([^"]*)" data-owner="([^"]*)">', text))
    assert shown == {s: decision.owner(s) or "" for s in customers_of(decision)}
    assert text.count('<svg class="timeline"') == len(customers_of(decision))
    assert 'id="fines"' in text and 'id="duties"' in text
    assert text.count("<tr data-party=") >= len(decision.penalties)
    assert text.count('class="why"><summary>为什么</summary>') >= len(customers_of(decision))
    assert "归属人" in text  # present.word in Chinese
    en = decide(client, "huixiao_march.json", MARCH.read_bytes(), lang="en").text
    assert "<summary>why</summary>" in en and "owner" in en


def test_hostile_text_is_escaped(client: TestClient) -> None:
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    events = [
        {
            "id": "e1",
            "type": "registered",
            "at": "2026-03-02T09:00:00+08:00",
            "customer": hostile,
            "employee": hostile,
            "channel": "list_call",
        }
    ]
    r = decide(client, "h<b>.json", json.dumps(events).encode())
    assert r.status_code == 200, r.text
    assert 'data-customer="&lt;script&gt;' in r.text
    assert "<script>" not in r.text and "<img" not in r.text
    assert "&lt;script&gt;" in r.text
    assert "h<b>" not in r.text and "h&lt;b&gt;.json" in r.text  # the file's name too


def test_bad_json_is_an_error_fragment_with_code_and_place(client: TestClient) -> None:
    bad = b'[{"id": "x", "type": "registered", "at": "not a time", "customer": "C"}]'
    r = decide(client, "history.json", bad)
    assert r.status_code == 400
    assert 'class="pe-error"' in r.text
    assert "PE204" in r.text and "history.json:1:2" in r.text
    assert "/tmp" not in r.text and "pe-page-" not in r.text  # the temporary file is not named


def test_bad_xlsx_cell_is_located(client: TestClient, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "Sheet1"
    ws.append(["id", "type", "at", "customer", "employee", "channel"])
    ws.append(["e1", "registered", "2026-03-02 09:00", "C-1", "li", "list_call"])
    ws.append(["e2", "registered", "yesterday", "C-2", "li", "list_call"])
    buf = io.BytesIO()
    book.save(buf)
    r = decide(client, "history.xlsx", buf.getvalue())
    assert r.status_code == 400, r.text
    assert re.search(r"PE2\d\d", r.text)
    assert "history.xlsx:Sheet1!C3" in r.text


def test_unknown_format_unknown_pack_and_no_file(client: TestClient) -> None:
    r = decide(client, "history.txt", b"hello")
    assert r.status_code == 400 and "PE209" in r.text and "history.txt" in r.text
    r = decide(client, "h.json", b"[]", policy="<nope>")
    assert r.status_code == 400 and "&lt;nope&gt;" in r.text and "<nope>" not in r.text
    r = client.post("/v1/page/decide", data={"lang": "en"})
    assert r.status_code == 400 and "no file" in r.text


def test_upload_limit(client: TestClient, app: FastAPI) -> None:
    from policyengine.tools.service_page import _limit

    class _Req:
        pass

    req = _Req()
    req.app = app  # type: ignore[attr-defined]
    limit = _limit(req)  # type: ignore[arg-type]
    r = decide(client, "big.json", b" " * (limit + 1))
    assert r.status_code == 413 and 'class="pe-error"' in r.text


# ------------------------------------------------------------------ in a real browser


def _free_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def server(app: FastAPI) -> Iterator[str]:
    sock = _free_port()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert thread.is_alive(), "the server did not start"
        assert time.monotonic() < deadline, "the server did not start in 20 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)
        sock.close()


def _browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing and not shutil.which("chromedriver"):
        pytest.fail(
            f"{', '.join(missing)} missing: the page is checked in a real headless browser. "
            "Install them with `apt-get install -y chromium chromium-driver` (.ci/run does this "
            "before `make test`)"
        )
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1600"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = _browser()
    try:
        yield driver
    finally:
        driver.quit()


def _upload(browser: Any, base: str, path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(base + "/")
    browser.find_element(By.ID, "file").send_keys(str(path))
    browser.find_element(By.ID, "decide").click()


def test_page_in_a_real_browser(server: str, browser: Any, app: FastAPI) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    decision = expected(app)
    _upload(browser, server, MARCH)
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "owners")))
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    rows = browser.find_elements(By.CSS_SELECTOR, "#owners tbody tr")
    shown = {r.get_attribute("data-subject"): r.get_attribute("data-owner") for r in rows}
    subjects = customers_of(decision)
    assert subjects, "the March example has customers"
    assert shown == {s: decision.owner(s) or "" for s in subjects}
    for row in rows:  # what is read on screen: the owner's name (the pool in words)
        owner = row.get_attribute("data-owner")
        cell = row.find_element(By.CSS_SELECTOR, "td.owner").text
        assert cell == ("公司公共池" if owner == "company" else owner or "—")
    for s in subjects:
        article = browser.find_element(By.CSS_SELECTOR, f'article.customer[data-customer="{s}"]')
        assert article.find_elements(By.CSS_SELECTOR, "svg.timeline"), f"no timeline for {s}"
    # "why" opens on a click and tells the customer's account
    first = rows[0]
    first.find_element(By.CSS_SELECTOR, "details.why summary").click()
    why = first.find_element(By.CSS_SELECTOR, "pre.why").text
    assert why.startswith(str(first.get_attribute("data-subject")))


def test_bad_file_in_a_real_browser(server: str, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    bad = tmp_path / "history.json"
    bad.write_text('[{"id": "x", "type": "registered", "at": "soon", "customer": "C"}]')
    _upload(browser, server, bad)
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.CLASS_NAME, "pe-error")))
    text = browser.find_element(By.CLASS_NAME, "pe-error").text
    assert "PE204" in text and "history.json:1:2" in text
