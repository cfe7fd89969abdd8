"""Intake details: events out of order, answered calls, unknown fields kept, duplicate ids
inside one batch, and a crafted call whose media arrives before its offer."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import sqlalchemy as sa

from spywall.platform import db, views
from spywall.platform.contract import from_mapping
from spywall.platform.intake import IngestResult, Intake, ingest_stream
from spywall.platform.service import run_analysis
from spywall.platform.world import _crafted_capture


def _events(capture: str) -> list[dict[str, object]]:
    return [
        {"id": "r1", "type": "account.registered", "ts": "2019-04-01T00:00:00Z",
         "account": "caller", "phone": "+447700900111", "ip": "198.51.100.1",
         "device": "rig", "client": "WIS/1 Android", "x_vendor_field": {"kept": [1, 2]}},
        {"id": "m1", "type": "call.media", "ts": "2019-05-01T10:00:02Z", "call": "c1",
         "capture": capture},
        {"id": "o1", "type": "call.offered", "ts": "2019-05-01T10:00:00Z", "call": "c1",
         "caller": "caller", "callee": "victim", "ip": "198.51.100.1"},
        {"id": "o2", "type": "call.offered", "ts": "2019-05-01T11:00:00Z", "call": "c2",
         "caller": "caller", "callee": "friend", "ip": "198.51.100.1"},
        {"id": "a2", "type": "call.answered", "ts": "2019-05-01T11:00:04Z", "call": "c2"},
    ]


def test_media_before_its_offer_still_makes_a_malicious_delivery(db_url: str,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "crafted.pcap").write_bytes(_crafted_capture())
    engine = db.make_engine(db_url)
    intake = Intake(engine, tmp_path)
    events = [from_mapping(e) for e in _events("crafted.pcap")]
    for ev in events:                       # one event a batch: the worst case
        intake.submit([ev])
    run_analysis(engine)
    with engine.connect() as conn:
        (campaign,) = views.campaigns(conn)["campaigns"]
        deliveries = {r.ref: r for r in conn.execute(sa.select(db.deliveries))}
        pending = conn.execute(sa.select(db.pending_media)).all()
        stored = views.event(conn, "r1")
    assert campaign["actors"] == ["caller"]
    assert campaign["targets"] == ["victim"], "the answered clean call is no delivery of it"
    assert deliveries["c1"].malicious
    assert "m1" in deliveries["c1"].evidence
    assert deliveries["c2"].answered
    assert not deliveries["c2"].malicious
    assert pending == []
    assert stored is not None
    assert stored["x_vendor_field"] == {"kept": [1, 2]}, "unknown fields are kept"
    assert stored["verdict"] == "allow"


def test_a_duplicate_id_in_one_batch_is_one_event(db_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(db_url)
    lines = [json.dumps(e) for e in _events("missing.pcap")[:1]] * 3
    path = tmp_path / "dup.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = IngestResult()
    with path.open("rb") as fh:
        ingest_stream(Intake(engine, tmp_path), fh, result)
    assert (result.accepted, result.duplicates) == (1, 2)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.events)).scalar() == 1
        raw = conn.execute(sa.select(db.events.c.raw)).scalar_one()
    assert msgspec.json.decode(raw) == json.loads(lines[0])


def test_an_unreadable_capture_is_held_never_allowed(db_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(db_url)
    fifo = tmp_path / "fifo.pcap"
    import os

    os.mkfifo(fifo)
    outcome = Intake(engine, tmp_path).submit([from_mapping(
        {"id": "m9", "type": "call.media", "ts": "2020-01-01T00:00:00Z", "call": "c9",
         "capture": "fifo.pcap"})])[0]
    assert outcome.verdict == "hold"
    assert outcome.reasons[0]["rule"] == "attachment-incomplete"


def test_a_batch_sent_again_gets_the_stored_outcomes_as_duplicates(db_url: str) -> None:
    """The duplicate check of a batch (many ids at once) reads back each stored event's
    verdict, reasons and party: the same as the gate gave the first time."""
    from spywall.platform.registry import load_json
    from spywall.platform.registry_store import import_registry
    from spywall.platform.world import VENDOR_SERVER, registry

    engine = db.make_engine(db_url)
    with engine.begin() as conn:
        import_registry(conn, load_json(json.dumps(registry("ab" * 32)).encode()), "t", "t")
    denied, clean = _events("missing.pcap")[0], _events("missing.pcap")[3]
    denied = {**denied, "ip": VENDOR_SERVER}
    batch = [from_mapping(e) for e in (denied, clean)] + [
        from_mapping({**clean, "id": f"o-{i}", "call": f"c-{i}"}) for i in range(1000)]
    first = Intake(engine).submit(batch)
    again = Intake(engine).submit(batch)
    assert first[0].verdict == "deny"
    assert first[0].reasons
    assert first[0].party
    assert not any(o.duplicate for o in first)
    assert all(o.duplicate for o in again)
    assert [(o.id, o.verdict, o.reasons, o.party) for o in again] == \
        [(o.id, o.verdict, o.reasons, o.party) for o in first]
