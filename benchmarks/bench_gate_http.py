"""The inline gate over HTTP: latency percentiles of ``POST /v1/gate`` at a fixed offered
rate (default 500 requests a second for 10 s) against a real ``spywall serve`` process on
loopback, for events without attachments. The issue's target: p99 at most 10 ms at 500
requests a second.

    python benchmarks/bench_gate_http.py [--rate 500] [--seconds 10] [--db URL]

Requests are sent on a fixed schedule (open loop: a slow answer does not slow the
sender), over several keep-alive connections; each decision is recorded by the server
like an ingested event.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from spywall.platform import auth, db
from spywall.platform.service import import_file
from spywall.platform.world import registry


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(base: str, key: str, rate: int, seconds: float) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits,
                                 timeout=10) as client:
        async def one(i: int) -> None:
            event = {"id": f"gate-{i}", "type": "call.offered",
                     "ts": "2026-03-01T10:00:00Z", "call": f"c{i}", "caller": f"u{i % 5000}",
                     "callee": f"u{(i * 7) % 5000}",
                     "ip": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"}
            start = time.perf_counter()
            answer = await client.post("/v1/gate", json=event)
            latencies.append(time.perf_counter() - start)
            answer.raise_for_status()

        tasks = []
        begin = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return latencies


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=int, default=500)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--db", default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/gate.db"
        engine = db.make_engine(url)
        db.init_schema(engine)
        import json

        import_file(engine, json.dumps(registry("ab" * 32)).encode(), "bench", "bench")
        with engine.begin() as conn:
            key = auth.create_key(conn, "bench", ["ingest"])
        engine.dispose()
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "spywall", "serve", "--db", url, "--port", str(port),
             "--media-root", tmp, "--log-level", "warning"],
            env={**os.environ, "SPYWALL_UI_SECRET": "bench-secret-of-32-characters-00"}, cwd=tmp,
            stderr=open(Path(tmp) / "server.log", "w"))  # noqa: SIM115
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(base + "/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            asyncio.run(run(base, key, 50, 1))            # warm-up
            latencies = sorted(asyncio.run(run(base, key, args.rate, args.seconds)))
        except httpx.HTTPError:
            print((Path(tmp) / "server.log").read_text()[-2000:], file=sys.stderr)
            raise
        finally:
            server.terminate()
            server.wait(timeout=30)
    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    print(f"POST /v1/gate at {args.rate}/s for {args.seconds:g} s ({len(latencies)} "
          f"requests, {Path(url).name if url.startswith('sqlite') else 'PostgreSQL'}): "
          f"p50 {pct(0.50):.1f} ms, p90 {pct(0.90):.1f} ms, p99 {pct(0.99):.1f} ms, "
          f"max {latencies[-1] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
