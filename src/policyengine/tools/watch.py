"""`policyengine test --watch`: run again whenever a policy, scenario or history file changes.

Polling file stamps (modification time and size) instead of an OS notification API keeps it
dependency-free and identical on Linux, macOS and Windows, and a pack is a few dozen files, so
a poll every half second costs nothing. What is watched is the folder of each scenario file's
pack too: editing the policy a scenario runs against must re-run it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

WATCHED = frozenset({".yaml", ".yml", ".json", ".jsonl", ".csv", ".xlsx"})
MAX_FILES = 10_000  # a watch on / by mistake stays bounded

Stamp = tuple[tuple[str, int, int], ...]


def roots(paths: Iterable[str | Path]) -> list[Path]:
    """The folders and files to watch: a scenario file brings its pack's folder along."""
    out: list[Path] = []
    for p in map(Path, paths):
        out.append(p)
        if p.is_file() and p.parent.name == "tests":
            out.append(p.parent.parent)
    return out


def stamp(paths: Iterable[Path]) -> Stamp:
    """What changes when a watched file is written, created or removed."""
    seen: dict[str, tuple[int, int]] = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
        for f in files:
            if len(seen) >= MAX_FILES:
                break
            if f.suffix.lower() in WATCHED and f.is_file():
                try:
                    st = f.stat()
                except OSError:  # removed between the walk and the stat: the next poll sees it
                    continue
                seen[str(f)] = (st.st_mtime_ns, st.st_size)
    return tuple((name, *seen[name]) for name in sorted(seen))


def watch(
    paths: Iterable[str | Path],
    run: Callable[[], int],
    *,
    interval: float = 0.5,
    runs: int | None = None,
    out: TextIO | None = None,
) -> int:
    """Run, then re-run on every change until interrupted (or ``runs`` runs); the last exit code."""
    stream = out or sys.stdout
    watched = roots(paths)
    last = stamp(watched)
    done = 0
    code = run()
    done += 1
    try:
        while runs is None or done < runs:
            print(f"-- watching {len(last)} files; Ctrl-C to stop", file=stream, flush=True)
            while (now := stamp(watched)) == last:
                time.sleep(interval)
            changed = sorted({n for n, *_ in set(now) ^ set(last)})
            last = now
            print(f"-- changed: {', '.join(changed[:5])}", file=stream, flush=True)
            code = run()
            done += 1
    except KeyboardInterrupt:
        print("", file=stream)
    return code
