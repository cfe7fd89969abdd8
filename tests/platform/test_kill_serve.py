"""Nothing acknowledged is lost: ``spywall serve`` runs as a real process on a free
loopback port, two clients post batches, the server is killed with SIGKILL while they
are sending, and every id that got a 200 answer must be in the database. After a
restart every batch is sent again (the ones cut off included): all are stored, each
once. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from api_support import connected, inline, message, start_server, stop

from spywall.platform import auth, db

BATCH = 40


def batch(n: int) -> list[dict[str, Any]]:
    png = inline(b"\x89PNG\r\n\x1a\n" + n.to_bytes(4, "big") * 8)   # cheap payload work
    events: list[dict[str, Any]] = [connected(f"k{n}-{i}", f"user-{n}-{i % 7}")
                                    for i in range(BATCH - 1)]
    return [*events, message(f"k{n}-m", f"user-{n}-0", [f"user-{n}-1"], [png])]


def client(key: str) -> httpx.Client:
    return httpx.Client(timeout=60, trust_env=False,
                        headers={"Authorization": f"Bearer {key}"})


class Sender(threading.Thread):
    """Posts batches start, start+step, ... until a request fails; keeps the ids of
    every 200 answer."""

    def __init__(self, base: str, key: str, start: int, step: int) -> None:
        super().__init__(daemon=True)
        self.base, self.key, self.next, self.step = base, key, start, step
        self.acknowledged: list[str] = []
        self.answers = 0
        self.sent: list[int] = []

    def run(self) -> None:
        with client(self.key) as c:
            while True:
                self.sent.append(self.next)
                try:
                    r = c.post(f"{self.base}/v1/events", json=batch(self.next))
                except httpx.TransportError:
                    return
                if r.status_code != 200:
                    return
                self.acknowledged += r.json()["accepted"]
                self.answers += 1
                self.next += self.step


def stored(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(db.events.c.id)).scalars())


def test_kill_9_loses_nothing_acknowledged(db_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(db_url)
    with engine.begin() as conn:
        key = auth.create_key(conn, "kill-test", ["ingest"])
    proc, base = start_server(db_url, tmp_path)
    try:
        senders = [Sender(base, key, start, 2) for start in (0, 1)]
        for s in senders:
            s.start()
        deadline = time.monotonic() + 300
        while sum(s.answers for s in senders) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(s.is_alive() for s in senders), "a sender stopped before the kill"
        os.kill(proc.pid, signal.SIGKILL)        # while both are sending
        for s in senders:
            s.join(timeout=120)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        stop(proc)
    acknowledged = [i for s in senders for i in s.acknowledged]
    assert len(acknowledged) >= 6 * BATCH
    after_kill = set(stored(engine))
    assert set(acknowledged) <= after_kill          # nothing acknowledged was lost
    cut_off = [s.sent[-1] for s in senders]         # in flight when the server died
    for n in cut_off:                               # a batch is stored whole or not at all
        ids = {e["id"] for e in batch(n)}
        assert ids & after_kill in (set(), ids)

    proc, base = start_server(db_url, tmp_path)
    try:
        sent = sorted({n for s in senders for n in s.sent})
        with client(key) as c:
            for n in sent:
                r = c.post(f"{base}/v1/events", json=batch(n))
                assert r.status_code == 200
                assert r.json()["accepted"] == [e["id"] for e in batch(n)]
            probe = c.get(f"{base}/v1/events/{acknowledged[0]}")
            assert probe.status_code == 200
    finally:
        stop(proc)
    ids = stored(engine)
    assert len(ids) == len(set(ids)) == len(sent) * BATCH
    engine.dispose()


def test_sigterm_and_sigint_stop_the_server_cleanly_with_status_0(
        tmp_path: Path) -> None:
    """The documented exit status of ``serve`` after a clean shut-down is 0, whichever
    stop signal an operator or a service manager sends (uvicorn re-raised the signal
    after its graceful stop: -15, or a KeyboardInterrupt traceback). An event accepted
    before the signal is stored."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    engine = db.make_engine(url)
    db.init_schema(engine)
    with engine.begin() as conn:
        key = auth.create_key(conn, "ingest", ["ingest"])
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc, base = start_server(url, tmp_path)
        try:
            with client(key) as c:
                sent = c.post(f"{base}/v1/events", json=[connected(f"s{sig}", "u1")])
                assert sent.status_code == 200
            proc.send_signal(sig)
            assert proc.wait(timeout=120) == 0
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            assert "Traceback" not in err
        finally:
            stop(proc)
    with engine.connect() as conn:
        stored = set(conn.execute(sa.select(db.events.c.id)).scalars())
    engine.dispose()
    assert stored == {f"s{signal.SIGTERM}", f"s{signal.SIGINT}"}
