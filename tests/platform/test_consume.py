"""``spywall platform consume`` against the real NATS JetStream server (127.0.0.1:4222, or
``SPYWALL_TEST_NATS``), on SQLite and PostgreSQL. Each test has a stream of its own,
deleted afterwards; the tests skip with a reason when no server answers.

Checked: duplicates stored once, malformed messages terminated and counted with their
reason while the rest go on, nothing left unacknowledged, nothing delivered twice to the
next run; and a consumer that dies after the commit but before acknowledging gets the
messages again after ``ack_wait`` and stores nothing twice."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from api_support import REGISTRY, connected, registered

from spywall.platform import db, service
from spywall.platform.consume import consume

NATS = os.environ.get("SPYWALL_TEST_NATS", "nats://127.0.0.1:4222")


def _nats_answers() -> bool:
    where = urlsplit(NATS)
    try:
        with socket.create_connection((where.hostname or "127.0.0.1", where.port or 4222),
                                      timeout=3) as s:
            return s.recv(4).startswith(b"INFO")
    except OSError:
        return False


async def _js(action: Any) -> Any:
    import nats

    nc = await nats.connect(NATS, connect_timeout=5, allow_reconnect=False)
    try:
        return await action(nc.jetstream())
    finally:
        await nc.close()


def run_js(action: Any) -> Any:
    return asyncio.run(_js(action))


@pytest.fixture
def stream() -> Iterator[tuple[str, str]]:
    if not _nats_answers():
        pytest.skip(f"no NATS server answers at {NATS}")
    name = f"SPYWALL_TEST_{uuid.uuid4().hex[:12].upper()}"
    subject = f"spywall.test.{name.lower()}.events"
    run_js(lambda js: js.add_stream(name=name, subjects=[subject]))
    try:
        yield name, subject
    finally:
        run_js(lambda js: js.delete_stream(name))


def publish(subject: str, payloads: list[bytes]) -> None:
    async def send(js: Any) -> None:
        for data in payloads:
            await js.publish(subject, data)

    run_js(send)


def consumer_state(name: str, durable: str) -> tuple[int, int]:
    """(messages not yet delivered, delivered but not acknowledged)."""
    info = run_js(lambda js: js.consumer_info(name, durable))
    return info.num_pending, info.num_ack_pending


def stored(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(db.events.c.id)).scalars())


MALFORMED: list[tuple[bytes, str]] = [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "not a JSON object"),
    (json.dumps({"id": "x1", "type": "call.ended", "ts": "2026-03-01T10:00:00Z"}).encode(),
     "call: missing"),
    (json.dumps({**connected("x2", "u"), "ts": "soon"}).encode(), "ts"),
    (b'{"id": "x3", "type": "\xff"}', "JSON"),
]


def test_consume_stores_each_event_once(db_url: str, stream: tuple[str, str]) -> None:
    name, subject = stream
    engine = service.open_db(db_url)
    service.import_file(engine, json.dumps(REGISTRY).encode(), "test", "fixture")
    valid = [connected(f"n{i}", f"user-{i % 5}") for i in range(30)]
    valid.append(registered("n-barred", "vendor-phone", ip="203.0.113.8"))
    payloads = [json.dumps(e).encode() for e in valid]
    payloads += payloads[:10]                          # re-sent: duplicates by id
    for i, (bad, _) in enumerate(MALFORMED):
        payloads.insert(3 + 7 * i, bad)
    publish(subject, payloads)
    logs: list[str] = []
    result = consume(engine, NATS, name, None, "spywall-test", None, 1.5, logs.append,
                     batch=16)
    assert (result.accepted, result.duplicates, result.refused) == (31, 10, 5)
    assert result.violations >= 1
    assert result.denied == 1
    positions = sorted(3 + 7 * i for i in range(len(MALFORMED)))
    assert [r.line for r in result.refusals] == [p + 1 for p in positions]   # stream seqs
    for refusal, (_, words) in zip(result.refusals, MALFORMED, strict=True):
        assert words in refusal.reason
    assert len(logs) == 5
    ids = stored(engine)
    assert sorted(ids) == sorted(e["id"] for e in valid)
    assert consumer_state(name, "spywall-test") == (0, 0)   # all acknowledged or ended
    again = consume(engine, NATS, name, None, "spywall-test", None, 1.0, logs.append)
    assert (again.accepted, again.duplicates, again.refused) == (0, 0, 0)
    engine.dispose()


class Crash(Exception):
    """The consumer dies between the commit and the acknowledgement."""


def test_redelivery_after_dying_before_the_ack(db_url: str, stream: tuple[str, str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from nats.aio.msg import Msg

    name, subject = stream
    engine = service.open_db(db_url)
    events = [connected(f"r{i}", f"user-{i}") for i in range(20)]
    publish(subject, [json.dumps(e).encode() for e in events])

    async def die(self: Msg) -> None:
        raise Crash

    monkeypatch.setattr(Msg, "ack", die)
    with pytest.raises(Crash):
        consume(engine, NATS, name, subject, "crashy", None, 5.0, print, batch=50,
                ack_wait=1.0)
    assert sorted(stored(engine)) == sorted(e["id"] for e in events)   # committed
    monkeypatch.undo()
    assert consumer_state(name, "crashy")[1] == 20      # delivered, never acknowledged
    result = consume(engine, NATS, name, subject, "crashy", None, 3.0, print, batch=50,
                     ack_wait=1.0)
    assert (result.accepted, result.duplicates) == (0, 20)   # came back, known by id
    ids = stored(engine)
    assert len(ids) == len(set(ids)) == 20
    assert consumer_state(name, "crashy") == (0, 0)
    engine.dispose()


def test_the_command_line(db_url: str, stream: tuple[str, str], tmp_path: Path) -> None:
    from spywall.cli import main

    name, subject = stream
    publish(subject, [json.dumps(connected("c1", "carol")).encode(), b"oops",
                      json.dumps(connected("c2", "BARRED", ip="203.0.113.9")).encode()])
    engine = service.open_db(db_url)
    service.import_file(engine, json.dumps(REGISTRY).encode(), "test", "fixture")
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["platform", "consume", "--db", db_url, "--nats", NATS, "--stream",
                     name, "--idle-exit", "1", "-f", "json", "-q"])
    assert code == 1                      # a violation among the events
    report = json.loads(out.getvalue())
    assert (report["accepted"], report["refused"], report["violations"]) == (2, 1, 1)
    with redirect_stdout(io.StringIO()):
        missing = main(["platform", "consume", "--db", db_url, "--nats", NATS, "--stream",
                        name + "_NONE", "--idle-exit", "1", "-q"])
    assert missing == 2
    engine.dispose()


def test_a_slow_batch_is_not_delivered_twice(db_url: str, stream: tuple[str, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """While a batch takes three ack_waits to store, a second consumer on the same
    durable (a second process, scaled out) asks for messages and gets none of it."""
    import time

    from spywall.platform.intake import Intake

    name, subject = stream
    engine = service.open_db(db_url)
    publish(subject, [json.dumps(connected(f"s{i}", f"user-{i}")).encode()
                      for i in range(10)])
    submit = Intake.submit
    stolen: list[int] = []

    async def other_consumer(js: Any) -> int:
        from nats.errors import TimeoutError as FetchTimeout

        sub = await js.pull_subscribe_bind(durable="slow", stream=name)
        try:
            return len(await sub.fetch(50, timeout=1.5))
        except (FetchTimeout, TimeoutError):
            return 0

    def slow(self: Intake, events: Any, source: str | None = None) -> Any:
        time.sleep(2.0)                 # past ack_wait: without "in progress", redelivered
        stolen.append(run_js(other_consumer))
        return submit(self, events, source)

    monkeypatch.setattr(Intake, "submit", slow)
    result = consume(engine, NATS, name, subject, "slow", None, 3.0, print, batch=50,
                     ack_wait=1.0)
    assert stolen == [0]
    assert (result.accepted, result.duplicates) == (10, 0)
    assert consumer_state(name, "slow") == (0, 0)
    engine.dispose()
