"""Notifications through real senders: a local HTTP receiver for the webhook (a real
server on loopback, failing on purpose first), and the file sender; statuses, retries and
the record of each step."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from spywall.platform import db
from spywall.platform.notify import (
    FileSender,
    WebhookSender,
    country_of,
    deliver,
    language_of,
    queue_notifications,
    sender_for,
)


class Receiver(HTTPServer):
    def __init__(self, fail_first: int) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.fail_first = fail_first
        self.received: list[dict[str, object]] = []


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.fail_first > 0:
            self.server.fail_first -= 1
            self.send_response(503)
        else:
            self.server.received.append(json.loads(body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(fail_first=1)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("phone", "country", "language"), [
    ("+525512340001", "MX", "es"), ("+919812340001", "IN", "hi"),
    ("+97336001001", "BH", "ar"), ("+212612340001", "MA", "ar"),
    ("+6281234500001", "ID", "id"), ("+5511912345678", "BR", "pt"),
    ("+33612340001", "FR", "fr"), ("+447700900001", "GB", "en"), (None, "??", "en"),
])
def test_language_follows_the_calling_code(phone: str | None, country: str,
                                           language: str) -> None:
    assert country_of(phone) == country
    assert language_of(phone) == language


def _queue(engine: sa.Engine, targets: list[str]) -> None:
    with engine.begin() as conn:
        db.insert_ignore(conn, db.accounts, [
            {"account": t, "phone": "+525512340001" if i % 2 else "+97336001001",
             "registered_us": 0, "registration_denied": False, "denied_party": None}
            for i, t in enumerate(targets)])
        assert queue_notifications(conn, "C-1", targets) == len(targets)
        assert queue_notifications(conn, "C-1", targets) == 0, "one per target per campaign"


def test_webhook_delivery_with_a_retry(db_url: str, receiver: Receiver) -> None:
    engine = db.make_engine(db_url)
    _queue(engine, ["t1", "t2"])
    url = f"http://127.0.0.1:{receiver.server_address[1]}/notify"
    first = deliver(engine, WebhookSender(url))
    assert first == {"sent": 1, "failed": 1}
    second = deliver(engine, WebhookSender(url))
    assert second == {"sent": 1, "failed": 0}, "the failed one is retried, the sent one not"
    assert sorted(n["target"] for n in receiver.received) == ["t1", "t2"]
    langs = {n["target"]: n["language"] for n in receiver.received}
    assert langs == {"t1": "ar", "t2": "es"}
    assert all("accessnow.org" in str(n["text"]) for n in receiver.received)
    with engine.connect() as conn:
        rows = {r.target: r for r in conn.execute(sa.select(db.notifications))}
    assert {r.status for r in rows.values()} == {"sent"}
    assert sorted(r.attempts for r in rows.values()) == [1, 2]


def test_unreachable_webhook_fails_and_stops_after_the_attempts(db_url: str) -> None:
    engine = db.make_engine(db_url)
    _queue(engine, ["t1"])
    sender = WebhookSender("http://127.0.0.1:9/closed", timeout=2)
    for _ in range(3):
        deliver(engine, sender, max_attempts=2)
    with engine.connect() as conn:
        (row,) = conn.execute(sa.select(db.notifications)).all()
    assert row.status == "failed"
    assert row.attempts == 2
    assert row.last_error


def test_file_sender(db_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(db_url)
    _queue(engine, ["t1", "t2", "t3"])
    out = tmp_path / "outbox.jsonl"
    assert deliver(engine, FileSender(out)) == {"sent": 3, "failed": 0}
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [x["target"] for x in lines] == ["t1", "t2", "t3"]
    assert isinstance(sender_for(f"file:{out}"), FileSender)
    with pytest.raises(ValueError, match="unknown sender"):
        sender_for("carrier-pigeon:x")
