"""``policyengine serve``: the real server on a loopback port, called over HTTP.

Most tests start ``policyengine serve`` as a subprocess (benchmarks/load.py ``server``); the
timeout and internal-error tests run ``create_app`` under ``uvicorn.Server`` in a thread of
this process, so that an evaluation can be made slow or broken with ``monkeypatch``.
"""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
import uvicorn

import policyengine as pe
from policyengine.backends.snapshot_codec import fingerprint
from policyengine.cli import build_parser
from policyengine.tools import service
from policyengine.tools.explain import explain_full

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from load import free_port, load, server  # noqa: E402

EVENTS: list[dict[str, Any]] = json.loads((ROOT / "examples/huixiao_march.json").read_text())
HUIXIAO = str(ROOT / "policies/huixiao")


def call(url: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any, Any]:
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read())


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service") / "decisions.jsonl"


@pytest.fixture(scope="module")
def url(log_file: Path) -> Iterator[str]:
    with server(HUIXIAO, "policies/online_store", "--log", str(log_file)) as running:
        yield running.url


def test_evaluate_is_the_decision_dump(url: str, log_file: Path) -> None:
    status, headers, got = call(url, "/v1/evaluate", {"events": EVENTS})
    assert status == 200
    assert got == pe.load_policy(HUIXIAO).evaluate(EVENTS).model_dump(mode="json")
    decision_id = headers["X-Decision-Id"]
    lines = [json.loads(x) for x in log_file.read_text("utf-8").splitlines()]
    line = next(x for x in lines if x["decision_id"] == decision_id)
    assert line["outcome"] == "decided" and line["kind"] == "evaluate"
    assert line["policy"]["fingerprint"] == fingerprint(pe.load_policy(HUIXIAO).program)
    assert line["counts"]["events"] == len(EVENTS) and line["counts"]["owners"] > 0
    assert len(line["input_sha256"]) == 64 and "input" not in line
    assert line["time"].endswith("Z")


def test_params_and_policy_selection(url: str) -> None:
    store = json.loads((ROOT / "examples/online_store.json").read_text())
    events = store["events"] if isinstance(store, dict) else store
    status, _, got = call(url, "/v1/evaluate?policy=online_store", {"events": events})
    assert status == 200 and got["policy"] == "online-store"
    status, _, got = call(url, "/v1/evaluate", {"events": EVENTS, "params": {"no_such_param": 1}})
    assert status == 400 and got["error"]["class"] == "PolicyError"
    status, _, got = call(url, "/v1/evaluate", {"events": EVENTS, "policy": "huixaio"})
    assert status == 404 and got["error"]["class"] == "UnknownPolicy"
    assert "huixiao" in got["error"]["hint"]


def test_resume_equals_one_evaluation(url: str) -> None:
    status, _, first = call(url, "/v1/resume", {"events": EVENTS[:12]})
    assert status == 200 and first["resumed"] is None
    status, _, second = call(
        url, "/v1/resume", {"snapshot": first["snapshot"], "events": EVENTS[12:]}
    )
    assert status == 200 and second["resumed"]["mode"] in ("incremental", "full")
    whole = pe.load_policy(HUIXIAO).evaluate(EVENTS).model_dump(mode="json")
    assert second["decision"] == whole
    damaged = dict(first["snapshot"], digest="0" * 64)
    status, _, got = call(url, "/v1/resume", {"snapshot": damaged, "events": EVENTS[12:]})
    assert status == 400 and got["error"]["class"] == "SnapshotError"


def test_explain(url: str) -> None:
    status, _, got = call(url, "/v1/explain", {"events": EVENTS, "subject": "C-wang"})
    assert status == 200
    policy = pe.load_policy(HUIXIAO)
    decision = policy.evaluate(EVENTS)
    assert got["text"] == explain_full(decision, "C-wang", policy, history=EVENTS)
    assert got["json"]["owner"] == decision.owner("C-wang")
    status, _, got = call(url, "/v1/explain", {"events": EVENTS, "subject": "C-wagn"})
    assert status == 400 and got["error"]["class"] == "UnknownSubject"


def test_policy_and_health(url: str) -> None:
    status, _, got = call(url, "/v1/policy")
    policy = pe.load_policy(HUIXIAO)
    assert status == 200 and got["id"] == policy.id and got["version"] == policy.version
    assert got["fingerprint"] == fingerprint(policy.program)
    assert {c["id"] for c in got["clauses"]} == set(policy.clause_ids)
    assert all({"text", "reading"} <= set(c) for c in got["clauses"])
    fields = got["events"]["registered"]
    assert {"name", "type", "optional", "enum"} <= set(fields[0])
    status, _, health = call(url, "/healthz")
    assert health["status"] == "ok"
    assert [p["name"] for p in health["policies"]] == ["huixiao", "online_store"]
    with urllib.request.urlopen(url + "/openapi.json") as r:
        assert "/v1/evaluate" in json.loads(r.read())["paths"]


def test_bad_history_is_400_with_codes(url: str) -> None:
    bad = [
        {"id": "b1", "type": "registered", "at": "2026-03-02T09:00:00", "customer": "C1"},
        {"id": "b2", "type": "no_such_type", "at": "2026-03-02T09:00:00+08:00"},
    ]
    status, headers, got = call(url, "/v1/evaluate", {"events": bad})
    assert status == 400 and "X-Decision-Id" in headers
    err = got["error"]
    assert err["class"] == "EventError"
    assert {p["event_id"] for p in err["problems"]} >= {"b1", "b2"}
    assert all(p["code"].startswith("PE2") for p in err["problems"])
    assert set(err["problems"][0]) == {"code", "message", "location", "event_id", "field", "hint"}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"events": {"a": 1}}', "'events'"),
        (b'{"events": [], "as_of": 5}', "'as_of'"),
        (b'{"evnts": []}', "unknown field"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_body_is_400_not_422(url: str, raw: bytes, fragment: str) -> None:
    status, _, got = call(url, "/v1/evaluate", raw=raw)
    assert status == 400
    assert got["error"]["problems"][0]["code"] == "PE207"
    assert fragment in got["error"]["problems"][0]["message"]


def test_unknown_route_is_json(url: str) -> None:
    status, _, got = call(url, "/v2/nothing")
    assert status == 404 and got["error"]["class"] == "NotFound"


def test_load_200_requests(url: str) -> None:
    stats = load(url, clients=4, duration=None, requests=200)
    print(f"\nload: {stats}")
    assert stats["requests"] == 200
    assert stats["errors"] == 0, stats["error_samples"]


# ---------------------------------------------------------------- reloads, limits


def _version(pack: Path, version: str) -> None:
    f = pack / "after_sales.yaml"
    text = f.read_text("utf-8")
    f.write_text(text.replace('version: "1.0.0"', f'version: "{version}"', 1), "utf-8")


def _wait(pred: Any, seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


@pytest.mark.parametrize("how", ["sighup", "watch"])
def test_broken_reload_keeps_the_old_policy(tmp_path: Path, how: str) -> None:
    pack = tmp_path / "huixiao"
    shutil.copytree(ROOT / "policies/huixiao", pack, ignore=shutil.ignore_patterns("tests"))
    err = tmp_path / "stderr.txt"
    extra = ["--watch"] if how == "watch" else []
    with server(str(pack), "--max-body", "2KB", *extra, stderr=err) as running:
        url = running.url

        def reload() -> None:
            if how == "sighup":
                running.proc.send_signal(signal.SIGHUP)

        _, _, before = call(url, "/healthz")
        f = pack / "after_sales.yaml"
        good = f.read_text("utf-8")
        time.sleep(0.05)  # a distinct mtime
        f.write_text(good + "\nrules: [ {id: \n", "utf-8")
        reload()
        health = _wait(lambda: call(url, "/healthz")[2]["reload_errors"])
        assert "PE1" in health[0]
        assert call(url, "/healthz")[2]["policies"] == before["policies"]
        small = EVENTS[:3]
        status, _, got = call(url, "/v1/evaluate", {"events": small})
        assert status == 200 and got["version"] == "1.0.0+1.0.0"
        # the fix: a new version is served
        f.write_text(good, "utf-8")
        _version(pack, "1.0.1")
        reload()
        _wait(lambda: call(url, "/v1/evaluate", {"events": small})[2]["version"] == "1.0.1+1.0.0")
        assert call(url, "/healthz")[2]["reload_errors"] == []
        # the limit: over --max-body 2KB
        status, _, got = call(url, "/v1/evaluate", {"events": EVENTS})
        assert status == 413 and got["error"]["class"] == "RequestTooLarge"
    assert "PE1" in err.read_text("utf-8")  # the broken edit's PolicyError, logged


def test_log_inputs(tmp_path: Path) -> None:
    log = tmp_path / "d.jsonl"
    with server(HUIXIAO, "--log", str(log), "--log-inputs") as running:
        status, headers, _ = call(running.url, "/v1/evaluate", {"events": EVENTS[:3]})
    assert status == 200
    (line,) = [json.loads(x) for x in log.read_text("utf-8").splitlines()]
    assert line["decision_id"] == headers["X-Decision-Id"]
    assert line["input"] == {"events": EVENTS[:3]}


# ---------------------------------------------------------------- in process: timeout, bugs


@pytest.fixture
def inproc(tmp_path: Path) -> Iterator[str]:
    app = service.create_app([HUIXIAO], timeout=0.3, log_path=str(tmp_path / "d.jsonl"))
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    _wait(lambda: srv.started, 10)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def test_timeout_is_503(inproc: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = pe.Policy.evaluate

    def slow(self: Any, *args: Any, **kw: Any) -> Any:
        time.sleep(1.0)
        return real(self, *args, **kw)

    monkeypatch.setattr(pe.Policy, "evaluate", slow)
    status, _, got = call(inproc, "/v1/evaluate", {"events": EVENTS[:3]})
    assert status == 503 and got["error"]["class"] == "Timeout"


def test_a_bug_is_500_asking_for_a_report(inproc: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, *args: Any, **kw: Any) -> Any:
        raise RuntimeError("sentinel-xyz")

    monkeypatch.setattr(pe.Policy, "evaluate", broken)
    status, _, got = call(inproc, "/v1/evaluate", {"events": EVENTS[:3]})
    assert status == 500 and "report it" in got["error"]["message"]
    assert "sentinel-xyz" not in json.dumps(got)


def test_two_policies_with_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match="two policies named"):
        service.create_app([HUIXIAO, HUIXIAO])


# ---------------------------------------------------------------- the Dockerfile


def _dockerfile() -> list[str]:
    text = (ROOT / "Dockerfile").read_text("utf-8").replace("\\\n", " ")
    return [x.strip() for x in text.splitlines() if x.strip() and not x.startswith("#")]


def test_dockerfile_static() -> None:
    lines = _dockerfile()
    assert lines[0] == "FROM python:3.11-slim"
    users = [x.split()[1] for x in lines if x.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(x.startswith("EXPOSE 8181") for x in lines)
    assert any(x.startswith("HEALTHCHECK") and "/healthz" in x for x in lines)
    assert any(x.startswith("COPY policies/") for x in lines)
    assert any("pip install" in x and ".[server,excel]" in x for x in lines)
    cmd = json.loads(next(x for x in lines if x.startswith("CMD "))[4:])
    assert cmd[:2] == ["policyengine", "serve"]
    args = build_parser().parse_args(cmd[1:])
    assert args.command == "serve" and args.host == "0.0.0.0" and args.port == 8181
    for path in args.policies:  # the packs the image serves load
        assert (ROOT / path).is_dir()
        pe.load_policy(ROOT / path)
    ignored = (ROOT / ".dockerignore").read_text("utf-8").split()
    assert ".venv" in ignored and ".git" in ignored


def test_docker_build() -> None:
    """A real ``docker build``: skipped when no Docker engine answers ``docker info`` (an
    environment condition, not a failure: the static test above still checks the file)."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode:
        pytest.skip("no Docker engine on this machine")
    cmd = f"{docker} build -q -t policyengine-test {shlex.quote(str(ROOT))}"
    subprocess.run(shlex.split(cmd), check=True, timeout=900)
