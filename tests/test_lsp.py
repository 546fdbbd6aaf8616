"""`policyengine lsp`, driven as an editor drives it: a subprocess speaking JSON-RPC over stdio
(Content-Length framing). Every wait has a timeout, so a hang fails the test instead of
blocking the run, and the process is killed in teardown whatever happened."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from policyengine.cli import main

ROOT = Path(__file__).resolve().parents[1]
WAIT = 30.0  # seconds: far more than a check takes; only a hang reaches it


class Client:
    """The smallest LSP client: requests wait for their response; notifications are kept."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "policyengine", "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        self.inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.notes: list[dict[str, Any]] = []
        self.next_id = 0
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, out: IO[bytes]) -> None:
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    self.inbox.put(None)
                    return
                if not line.strip():
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            assert length is not None
            self.inbox.put(json.loads(out.read(length)))

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _next(self) -> dict[str, Any]:
        try:
            message = self.inbox.get(timeout=WAIT)
        except queue.Empty:
            pytest.fail(f"the server did not answer within {WAIT} s")
        if message is None:
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            pytest.fail(f"the server closed its output: {err[-2000:]}")
        if "method" in message and "id" in message:  # a request of the server's: say nothing
            self.send({"id": message["id"], "result": None})
        elif "method" in message:
            self.notes.append(message)
        return message

    def request(self, method: str, params: Any) -> Any:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        while True:
            message = self._next()
            if message.get("id") == self.next_id and "method" not in message:
                assert "error" not in message, message
                return message.get("result")

    def notify(self, method: str, params: Any) -> None:
        self.send({"method": method, "params": params})

    def diagnostics(self, uri: str, version: int) -> list[dict[str, Any]]:
        """The diagnostics published for ``uri`` at ``version`` (waiting for them)."""
        while True:
            for note in self.notes:
                p = note["params"]
                published = note["method"] == "textDocument/publishDiagnostics"
                if published and p["uri"] == uri and p.get("version") == version:
                    self.notes.remove(note)
                    return list(p["diagnostics"])
            self._next()

    def open(self, path: Path, text: str | None = None) -> tuple[str, list[dict[str, Any]]]:
        uri = path.as_uri()
        body = path.read_text(encoding="utf-8") if text is None else text
        item = {"uri": uri, "languageId": "yaml", "version": 1, "text": body}
        self.notify("textDocument/didOpen", {"textDocument": item})
        return uri, self.diagnostics(uri, 1)

    def change(self, uri: str, version: int, text: str) -> list[dict[str, Any]]:
        self.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]},
        )
        return self.diagnostics(uri, version)

    def at(self, method: str, uri: str, line: int, character: int) -> Any:
        pos = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
        return self.request(method, pos)

    def labels(self, uri: str, line: int, character: int) -> set[str]:
        result = self.at("textDocument/completion", uri, line, character)
        items = result["items"] if isinstance(result, dict) else result
        return {i["label"] for i in items}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=WAIT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _start() -> Client:
    client = Client()
    init = client.request(
        "initialize", {"processId": None, "rootUri": ROOT.as_uri(), "capabilities": {}}
    )
    caps = init["capabilities"]
    assert caps["hoverProvider"] and caps["definitionProvider"] and caps["completionProvider"]
    client.notify("initialized", {})
    return client


@pytest.fixture(scope="module")
def lsp() -> Iterator[Client]:
    client = _start()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def packs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copies of two shipped packs (one file, several files) and an overlay on one of them."""
    root = tmp_path_factory.mktemp("packs")
    for name in ("online_store", "huixiao"):
        shutil.copytree(ROOT / "policies" / name, root / name)
    (root / "acme").mkdir()
    (root / "acme" / "overlay.yaml").write_text(
        "overlay: {id: acme, title: acme, version: '1', base: ../huixiao}\n"
        "disable:\n"
        "  - {rule: dispute-fine, reason: not at acme}\n",
        encoding="utf-8",
    )
    return root


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if line.startswith(needle))


def test_a_broken_file_has_its_problem_at_the_line(lsp: Client, packs: Path) -> None:
    path = packs / "online_store" / "online_store.yaml"
    good = path.read_text(encoding="utf-8")
    line = _line_of(good, "    on: phone_answered")
    broken = good.replace("    on: phone_answered\n", "    on: phone_answerd\n")
    uri, found = lsp.open(path, broken)
    assert [d["code"] for d in found] == ["PE109"]
    (d,) = found
    assert d["range"]["start"] == {"line": line, "character": 8}
    assert d["range"]["end"] == {"line": line, "character": 8 + len("phone_answerd")}
    assert d["severity"] == 1
    assert "phone_answerd" in d["message"] and "did you mean 'phone_answered'" in d["message"]
    # fixed as you type: the diagnostics go away
    assert lsp.change(uri, 2, good) == []


def test_analysis_warnings_are_warnings(lsp: Client, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    text = (
        "policy: {id: demo, title: demo, version: '1'}\n"
        "clauses:\n"
        "  - {id: D-1, text: t, reading: r}\n"
        "events:\n"
        "  follow_up: {fields: {customer: str}}\n"
        "  never_used: {fields: {customer: str}}\n"
        "rules:\n"
        "  - id: r\n"
        "    clause: D-1\n"
        "    on: follow_up\n"
        "    then: [{add: {counter: n}}]\n"
    )
    path.write_text(text, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "policyengine", "check", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    expected = json.loads(out.stdout)
    _, found = lsp.open(path)
    assert [d["code"] for d in found] == [r["code"] for r in expected]
    for d, r in zip(found, expected, strict=True):
        assert d["range"]["start"]["line"] == r["line"] - 1
        assert d["severity"] == (2 if r["severity"] == "warning" else 1)


def test_completion_of_event_types_fields_params_clauses(lsp: Client, packs: Path) -> None:
    path = packs / "online_store" / "online_store.yaml"
    text = path.read_text(encoding="utf-8")
    uri, found = lsp.open(path)
    assert found == []
    lines = text.splitlines()
    on = _line_of(text, "    on: phone_answered")
    events = lsp.labels(uri, on, len("    on: "))
    assert {"phone_answered", "consultation_received", "violation_recorded"} <= events
    assert "customer" not in events
    when = _line_of(text, "    when: {eq: [$event.channel, online]}")
    col = lines[when].index("$event.") + len("$event.")
    fields = lsp.labels(uri, when, col)
    # the fields of this rule's events (consultation_received, consultation_answered) only
    assert {"channel", "consultation", "employee"} <= fields
    assert "rings" not in fields
    within = _line_of(text, "      within: $params.online_response")
    names = lsp.labels(uri, within, len("      within: $params."))
    assert {"online_response", "phone_rings", "fine_by_severity"} <= names
    clause = _line_of(text, "    clause: OS-2")
    assert lsp.labels(uri, clause, len("    clause: ")) == {f"OS-{i}" for i in range(1, 8)}
    over = _line_of(text, "    overrides: [discipline-ladder]")
    rules = lsp.labels(uri, over, len("    overrides: ["))
    assert {"discipline-ladder", "answer-online-consultation", "serious-violation"} <= rules
    # inside `on: [...]`, after a comma
    edited = text.replace("    on: phone_answered\n", "    on: [phone_answered, ]\n")
    lsp.change(uri, 2, edited)
    assert "issue_raised" in lsp.labels(uri, on, len("    on: [phone_answered, "))


def test_a_broken_file_completes_from_its_last_good_load(lsp: Client, packs: Path) -> None:
    path = packs / "online_store" / "online_store.yaml"
    text = path.read_text(encoding="utf-8")
    uri, _ = lsp.open(path)
    # the params block is gone and the YAML no longer parses: the last good load answers
    broken = text.replace("params:\n", "parms: [\n", 1) + "\n  - : : {\n"
    found = lsp.change(uri, 2, broken)
    assert found and found[0]["code"] == "PE100"
    within = _line_of(broken, "      within: $params.online_response")
    assert "online_response" in lsp.labels(uri, within, len("      within: $params."))


def test_hover_on_a_clause_shows_its_text(lsp: Client, packs: Path) -> None:
    path = packs / "online_store" / "online_store.yaml"
    text = path.read_text(encoding="utf-8")
    uri, _ = lsp.open(path)
    clause = _line_of(text, "    clause: OS-2")
    hover = lsp.at("textDocument/hover", uri, clause, len("    clause: O"))
    value = hover["contents"]["value"]
    assert "OS-2" in value and "對于復雜投訴" in value and "working days" in value
    block = _line_of(text, "  - id: OS-6")
    value = lsp.at("textDocument/hover", uri, block, len("  - id: OS-"))["contents"]["value"]
    assert "服務之星獎" in value
    assert lsp.at("textDocument/hover", uri, 0, 0) is None  # a comment: nothing to show


def test_definition_of_rules_params_and_event_types(lsp: Client, packs: Path) -> None:
    path = packs / "online_store" / "online_store.yaml"
    text = path.read_text(encoding="utf-8")
    uri, _ = lsp.open(path)
    over = _line_of(text, "    overrides: [discipline-ladder]")
    to = lsp.at("textDocument/definition", uri, over, len("    overrides: [disc"))
    assert to["uri"] == uri
    assert to["range"]["start"] == {
        "line": _line_of(text, "  - id: discipline-ladder"),
        "character": 8,
    }
    within = _line_of(text, "      within: $params.online_response")
    to = lsp.at("textDocument/definition", uri, within, len("      within: $params.onl"))
    assert to["range"]["start"] == {"line": _line_of(text, "  online_response:"), "character": 2}
    on = _line_of(text, "    on: phone_answered")
    to = lsp.at("textDocument/definition", uri, on, len("    on: ph"))
    assert to["range"]["start"]["line"] == _line_of(text, "  phone_answered:")


def test_a_pack_of_several_files_is_checked_with_its_siblings(lsp: Client, packs: Path) -> None:
    path = packs / "huixiao" / "resources.yaml"
    text = path.read_text(encoding="utf-8")
    uri, found = lsp.open(path)
    assert found == []  # alone, it would miss the events and clauses after_sales.yaml declares
    over = _line_of(text, "    overrides: [preheat-window]")
    rules = lsp.labels(uri, over, len("    overrides: ["))
    assert "preheat-window" in rules  # this file
    assert "count-old-customers-served" in rules  # after_sales.yaml
    to = lsp.at("textDocument/definition", uri, over, len("    overrides: [pre"))
    assert to["range"]["start"]["line"] == _line_of(text, "  - id: preheat-window")
    # a sibling's rule: the definition is in the other file
    sibling = (packs / "huixiao" / "after_sales.yaml").read_text(encoding="utf-8")
    edited = text.replace("[preheat-window]", "[count-old-customers-served]", 1)
    assert lsp.change(uri, 2, edited) == []
    to = lsp.at("textDocument/definition", uri, over, len("    overrides: [cou"))
    assert to["uri"] == (packs / "huixiao" / "after_sales.yaml").as_uri()
    assert to["range"]["start"]["line"] == _line_of(sibling, "  - id: count-old-customers-served")


def test_an_overlay_completes_and_finds_its_base_rules(lsp: Client, packs: Path) -> None:
    path = packs / "acme" / "overlay.yaml"
    uri, found = lsp.open(path)
    # disabling dispute-fine leaves a base declaration unused: said once, as information
    assert [(d["severity"], d["code"]) for d in found] == [(3, "PE404")]
    assert "other files of the pack" in found[0]["message"]
    rules = lsp.labels(uri, 2, len("  - {rule: "))
    assert {"dispute-fine", "preheat-window"} <= rules
    to = lsp.at("textDocument/definition", uri, 2, len("  - {rule: disp"))
    base = (packs / "huixiao" / "resources.yaml").read_text(encoding="utf-8")
    assert to["uri"] == (packs / "huixiao" / "resources.yaml").as_uri()
    assert to["range"]["start"]["line"] == _line_of(base, "  - id: dispute-fine")
    found = lsp.change(uri, 2, path.read_text(encoding="utf-8").replace("dispute-fine", "dispute"))
    assert [d["code"] for d in found] == ["PE111"]
    assert found[0]["range"]["start"]["line"] == 2


def test_a_calendar_file_is_checked(lsp: Client, tmp_path: Path) -> None:
    path = tmp_path / "company-2027.yaml"
    text = "calendar:\n  holidays: [2027-01-04]\n  workday: [2027-01-09]\n"
    _, found = lsp.open(path, text)
    assert [d["code"] for d in found] == ["PE101"]
    assert found[0]["range"]["start"] == {"line": 2, "character": 2}


def test_a_scenario_file_is_left_to_policyengine_test(lsp: Client, packs: Path) -> None:
    scenario = sorted((packs / "huixiao" / "tests").glob("*.yaml"))[0]
    _, found = lsp.open(scenario)
    assert found == []


GARBAGE = [
    "",
    "\x00\x01\x02",
    "{{{{[[[[ : : : ]]",
    "- - - - -\n  ? ? ?\n: x",
    "policy: !!python/object:os.system ls\n",
    "a: &a [*a, *a]\n",
    "[" * 500,
    "rules: 5\nclauses: {x: 1}\nevents: [1, 2]\nparams: nope\n",
    "\ud800 lone surrogate",
    "on: [\n$event.\n$params.\noverrides: [\n",
]


def test_garbage_gives_diagnostics_never_a_crash(lsp: Client, tmp_path: Path) -> None:
    path = tmp_path / "garbage.yaml"
    uri, found = lsp.open(path, "policy: x\n")
    assert found
    for version, text in enumerate(GARBAGE, start=2):
        found = lsp.change(uri, version, text)
        assert found, repr(text)
        assert all(d["range"]["start"]["line"] >= 0 for d in found)
        for line in range(3):
            for char in (0, 3, 9):
                lsp.labels(uri, line, char)
                lsp.at("textDocument/hover", uri, line, char)
                lsp.at("textDocument/definition", uri, line, char)
    assert lsp.proc.poll() is None


def test_shutdown_and_exit_cleanly() -> None:
    client = _start()
    try:
        assert client.request("shutdown", None) is None
        client.notify("exit", None)
        assert client.proc.wait(timeout=WAIT) == 0
    finally:
        client.close()


def test_without_pygls_it_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delitem(sys.modules, "policyengine.tools.lsp", raising=False)
    for name in ("pygls", "pygls.lsp", "pygls.lsp.server", "pygls.uris"):
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["lsp"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'policyengine[lsp]'" in err
