"""Every pack's YAML scenarios (``policies/<pack>/tests/*.yaml``) run under pytest, each as its
own test; each pack fires every rule, label, metric and award, and notices every mutation of
its duration, amount and count parameters (or its scenario files say why one survives)."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyengine import load_policy
from policyengine.tools.scenarios import (
    Case,
    PolicyCache,
    Suite,
    collect,
    coverage,
    mutate,
    run_suite,
)
from policyengine.tools.scenarios import run_scenario as run_one

POLICIES = Path(__file__).resolve().parents[1] / "policies"
SUITES = collect(POLICIES)
CACHE = PolicyCache()


def _pack(suite: Suite) -> str:
    return suite.policy_path.name


@pytest.mark.parametrize("case", [c for s in SUITES for c in s.cases], ids=lambda c: c.id)
def test_scenario(case: Case) -> None:
    result = run_one(case, CACHE)
    assert result.passed, result.report()


def test_every_pack_has_scenarios() -> None:
    packs = {p.name for p in POLICIES.iterdir() if p.is_dir()}
    assert {_pack(s) for s in SUITES} == packs


@pytest.mark.parametrize("suite", SUITES, ids=_pack)
def test_pack_rule_coverage_is_complete(suite: Suite) -> None:
    cov = coverage(load_policy(suite.policy_path), run_suite(suite, CACHE))
    assert cov.never_fired == [], cov.report()
    assert all(cov.clauses.values()), cov.report()


@pytest.mark.parametrize("suite", SUITES, ids=_pack)
def test_pack_kills_every_mutation(suite: Suite) -> None:
    survivors = [o.mutation.label for o in mutate(suite) if o.survived and o.accepted is None]
    assert survivors == [], "mutations no scenario notices: " + "; ".join(survivors)
