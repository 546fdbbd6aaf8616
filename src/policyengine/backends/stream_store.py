"""What a stream keeps to its end, in memory that does not grow with the penalties: the ids
read (a compact hash table, 16 bytes a slot) and the final line's rows (a temporary SQLite
file, sorted there).

A million customers give millions of ladder offences and counter increments; holding each
as Python objects cost about 2.7 KB apiece, so the final line, not the groups, set the
stream's memory. Here each row goes to disk as written by the group that saw it, with a
byte key that sorts as the row's place in the single-process order (``sort_key``), and the
final line reads them back in that order: numbered a party at a time, then served in chunks
as a ``Sequence`` the decision's writer slices."""

from __future__ import annotations

import pickle
import sqlite3
import tempfile
import weakref
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, overload

from policyengine.backends.parallel.merger import Increment, Offence, number_offences

__all__ = ["FinalRows", "IdTable", "sort_key"]

_EMPTY: Final = 0


class IdTable:
    """64-bit id digests -> a 64-bit value, open addressing over two ``array('Q')``: 16 bytes
    a slot at most three quarters full (a few probes a lookup), where a ``dict`` of ints took
    about 110 bytes an id. Half full, 18 million ids took 1 GiB (and 1.5 GiB while growing);
    three quarters, 512 MiB."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self._keys = array("Q", bytes(8 * capacity))
        self._values = array("Q", bytes(8 * capacity))
        self._mask = capacity - 1
        self.size = 0

    def setdefault(self, key: int, value: int) -> int:
        """The value held for ``key``, after storing ``value`` if there was none."""
        key = key or 1  # 0 marks an empty slot: the one digest it would be shares 1's slot
        keys = self._keys
        i = key & self._mask
        while True:
            k = keys[i]
            if k == key:
                return self._values[i]
            if k == _EMPTY:
                break
            i = (i + 1) & self._mask
        keys[i] = key
        self._values[i] = value
        self.size += 1
        if 4 * self.size > 3 * self._mask:
            self._grow()
        return value

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        capacity = 2 * len(old_keys)
        self._keys = keys = array("Q", bytes(8 * capacity))
        self._values = values = array("Q", bytes(8 * capacity))
        self._mask = mask = capacity - 1
        for k, v in zip(old_keys, old_values, strict=True):
            if k != _EMPTY:
                i = k & mask
                while keys[i] != _EMPTY:
                    i = (i + 1) & mask
                keys[i] = k
                values[i] = v

    @property
    def nbytes(self) -> int:
        return 2 * 8 * len(self._keys)


def sort_key(value: Any) -> bytes:
    """Bytes that compare as ``value`` compares, for the tuples of ints, texts and None that
    place a step: tuples end in 0x00 (a prefix sorts first), texts escape their 0x00."""
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _encode(value: Any, out: bytearray) -> None:
    if value is None:
        out.append(0x01)
    elif isinstance(value, int):  # bool too, as Python compares it
        out.append(0x02)
        out += (value + (1 << 63)).to_bytes(8, "big")
    elif isinstance(value, str):
        out.append(0x03)
        out += value.encode("utf-8").replace(b"\x00", b"\x00\xff")
        out.append(0x00)
    elif isinstance(value, tuple):
        out.append(0x05)
        for v in value:
            _encode(v, out)
        out.append(0x00)
    else:  # pragma: no cover - positions hold only these
        raise TypeError(f"a step's place holds {type(value).__name__}")


class FinalRows:
    """The final line's offences and increments, on disk until the end of the stream."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="policyengine-stream-")
        self._db = sqlite3.connect(Path(self._dir.name) / "final.sqlite")
        # the final decision reads its penalties from here after the stream has ended: the
        # file goes when the last reader does
        weakref.finalize(self, _close, self._db, self._dir)
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-16384;"
            "CREATE TABLE offence (party BLOB, place BLOB, row BLOB);"
            "CREATE TABLE increment (place BLOB, row BLOB);"
            "CREATE TABLE numbered (n INTEGER PRIMARY KEY, row BLOB);"
        )
        self.offences = 0
        self.increments = 0

    def add_offences(self, offences: Sequence[Offence]) -> None:
        # the rows are this process's own, read back only by it: pickle is their file format
        self._db.executemany(
            "INSERT INTO offence VALUES (?, ?, ?)",
            (
                (sort_key(rec.key), sort_key(place), pickle.dumps((rec, pens[rec.row]), 5))
                for place, rec, pens, _ in offences
            ),
        )
        self.offences += len(offences)

    def add_increments(self, adds: Sequence[Increment]) -> None:
        self._db.executemany(
            "INSERT INTO increment VALUES (?, ?)",
            ((sort_key(x[0]), pickle.dumps(x, 5)) for x in adds),
        )
        self.increments += len(adds)

    def number(self, sink: list[Any]) -> None:
        """Each party's offences numbered (``number_offences``, a party at a time), then kept
        in the single-process order for ``penalties``."""
        self._db.execute("CREATE TEMP TABLE placed (place BLOB, row BLOB)")
        rows = self._db.execute("SELECT party, place, row FROM offence ORDER BY party, place")
        party: bytes | None = None
        batch: list[Offence] = []

        def flush() -> None:
            number_offences(batch)
            self._db.executemany(
                "INSERT INTO placed VALUES (?, ?)",
                ((o[0], pickle.dumps(o[2][0], 5)) for o in batch),
            )
            batch.clear()

        for p, place, blob in rows:
            if p != party and batch:
                flush()
            party = p
            rec, pen = pickle.loads(blob)
            batch.append((place, rec, [pen], sink))
        if batch:
            flush()
        self._db.execute("INSERT INTO numbered (row) SELECT row FROM placed ORDER BY place")
        self._db.execute("DROP TABLE placed")
        self._db.execute("DELETE FROM offence")

    def increments_in_order(self) -> Iterator[Increment]:
        for (blob,) in self._db.execute("SELECT row FROM increment ORDER BY place"):
            yield pickle.loads(blob)

    def penalties(self) -> _Penalties:
        return _Penalties(self)


def _close(db: sqlite3.Connection, where: tempfile.TemporaryDirectory[str]) -> None:
    db.close()
    where.cleanup()


class _Penalties(Sequence[Any]):
    """The numbered penalties in order, read from disk as they are sliced."""

    def __init__(self, store: FinalRows) -> None:
        self._store = store
        self._n = store.offences

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            start, stop, step = i.indices(self._n)
            got = self._rows(start, stop)
            return got[::step] if step != 1 else got
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._rows(i, i + 1)[0]

    def __iter__(self) -> Iterator[Any]:
        for start in range(0, self._n, 4096):
            yield from self._rows(start, start + 4096)

    def _rows(self, start: int, stop: int) -> list[Any]:
        cur = self._store._db.execute(
            "SELECT row FROM numbered WHERE n > ? AND n <= ? ORDER BY n", (start, stop)
        )
        return [pickle.loads(blob) for (blob,) in cur]
