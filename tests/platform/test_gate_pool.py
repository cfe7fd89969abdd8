"""The gate's payloads are scanned in supervised worker processes (``spywall.scanpool``),
on SQLite and PostgreSQL: a payload that blows a worker's memory ceiling, sticks in qpdf
past the deadline, hangs elsewhere or kills its worker is held (``attachment-incomplete``,
fail closed), the worker is replaced and the next decision is made as before, over HTTP
too, and an ingested event of that kind is stored held, not lost.

Real processes throughout. The memory case is a real input under the default start
method (the fork server); the hangs and the crash patch the engine, which reaches the
workers only through ``fork`` (``method="fork"``, as the scan workers' own tests do)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_support import children, make_api, start_server, stop
from scan_support import hostile_scan_bytes, zip_of_zeros

from spywall import engine as scan_engine
from spywall.formats.pdf import QPDF_STOPPED
from spywall.limits import Limits, MiB
from spywall.platform import auth, db, media
from spywall.platform.contract import from_mapping
from spywall.platform.intake import IngestResult, Intake, Outcome, ingest_stream
from spywall.platform.media import PLATFORM_LIMITS, PayloadScanner
from spywall.samples import pdf_jbig2
from spywall.samples.containers import png
from spywall.samples.webp import chunk, plain, riff
from spywall.workers import KILL_GRACE, hard_limit

TS = "2026-03-01T10:00:00Z"
QUICK = Limits(seconds=1)            # a stuck worker is killed after 5 s
STOPPED_AFTER = hard_limit(QUICK) + KILL_GRACE


def _inline(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "data": base64.b64encode(data).decode()}


def _by_path(folder: Path, name: str, data: bytes) -> dict[str, Any]:
    """An attachment by path (under the intake's folder), as ``ingest`` reads them."""
    (folder / name).write_bytes(data)
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "path": name}


def _message(ident: str, *attachments: dict[str, Any]) -> dict[str, Any]:
    return {"id": ident, "type": "message.sent", "ts": TS, "message": f"m-{ident}",
            "sender": "acct-a", "recipients": ["acct-b"], "ip": "192.0.2.77",
            "attachments": list(attachments)}


def _connected(ident: str) -> dict[str, Any]:
    return {"id": ident, "type": "account.connected", "ts": TS, "account": "acct-a",
            "ip": "192.0.2.10", "device": "dev-a", "client": "WA/2.26.1 iOS"}


def _webp_exploit() -> bytes:
    return riff(chunk(b"VP8L", plain()))


def _in_process(data: bytes) -> list[str]:
    """The rules the gate applied to ``data`` when it scanned in its own process (the
    oracle for every payload a worker finishes with): the scan engine called here."""
    verdict = media.scan_attachment(data, "oracle", hashlib.sha256(data).hexdigest())
    return ["attachment-exploit"] * verdict.malicious + ["attachment-incomplete"] * (
        not verdict.complete)


def _incomplete(outcome: Outcome) -> list[str]:
    """The ``why`` of each ``attachment-incomplete`` reason."""
    return [r["why"] for r in outcome.reasons if r["rule"] == "attachment-incomplete"]


def _rules(outcome: Outcome) -> list[str]:
    return [r["rule"] for r in outcome.reasons]


@pytest.fixture
def intake_of(db_url: str, tmp_path: Path) -> Iterator[Callable[[PayloadScanner], Intake]]:
    made: list[Intake] = []
    engine = db.make_engine(db_url)

    def make(scanner: PayloadScanner) -> Intake:
        intake = Intake(engine, tmp_path, scanner=scanner)
        made.append(intake)
        return intake

    yield make
    for intake in made:
        intake.close()
    engine.dispose()


def _submit(intake: Intake, *events: dict[str, Any]) -> list[Outcome]:
    return intake.submit([from_mapping(e) for e in events])


def _stored(intake: Intake) -> dict[str, str]:
    with intake.engine.connect() as conn:
        return dict(conn.execute(sa.select(db.events.c.id, db.events.c.verdict)).all())


def test_events_without_payloads_start_no_worker(
        intake_of: Callable[[PayloadScanner], Intake]) -> None:
    intake = intake_of(PayloadScanner())
    hash_only = {"sha256": "ab" * 32, "size": 10}
    outcomes = _submit(intake, _connected("c1"), _message("h1", hash_only))
    assert [o.verdict for o in outcomes] == ["allow", "allow"]
    assert intake.gate.scanner.pool.pids() == []


def test_a_payload_past_the_memory_ceiling_is_held(
        intake_of: Callable[[PayloadScanner], Intake], tmp_path: Path) -> None:
    """The default start method (the fork server) and a real input: the worker's
    allocation fails at its ceiling, the worker lives on and scans the next payload."""
    import msgspec

    limits = msgspec.structs.replace(PLATFORM_LIMITS, max_memory=256 * MiB)
    intake = intake_of(PayloadScanner(limits))
    bomb = _by_path(tmp_path, "zeros.zip", zip_of_zeros())
    held, exploit, benign, again = _submit(intake, _message("z1", bomb),
                                           _message("w1", _inline(_webp_exploit())),
                                           _message("p1", _inline(png())),
                                           _message("z2", bomb))
    assert held.verdict == "hold"
    assert _rules(held) == ["attachment-incomplete"]
    [why] = _incomplete(held)
    assert "out of memory while parsing: the memory ceiling of 256 MiB" in why
    assert exploit.verdict == "deny"
    assert _rules(exploit) == _in_process(_webp_exploit())
    assert (benign.verdict, _rules(benign)) == ("allow", _in_process(png()))
    assert again.verdict == "hold"          # an incomplete verdict is never cached
    assert os.getpid() not in intake.gate.scanner.pool.pids()
    assert _stored(intake) == {"z1": "hold", "w1": "deny", "p1": "allow", "z2": "hold"}


def test_qpdf_stuck_past_the_deadline_is_held_and_the_pdf_read_raw(
        intake_of: Callable[[PayloadScanner], Intake], monkeypatch: pytest.MonkeyPatch,
        forked: None, never_returns: Callable[..., None]) -> None:
    import pikepdf

    intake = intake_of(PayloadScanner(QUICK, method="fork"))
    clean = pdf_jbig2.pillow_pdf()
    exploit = pdf_jbig2.jbig2_pdf(pdf_jbig2.join(pdf_jbig2.forcedentry_segments()))
    monkeypatch.setattr(pikepdf, "open", never_returns)   # in the workers, forked after
    stuck_clean, stuck_exploit, webp, conn = _submit(
        intake, _message("p1", _inline(clean)), _message("p2", _inline(exploit)),
        _message("w1", _inline(_webp_exploit())), _connected("c1"))
    # killed in qpdf, read again from the raw bytes: nothing found, and held
    assert stuck_clean.verdict == "hold"
    [why] = _incomplete(stuck_clean)
    assert QPDF_STOPPED in why
    # the raw read finds the exploit qpdf kept it from: denied (and incomplete)
    assert stuck_exploit.verdict == "deny"
    assert _rules(stuck_exploit) == ["attachment-exploit", "attachment-incomplete"]
    assert webp.verdict == "deny"
    assert _rules(webp) == _in_process(_webp_exploit())
    assert conn.verdict == "allow"


def test_a_hung_or_dead_worker_is_replaced_and_its_payload_held(
        intake_of: Callable[[PayloadScanner], Intake], monkeypatch: pytest.MonkeyPatch,
        forked: None, never_returns: Callable[..., None]) -> None:
    monkeypatch.setattr(scan_engine, "scan_bytes",
                        hostile_scan_bytes(scan_engine.scan_bytes, never_returns))
    intake = intake_of(PayloadScanner(QUICK, size=1, method="fork"))
    pool = intake.gate.scanner.pool
    [first] = _submit(intake, _message("w0", _inline(_webp_exploit())))
    assert first.verdict == "deny"
    seen = pool.pids()
    stuck, after_stuck = _submit(intake, _message("s1", _inline(b"STUCK one")),
                                 _message("w1", _inline(_webp_exploit())))
    assert stuck.verdict == "hold"
    assert _incomplete(stuck) == [
        f"limit: hard time limit: its scan worker was stopped after {STOPPED_AFTER:g}s"]
    assert _rules(after_stuck) == _in_process(_webp_exploit())
    assert set(pool.pids()).isdisjoint(seen)        # the stuck one was replaced
    seen += pool.pids()
    crash, after_crash = _submit(intake, _message("x1", _inline(b"CRASH one")),
                                 _message("w2", _inline(_webp_exploit())))
    assert crash.verdict == "hold"
    assert _incomplete(crash) == [
        "limit: its scan worker died (SIGABRT): the input was not examined completely"]
    assert _rules(after_crash) == _in_process(_webp_exploit())
    assert set(pool.pids()).isdisjoint(seen)
    assert _stored(intake) == {"w0": "deny", "s1": "hold", "w1": "deny", "x1": "hold",
                               "w2": "deny"}


def test_a_stuck_capture_is_held(
        intake_of: Callable[[PayloadScanner], Intake], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, forked: None, never_returns: Callable[..., None]) -> None:
    (tmp_path / "call.pcap").write_bytes(b"not examined")
    monkeypatch.setattr(media, "inspect_capture", never_returns)
    intake = intake_of(PayloadScanner(QUICK, method="fork"))
    [held] = _submit(intake, {"id": "m1", "type": "call.media", "ts": TS, "call": "c1",
                              "capture": "call.pcap"})
    assert held.verdict == "hold"
    assert held.reasons == [{
        "rule": "attachment-incomplete", "field": "capture",
        "why": f"limit: hard time limit: its scan worker was stopped after {STOPPED_AFTER:g}s"}]


def test_ingest_stores_the_held_event(
        intake_of: Callable[[PayloadScanner], Intake], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, forked: None, never_returns: Callable[..., None]) -> None:
    """An attachment by path, from a JSON Lines file: the stuck one is held and stored
    with the others."""
    monkeypatch.setattr(scan_engine, "scan_bytes",
                        hostile_scan_bytes(scan_engine.scan_bytes, never_returns))
    lines = [_connected("c1"), _message("s1", _by_path(tmp_path, "stuck.bin", b"STUCK by path")),
             _message("w1", _inline(_webp_exploit()))]
    stream = io.BytesIO(b"".join(json.dumps(e).encode() + b"\n" for e in lines))
    intake = intake_of(PayloadScanner(QUICK, method="fork"))
    result = ingest_stream(intake, stream, IngestResult())
    assert (result.accepted, result.refused, result.held, result.denied) == (3, 0, 1, 1)
    assert _stored(intake) == {"c1": "allow", "s1": "hold", "w1": "deny"}


def test_over_http_a_stuck_payload_is_held_and_the_server_answers(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forked: None,
        never_returns: Callable[..., None]) -> None:
    monkeypatch.setattr(scan_engine, "scan_bytes",
                        hostile_scan_bytes(scan_engine.scan_bytes, never_returns))
    scanner = PayloadScanner(QUICK, method="fork")
    api = make_api(db_url, tmp_path / "media", scanner=scanner)
    try:
        gate = api.post("/v1/gate", "ingest", _message("g1", _inline(b"STUCK over http")))
        assert gate.status_code == 200
        assert gate.json()["verdict"] == "hold"
        assert [r["rule"] for r in gate.json()["reasons"]] == ["attachment-incomplete"]
        after = api.post("/v1/gate", "ingest", _message("g2", _inline(_webp_exploit())))
        assert (after.status_code, after.json()["verdict"]) == (200, "deny")
        batch = api.post("/v1/events", "ingest", [_message("e1", _inline(b"CRASH in a batch")),
                                                  _connected("e2")])
        assert batch.status_code == 200
        assert batch.json()["accepted"] == ["e1", "e2"]
        stored = api.get("/v1/events/e1", "ingest")
        assert (stored.status_code, stored.json()["verdict"]) == (200, "hold")
        scanner.close()     # the app's shut-down: a payload after it is held, not scanned
        closed = api.post("/v1/gate", "ingest", _message("g3", _inline(png())))
        assert (closed.status_code, closed.json()["verdict"]) == (200, "hold")
        assert [r["why"] for r in closed.json()["reasons"]
                if r["rule"] == "attachment-incomplete"] == [
            "limit: the scan worker pool was closed"]
    finally:
        scanner.close()
        api.engine.dispose()


def test_close_stops_the_workers(intake_of: Callable[[PayloadScanner], Intake]) -> None:
    intake = intake_of(PayloadScanner())
    [denied] = _submit(intake, _message("w1", _inline(_webp_exploit())))
    assert denied.verdict == "deny"
    [pid] = intake.gate.scanner.pool.pids()
    intake.close()
    assert intake.gate.scanner.pool.pids() == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_one_event_costs_at_most_one_worker(
        intake_of: Callable[[PayloadScanner], Intake], monkeypatch: pytest.MonkeyPatch,
        forked: None, never_returns: Callable[..., None]) -> None:
    """After a worker was lost on one attachment, the event's others are held unscanned
    (an event of 64 stuck attachments would otherwise hold the workers 64 deadlines)."""
    monkeypatch.setattr(scan_engine, "scan_bytes",
                        hostile_scan_bytes(scan_engine.scan_bytes, never_returns))
    intake = intake_of(PayloadScanner(QUICK, method="fork"))
    [held] = _submit(intake, _message("s1", _inline(b"STUCK 1"), _inline(_webp_exploit()),
                                      _inline(b"STUCK 2")))
    assert held.verdict == "hold"
    not_scanned = "limit: not scanned: attachment 0 of this event stopped its scan worker"
    assert _incomplete(held) == [
        f"limit: hard time limit: its scan worker was stopped after {STOPPED_AFTER:g}s",
        not_scanned, not_scanned]


def test_over_http_decisions_do_not_wait_for_a_payload_being_scanned(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forked: None,
        never_returns: Callable[..., None]) -> None:
    """A gate request whose attachment sticks its worker (for good: a budget of 100 s)
    while other requests, without payloads, are answered; the server's shut-down ends
    it, held."""
    import threading
    import time

    monkeypatch.setattr(scan_engine, "scan_bytes",
                        hostile_scan_bytes(scan_engine.scan_bytes, never_returns))
    scanner = PayloadScanner(Limits(seconds=100), method="fork")
    api = make_api(db_url, tmp_path / "media", scanner=scanner)
    answers: list[Any] = []
    stuck = threading.Thread(target=lambda: answers.append(
        api.post("/v1/gate", "ingest", _message("g1", _inline(b"STUCK for good")))))
    try:
        stuck.start()
        for _ in range(1200):             # until its worker has it (not a timing check)
            if scanner.pool.pids():
                break
            time.sleep(0.05)
        assert scanner.pool.pids()
        other = api.post("/v1/gate", "ingest", _connected("g2"))
        assert (other.status_code, other.json()["verdict"]) == (200, "allow")
        batch = api.post("/v1/events", "ingest", [_connected("e1")])
        assert (batch.status_code, batch.json()["accepted"]) == (200, ["e1"])
        assert stuck.is_alive()     # still scanning
        assert not answers
    finally:
        scanner.close()       # the shut-down kills the busy worker
        stuck.join()
        api.engine.dispose()
    [answer] = answers
    assert (answer.status_code, answer.json()["verdict"]) == (200, "hold")
    assert [r["why"] for r in answer.json()["reasons"]] == [
        "limit: its scan worker died (SIGKILL): the input was not examined completely"]


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        frontier = [c for p in frontier for c in children(p) if c not in found]
        found.update(frontier)
    return found


def _gone(pids: set[int]) -> bool:
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        return False
    return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_serve_holds_a_payload_past_the_memory_ceiling_and_stops_its_workers(
        db_url: str, tmp_path: Path) -> None:
    """A real ``spywall serve`` (uvicorn's threads, the fork server):
    ``--payload-max-memory`` reaches the workers, the bomb is held, the next requests are
    answered, and SIGTERM stops the server with its fork server and workers."""
    import time

    import httpx

    engine = db.make_engine(db_url)
    with engine.begin() as conn:
        key = auth.create_key(conn, "pool-test", ["ingest"])
    engine.dispose()
    media_root = tmp_path / "media"
    media_root.mkdir()
    bomb = _by_path(media_root, "zeros.zip", zip_of_zeros())
    proc, base = start_server(db_url, media_root, "--payload-max-memory", "256")
    try:
        with httpx.Client(base_url=base, timeout=300, trust_env=False,
                          headers={"Authorization": f"Bearer {key}"}) as c:
            held = c.post("/v1/gate", json=_message("z1", bomb))
            assert held.status_code == 200
            assert held.json()["verdict"] == "hold"
            [why] = [r["why"] for r in held.json()["reasons"]]
            assert "out of memory while parsing: the memory ceiling of 256 MiB" in why
            exploit = c.post("/v1/gate", json=_message("w1", _inline(_webp_exploit())))
            assert exploit.status_code == 200
            assert [r["rule"] for r in exploit.json()["reasons"]] == _in_process(
                _webp_exploit())
            plain_event = c.post("/v1/gate", json=_connected("c1"))
            assert (plain_event.status_code, plain_event.json()["verdict"]) == (200, "allow")
        under = _descendants(proc.pid)
        assert len(under) >= 2                  # the fork server and a worker
        proc.terminate()
        assert proc.wait(timeout=120) == 0        # a clean stop (serve.py)
        for _ in range(600):                    # the fork server sees its parent go
            if _gone(under):
                break
            time.sleep(0.1)
        assert _gone(under)
    finally:
        stop(proc)


def test_the_ingest_command_holds_a_payload_past_the_memory_ceiling(
        db_url: str, tmp_path: Path) -> None:
    """``spywall platform ingest --payload-max-memory``: the bomb's event is stored held,
    the others as they would be, and the command ends with its workers."""
    import subprocess
    import sys

    from api_support import SRC

    lines = [_connected("c1"), _message("z1", _by_path(tmp_path, "zeros.zip", zip_of_zeros())),
             _message("w1", _inline(_webp_exploit()))]
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in lines))
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    run = subprocess.run([sys.executable, "-m", "spywall", "platform", "ingest", str(events),
                          "--db", db_url, "--payload-max-memory", "256", "-f", "json"],
                         capture_output=True, env=env, timeout=600, check=False)
    assert run.returncode == 1, run.stderr.decode()[-2000:]       # a malicious delivery
    out = json.loads(run.stdout)
    assert (out["accepted"], out["refused"], out["held"], out["denied"]) == (3, 0, 1, 1)
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(db.events.c.id, db.events.c.reasons)).all())
    engine.dispose()
    [why] = [r["why"] for r in stored["z1"] if r["rule"] == "attachment-incomplete"]
    assert "out of memory while parsing: the memory ceiling of 256 MiB" in why
