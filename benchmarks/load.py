"""Load test of ``policyengine serve``: N clients post a customer history for D seconds.

    .venv/bin/python benchmarks/load.py [--clients 8] [--duration 10] [--workers 1]

Starts the real server (``python -m policyengine serve policies/huixiao``) on 127.0.0.1 and a
free port, waits for ``/healthz``, then runs ``clients`` threads, each with one keep-alive
``http.client`` connection posting ``examples/huixiao_march.json`` (24 events, 5 customers) to
``/v1/evaluate``. Prints requests per second, p50 and p99 latency and the errors (any answer
but 200). ``requests=`` (instead of a duration) bounds the run: tests/test_service.py uses it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HISTORY = ROOT / "examples" / "huixiao_march.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Running:
    """A started server: its base URL and process."""

    def __init__(self, url: str, proc: subprocess.Popen[str]) -> None:
        self.url = url
        self.proc = proc


@contextmanager
def server(
    *args: str, port: int | None = None, wait: float = 30.0, stderr: Path | None = None
) -> Iterator[Running]:
    """``policyengine serve ARGS`` as a subprocess on 127.0.0.1 (its standard error to the
    file ``stderr``, or dropped)."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "policyengine", "serve", *args, "--port", str(port)]
    err = open(stderr, "w", encoding="utf-8") if stderr else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {' '.join(cmd)}") from None
                time.sleep(0.1)
        yield Running(url, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if stderr:
            err.close()  # type: ignore[union-attr]


def load(
    url: str,
    clients: int = 8,
    duration: float | None = 10.0,
    requests: int | None = None,
    body: bytes | None = None,
) -> dict[str, Any]:
    """Post ``body`` to ``url``/v1/evaluate from ``clients`` threads, for ``duration`` seconds
    or ``requests`` requests in all; the figures."""
    body = body or json.dumps({"events": json.loads(HISTORY.read_text("utf-8"))}).encode()
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    left = [requests]
    stop = time.monotonic() + duration if duration is not None else float("inf")

    def take() -> bool:
        with lock:
            if left[0] is None:
                return time.monotonic() < stop
            if left[0] <= 0:
                return False
            left[0] -= 1
            return True

    def client() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {"Content-Type": "application/json"}
        while take():
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/evaluate", body, headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
                msg = f"HTTP {resp.status}"
            except (OSError, http.client.HTTPException) as exc:
                ok, msg = False, repr(exc)
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                if not ok:
                    errors.append(msg)
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    lat = sorted(latencies)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

    return {
        "requests": len(lat),
        "seconds": round(elapsed, 3),
        "rps": round(len(lat) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(pct(0.50), 2),
        "p99_ms": round(pct(0.99), 2),
        "errors": len(errors),
        "error_samples": errors[:5],
        "clients": clients,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--policy", default="policies/huixiao")
    args = ap.parse_args()
    with server(args.policy, "--workers", str(args.workers)) as running:
        stats = load(running.url, clients=args.clients, duration=args.duration)
    print(
        f"{stats['requests']} requests in {stats['seconds']} s from {args.clients} clients, "
        f"{args.workers} worker(s), {os.cpu_count()} CPUs: {stats['rps']} requests/s, "
        f"p50 {stats['p50_ms']} ms, p99 {stats['p99_ms']} ms, errors {stats['errors']}"
    )
    return 1 if stats["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
