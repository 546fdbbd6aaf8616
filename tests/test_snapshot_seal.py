"""Snapshots that a store cannot tamper with: sealed with a key (HMAC-SHA256), carried rows
checked when resumed, and the same bytes under any hash seed."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe
from policyengine.backends import snapshot as snap
from policyengine.errors import SnapshotError
from test_snapshot import BOUGHT, MINI, VISITED, assert_same

ROOT = Path(__file__).resolve().parent.parent
KEY = b"the store does not know this"


def sealed() -> dict[str, Any]:
    return pe.load_policy_text(MINI).evaluate([BOUGHT]).snapshot(key=KEY)


def refused(stored: Any, key: Any = KEY) -> SnapshotError:
    with pytest.raises(SnapshotError) as info:
        pe.load_policy_text(MINI).resume(stored, [VISITED], key=key)
    assert info.value.codes == ["PE502"]
    return info.value


def test_a_sealed_snapshot_resumes_with_its_key_as_the_whole_history_would() -> None:
    policy = pe.load_policy_text(MINI)
    stored = json.loads(json.dumps(sealed()))
    assert isinstance(stored["seal"], str) and len(stored["seal"]) == 64
    resumed = policy.resume(stored, [VISITED], key=KEY)
    assert_same(resumed, policy.evaluate([BOUGHT, VISITED]))
    # the next snapshot is sealed again with the key it is given
    again = resumed.snapshot(key=KEY)
    assert policy.resume(again, [], key=KEY).obligations[0].status == "met"


def test_without_a_key_a_sealed_snapshot_is_checked_by_its_digest_only() -> None:
    policy = pe.load_policy_text(MINI)
    assert policy.resume(sealed(), [VISITED]).obligations[0].status == "met"


def test_a_key_refuses_a_snapshot_without_a_seal() -> None:
    unsealed = pe.load_policy_text(MINI).evaluate([BOUGHT]).snapshot()
    assert "seal" not in unsealed
    assert "no seal" in str(refused(unsealed))


def test_another_key_does_not_verify() -> None:
    assert "does not verify" in str(refused(sealed(), key=b"a guess"))


def test_an_edit_resealed_with_a_new_digest_but_without_the_key_is_refused() -> None:
    """Anyone can recompute the digest; only the key holder can recompute the seal."""
    stored = sealed()
    stored["records"]["obligations"] = [
        row.replace('"visit"', '"nothing owed"') for row in stored["records"]["obligations"]
    ]
    stored["digest"] = snap._digest(stored)
    assert "does not verify" in str(refused(stored))


def test_a_bad_key_is_refused_clearly() -> None:
    for key in (b"", 5):
        with pytest.raises(SnapshotError) as info:
            pe.load_policy_text(MINI).evaluate([BOUGHT]).snapshot(key=key)  # type: ignore[arg-type]
        assert info.value.codes == ["PE502"]
    refused(sealed(), key="")


def _resealed(change: Any) -> dict[str, Any]:
    """The key holder's own store wrote a broken row: the seal verifies, the row does not."""
    stored = copy.deepcopy(sealed())
    change(stored["records"])
    stored["digest"] = snap._digest(stored)
    stored["seal"] = snap._seal(KEY, stored["digest"])
    return stored


@pytest.mark.parametrize(
    "change",
    [
        # a trace row whose rule reference is out of range (today: IndexError when read)
        lambda r: r.__setitem__("trace", ["[0,\"owner\",\"C1\",null,99,{\"$t\":[\"b1\"]},{}]"]),
        lambda r: r.__setitem__("trace", ["[0,\"owner\",\"C1\",null,-1,{\"$t\":[\"b1\"]},{}]"]),
        # the instant is text, the row is short, the detail is a list
        lambda r: r.__setitem__("trace", ["[\"noon\",\"owner\",\"C1\",null,0,{\"$t\":[]},{}]"]),
        lambda r: r.__setitem__("trace", ["[0,\"owner\"]"]),
        lambda r: r.__setitem__("trace", ["[0,\"owner\",\"C1\",null,0,{\"$t\":[\"b1\"]},[]]"]),
        lambda r: r.__setitem__("obligations", ["{}"]),
        lambda r: r.__setitem__("penalties", ["[1,2,3]"]),
    ],
)
def test_broken_carried_rows_are_refused_when_resumed_not_when_read(change: Any) -> None:
    message = str(refused(_resealed(change)))
    assert "malformed snapshot" in message


@pytest.mark.parametrize("pack", ["huixiao", "customer_management", "service_system"])
def test_snapshot_bytes_do_not_depend_on_the_hash_seed(pack: str) -> None:
    """Sets are written sorted: the same history gives the same snapshot in every process."""
    script = (
        "import json, sys, hashlib, policyengine as pe\n"
        "sys.path.insert(0, 'benchmarks')\n"
        "from generate import generate\n"
        f"p = pe.load_policy('policies/{pack}')\n"
        "events = [e for e in generate(40, seed=5) if e['type'] in p.compiled.events]\n"
        f"if {pack!r} != 'huixiao':\n"
        f"    events = json.load(open('examples/{pack}.json', encoding='utf-8'))\n"
        "    events = events['events'] if isinstance(events, dict) else events\n"
        "s = json.dumps(p.evaluate(events).snapshot(), ensure_ascii=False)\n"
        "print(hashlib.sha256(s.encode()).hexdigest())\n"
    )
    digests = set()
    for seed in ("0", "1", "12345"):
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(done.stdout.strip())
    assert len(digests) == 1
