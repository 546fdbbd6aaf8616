"""`policyengine test --format junit` and `--watch`: what CI dashboards and authors at work see."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from policyengine.cli import main
from policyengine.tools.watch import stamp, watch

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "policies" / "online_store"
SCENARIO = "os1_email_and_phone.yaml"


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    dest = tmp_path / "online_store"
    shutil.copytree(PACK, dest)
    return dest


def _junit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, ET.Element]:
    code = main(["test", *args, "--format", "junit"])
    return code, ET.fromstring(capsys.readouterr().out.split("\n", 1)[1])


def test_junit_has_a_testcase_per_scenario_located_in_its_file(
    pack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, root = _junit(capsys, str(pack))
    assert code == 0
    suite = root.find("testsuite")
    assert suite is not None and root.get("failures") == "0"
    cases = suite.findall("testcase")
    scenarios = [c for c in cases if c.get("name") != "coverage"]
    assert len(scenarios) > 20 and int(suite.get("tests", "0")) == len(cases)
    first = scenarios[0]
    assert first.get("classname") == "online_store.tests.os1_email_and_phone"
    assert first.get("name", "").startswith("an unanswered online consultation")
    assert Path(first.get("file", "")).name == SCENARIO and first.get("line") == "7"


def test_a_failing_scenario_is_a_failure_element_with_its_message(
    pack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = pack / "tests" / SCENARIO
    f.write_text(f.read_text(encoding="utf-8").replace("status: open", "status: met", 1), "utf-8")
    code, root = _junit(capsys, str(pack))
    assert code == 2 and root.get("failures") == "1"
    failed = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert [c.get("line") for c in failed] == ["7"]
    failure = failed[0].find("failure")
    assert failure is not None and failure.text and "status" in failure.text
    assert failure.get("message") == failure.text.split("\n")[0]


def test_coverage_below_the_threshold_is_a_failing_testcase(
    pack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for f in (pack / "tests").glob("*.yaml"):
        if f.name != SCENARIO:
            f.unlink()
    code, root = _junit(capsys, str(pack), "--coverage", "100")
    assert code == 2
    cov = next(c for c in root.iter("testcase") if c.get("name") == "coverage")
    failure = cov.find("failure")
    assert failure is not None and "below 100%" in (failure.get("message") or "")


def test_watch_reruns_when_a_watched_file_changes(pack: Path) -> None:
    runs: list[float] = []
    target = pack / "online_store.yaml"

    def touch_later() -> None:
        while not runs:
            time.sleep(0.01)
        time.sleep(0.05)
        target.write_text(target.read_text(encoding="utf-8") + "\n# edited\n", "utf-8")

    threading.Thread(target=touch_later, daemon=True).start()
    log = open(os.devnull, "w")  # noqa: SIM115 - closed below
    try:
        code = watch([pack / "tests" / SCENARIO], lambda: runs.append(time.time()) or 3,
                     interval=0.01, runs=2, out=log)
    finally:
        log.close()
    assert code == 3 and len(runs) == 2  # the scenario file's pack folder is watched too


def test_stamp_sees_creation_and_removal(tmp_path: Path) -> None:
    before = stamp([tmp_path])
    (tmp_path / "a.yaml").write_text("x: 1\n", "utf-8")
    (tmp_path / "notes.txt").write_text("ignored\n", "utf-8")
    after = stamp([tmp_path])
    assert before == () and [Path(n).name for n, *_ in after] == ["a.yaml"]
    (tmp_path / "a.yaml").unlink()
    assert stamp([tmp_path]) == ()


def test_watch_from_the_command_line_reruns_and_survives_a_broken_policy(pack: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "policyengine", "test", str(pack), "--watch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
    )
    assert proc.stdout is not None
    try:
        seen: list[str] = []

        def until(word: str) -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = proc.stdout.readline()  # type: ignore[union-attr]
                seen.append(line)
                if word in line:
                    return
            raise AssertionError(f"no {word!r} in {seen}")

        until("-- watching")
        policy = pack / "online_store.yaml"
        good = policy.read_text(encoding="utf-8")
        policy.write_text(good + "\nbroken: [\n", "utf-8")
        until("-- watching")  # the broken policy was reported, the watch goes on
        assert any("PE" in line for line in seen), seen
        policy.write_text(good, "utf-8")
        until("scenarios pass")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
