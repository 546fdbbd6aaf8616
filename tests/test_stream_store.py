"""What a stream keeps to its end (``backends.stream_store``): the id table agrees with a dict,
the byte keys sort as the places they encode, and the final line's rows wait on disk, so the
memory they take does not grow with their number; read back in order, numbered per party."""

from __future__ import annotations

import itertools
import tracemalloc
from decimal import Decimal
from typing import Any, NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from policyengine.backends.parallel.merger import Offence, number_offences
from policyengine.backends.parallel.shard import LadderRecord
from policyengine.backends.stream_store import FinalRows, IdTable, sort_key
from policyengine.runtime.records import PenaltyRow


class _Sink(NamedTuple):
    detail: dict[str, Any]


U64 = st.integers(min_value=0, max_value=2**64 - 1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(U64, U64), max_size=300))
def test_id_table_agrees_with_a_dict(pairs: list[tuple[int, int]]) -> None:
    table, ref = IdTable(capacity=4), {}
    for k, v in pairs:
        # digest 0 is held as 1: the one key that differs from the dict's reading
        key = k or 1
        assert table.setdefault(k, v) == ref.setdefault(key, v)
    assert table.size == len(ref)


def test_id_table_stays_at_most_three_quarters_full() -> None:
    table = IdTable(capacity=8)
    for k in range(1, 12_288):  # fewer than 3/4 of 16,384 slots: no growth beyond them
        table.setdefault(k * 0x9E3779B97F4A7C15 % 2**64, k)
        assert table.setdefault(k * 0x9E3779B97F4A7C15 % 2**64, -1 % 2**64) == k
    assert table.size == 12_287
    assert table.nbytes == 16 * 16_384  # 16 bytes a slot, grown by doubling


# places as the merge compares them: ints, texts and nested tuples of the same shape
def _places() -> st.SearchStrategy[Any]:
    timer = st.tuples(
        st.integers(-(2**62), 2**62), st.just(0), st.tuples(st.integers(0, 9)), st.integers(0, 5)
    )
    event = st.tuples(st.integers(-(2**62), 2**62), st.just(1), st.integers(0, 2**40))
    intra = st.one_of(
        st.integers(0, 9).map(lambda i: (i,)),
        st.tuples(st.integers(0, 3), st.integers(0, 99), st.text(max_size=4), st.integers(0, 3)),
    )
    return st.one_of(
        st.tuples(st.one_of(timer, event), intra, st.integers(-1, 50), st.integers(0, 50)),
        st.tuples(st.text(max_size=6), st.text(max_size=6)),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(_places(), min_size=2, max_size=40))
def test_sort_keys_order_as_the_places(places: list[Any]) -> None:
    def cmp_ok(a: Any, b: Any) -> bool:
        try:
            _ = a < b
            return True
        except TypeError:
            return False

    comparable = [p for p in places if cmp_ok(p, places[0]) and all(cmp_ok(p, q) for q in places)]
    keyed = sorted(comparable, key=sort_key)
    assert keyed == sorted(comparable)
    for a, b in itertools.pairwise(comparable):
        assert (sort_key(a) < sort_key(b)) == (a < b)
        assert (sort_key(a) == sort_key(b)) == (a == b)


def test_text_with_nul_sorts_as_python_sorts_it() -> None:
    words = ["a", "a\x00", "a\x00b", "ab", "", "\x00", "b", "\xff", "\u4e2d"]
    assert sorted(words, key=lambda w: sort_key((w, 1))) == sorted(words)


def _row(party: str, at: int, offence: int, amount: int) -> PenaltyRow:
    return PenaltyRow(
        party=party,
        sanction="fine",
        amount_min=Decimal(amount),
        amount_max=Decimal(amount),
        currency="CNY",
        units=None,
        salary_days=None,
        offence=offence,
        subject="C1",
        at=at,
        rule=("r", ("HX-1",)),
        events=("e",),
    )


def _offence(party: str, at: int, group: int, sink: list[Any]) -> Offence:
    steps = [(_row(party, at, n, 100 * n), {"offence": n}) for n in (1, 2, 3)]
    rec = LadderRecord(
        step=0, intra=(0,), row=0, trace=0, key=("r", party), outcomes=list(steps), replicated=False
    )
    place = ((2 * at, 1, group), (0,), group, 0)
    return (place, rec, [_row(party, at, 1, 100)], sink)


def test_final_rows_number_as_in_memory_and_come_back_in_order() -> None:
    sink: list[Any] = [_Sink({})]
    offences = [
        _offence(f"E{(g * 7) % 5}", 1_000_000 * ((g * 37) % 101), g, sink) for g in range(300)
    ]
    store = FinalRows()
    for g in range(0, 300, 25):  # as groups hand them over
        store.add_offences(offences[g : g + 25])
    store.number(sink)
    got = list(store.penalties())
    reference = [(o[0], o[1], [o[2][0]], sink) for o in offences]
    number_offences(reference)
    reference.sort(key=lambda o: o[0])
    assert got == [o[2][0] for o in reference]
    # 60 offences a party; from the third on, the ladder's last step
    assert max(p.offence for p in got) == 60
    assert {p.amount_min for p in got} == {Decimal(100), Decimal(200), Decimal(300)}
    pens = store.penalties()
    assert len(pens) == 300 and pens[5] == got[5] and pens[-1] == got[-1]
    assert pens[10:20] == got[10:20] and pens[::50] == got[::50]


def test_final_rows_memory_does_not_grow_with_them() -> None:
    sink: list[Any] = [_Sink({})]

    def fill(n: int) -> int:
        store = FinalRows()
        tracemalloc.start()
        try:
            for g in range(0, n, 500):
                store.add_offences(
                    [_offence(f"E{i % 50}", 1_000_000 * i, i, sink) for i in range(g, g + 500)]
                )
            store.number(sink)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = fill(2_000), fill(20_000)
    # held in memory they took ~2.7 KB apiece: 18,000 more would be ~48 MB
    assert large - small < 2_000_000, (small, large)
