"""``evaluate_dask`` on a real two-process Dask cluster: a DataFrame read from Parquet, a Bag,
and a history whose referral pair and ladder offences are placed in different partitions on
purpose. Each decision is compared with ``Policy.evaluate`` in this process."""

from __future__ import annotations

import builtins
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe
from policyengine import distributed
from policyengine.backends.parallel.dask_cluster import evaluate_dask, run_dask

dd = pytest.importorskip("dask.dataframe")  # the dev extra installs it: never skipped in CI
db = pytest.importorskip("dask.bag")
pd = pytest.importorskip("pandas")
distributed_mod = pytest.importorskip("distributed")

ROOT = Path(__file__).parents[1]
PACKS = ROOT / "policies"
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(Path(__file__).parent))

from generate import generate  # noqa: E402

from test_distributed import assert_same, ev, fillers, owned, t  # noqa: E402

Event = dict[str, Any]
BOOLS = ("venue", "approved", "signed_by_customer", "stamped", "dated", "severe")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = distributed_mod.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with distributed_mod.Client(cluster) as c:
        yield c
    cluster.close()


def frame(events: list[Event]) -> Any:
    """One row per event: list fields go to the JSON column `extra`; yes/no and counts get
    nullable dtypes (a column with gaps would otherwise be text or float)."""
    rows = []
    for e in events:
        row = {k: v for k, v in e.items() if not isinstance(v, list)}
        lists = {k: v for k, v in e.items() if isinstance(v, list)}
        row["extra"] = json.dumps(lists) if lists else None
        rows.append(row)
    df = pd.DataFrame(rows)
    for column in BOOLS:
        if column in df:
            df[column] = df[column].astype("boolean")
    if "boxes" in df:
        df["boxes"] = df["boxes"].astype("Int64")
    return df


def test_parquet_frame_of_generated_history(client: Any, tmp_path: Path) -> None:
    events = generate(300, seed=7)
    frame(events).to_parquet(tmp_path / "events.parquet")
    ddf = dd.read_parquet(tmp_path / "events.parquet").repartition(npartitions=4)
    policy = pe.load_policy(PACKS / "huixiao" / "resources.yaml")
    run = run_dask(policy, ddf, client=client)
    assert run.report.mode == "dask" and run.report.shards == 2
    assert_same(policy.evaluate(events), run.decision)


def test_bag_of_generated_history_for_the_whole_set(client: Any) -> None:
    events = generate(200, seed=8)
    policy = pe.load_policy(PACKS / "huixiao")
    as_of = "2026-06-15T00:00:00+08:00"
    decision = distributed.evaluate_dask(  # the entry point without importing Dask first
        PACKS / "huixiao", db.from_sequence(events, npartitions=3), as_of, client=client
    )
    assert_same(policy.evaluate(events, as_of), decision)


def test_referral_and_ladder_in_different_partitions(client: Any) -> None:
    """The referral pair lands together; zhang's two unreported customers land in different
    partitions (they are the two largest components, packed first onto different shards), and
    the offences are still numbered 1 (fine) and 2 (dismissal)."""
    visits = [
        ev(f"{c}{i}", "phone_visit", t("03-0" + str(3 + i)), customer=c, employee="zhang")
        for c in ("X", "Y")
        for i in range(4)
    ]
    events = [
        ev("x1", "registered", t("03-02"), customer="X", employee="zhang", channel="list_call"),
        ev("y1", "registered", t("03-03"), customer="Y", employee="zhang", channel="list_call"),
        *visits,
        *owned("a", "A", "li", "03-02"),
        ev(
            "b1",
            "registered",
            t("03-05"),
            customer="B",
            employee="wang",
            channel="referral",
            referred_by="A",
        ),
        *fillers(2),
    ]
    policy = pe.load_policy(PACKS / "huixiao" / "resources.yaml")
    run = run_dask(policy, dd.from_pandas(frame(events), npartitions=3), client=client)
    placed = run.report.placed
    assert placed["X"] != placed["Y"]
    assert placed["A"] == placed["B"]
    assert run.report.shards == 2
    assert_same(policy.evaluate(events), run.decision)
    assert run.decision.owner("B") == "li"
    assert sorted(
        (p.offence, p.sanction) for p in run.decision.penalties if p.party == "zhang"
    ) == [(1, "fine"), (2, "dismissal")]


def test_bad_event_raises_what_one_process_raises(client: Any) -> None:
    events = [*fillers(3), ev("bad", "preheated", t("03-05"), customer="Q")]
    policy = pe.load_policy(PACKS / "huixiao" / "resources.yaml")
    with pytest.raises(pe.EventError) as single:
        policy.evaluate(events)
    with pytest.raises(pe.EventError) as many:
        evaluate_dask(policy, db.from_sequence(events, npartitions=2), client=client)
    assert str(many.value) == str(single.value)


def test_without_dask_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from policyengine.backends.parallel import dask_cluster as dask_runner

    real = builtins.__import__

    def no_dask(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "dask" or name.startswith("dask."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(ImportError, match=r"pip install 'policyengine\[dask\]'"):
        dask_runner._dask()
