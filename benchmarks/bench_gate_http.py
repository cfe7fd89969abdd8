"""The inline gate over HTTP: latency percentiles of ``POST /v1/gate`` at a fixed offered
rate (default 500 requests a second for 10 s) against a real ``spywall serve`` process on
loopback, for events without attachments. The issue's target: p99 at most 10 ms at 500
requests a second.

    python benchmarks/bench_gate_http.py [--rate 500] [--seconds 10] [--db URL]

Requests are sent on a fixed schedule (open loop: a slow answer does not slow the
sender), over several keep-alive connections; each decision is recorded by the server
like an ingested event. On Linux it also prints the server's CPU time per request
(user + system, from ``/proc``, over the measured run): on a shared machine that figure
moves less than the latencies do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (None where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Connection:
    """One keep-alive HTTP/1.1 connection, written with asyncio streams: the load
    generator shares the two cores with the server, so it must cost little per request
    (httpx cost about as much CPU per request as the server)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, head: bytes, body: bytes) -> int:
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])


async def run(port: int, key: str, rate: int, seconds: float) -> tuple[list[float], int]:
    """Open loop: request i is sent at ``i / rate`` on a free connection (a new one when
    all are busy), whatever the answers before it took. Returns the latencies and the
    number of requests not answered 200 (other statuses, closed connections)."""
    head = (f"POST /v1/gate HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nContent-Length: ").encode()
    idle: list[tuple[float, Connection]] = []    # (last used, connection), newest last
    latencies: list[float] = []
    failed = 0

    async def one(i: int) -> None:
        nonlocal failed
        body = json.dumps({
            "id": f"gate-{rate}-{i}", "type": "call.offered", "ts": "2026-03-01T10:00:00Z",
            "call": f"c{rate}-{i}", "caller": f"u{i % 5000}", "callee": f"u{(i * 7) % 5000}",
            "ip": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"}).encode()
        start = time.perf_counter()
        while idle and idle[0][0] < start - 4:   # uvicorn closes a connection idle for 5 s
            idle.pop(0)[1].writer.close()
        conn = idle.pop()[1] if idle else Connection(*await asyncio.open_connection(
            "127.0.0.1", port))
        try:
            status = await conn.post(head, body)
        except OSError:                 # closed or reset: counted, the connection dropped
            failed += 1
            conn.writer.close()
            return
        latencies.append(time.perf_counter() - start)
        failed += status != 200
        idle.append((time.perf_counter(), conn))

    tasks = []
    begin = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    for _, conn in idle:
        conn.writer.close()
    return latencies, failed


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
            asyncio.run(run(port, key, 50, 1))            # warm-up
            before = cpu_seconds(server.pid)
            latencies, failed = asyncio.run(run(port, key, args.rate, args.seconds))
            after = cpu_seconds(server.pid)
            latencies.sort()
        except (httpx.HTTPError, OSError):
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
          f"max {latencies[-1] * 1000:.1f} ms; {failed} answer(s) not 200")
    if before is not None and after is not None:
        print(f"server CPU time: {(after - before) / len(latencies) * 1000:.2f} ms a request")


if __name__ == "__main__":
    main()
