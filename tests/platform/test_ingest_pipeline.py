"""The pipelined ingest (gate here, store in a writer process) stores exactly what the
one-process ingest stores, on both databases: the 2019 world (crafted media, denials,
violations) among background events, duplicate ids inside a batch, across batches still
in flight and against stored events; and when another process stores some of a batch's
events between the look-up and the write, the batches are stored again in process with
nothing lost and nothing counted twice."""

from __future__ import annotations

import io
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from api_support import children

from spywall.platform import db
from spywall.platform.intake import IngestResult, Intake, ingest_stream
from spywall.platform.pipeline import Pipeline
from spywall.platform.service import import_file
from spywall.platform.world import background_stream, generate

BATCH = 40
SRC = Path(__file__).resolve().parents[2] / "src"

# Per table: the columns compared (received/recorded times differ by nature).
TABLES = {
    "events": ["id", "type", "ts_us", "account", "ref", "ip", "sha256", "raw", "verdict",
               "reasons", "party", "source"],
    "accounts": None, "account_links": None, "deliveries": None, "delivery_payloads": None,
    "payloads": None, "pending_media": None,
    "violations": ["event", "party", "type", "ts_us", "verdict", "identifiers", "rule",
                   "orders"],
}


def _lines(world: Path) -> list[bytes]:
    """The world's events shuffled among background events, with repeats: right after
    the original (same batch), a batch later (in flight), and much later (stored)."""
    rng = random.Random(5)
    world_lines = (world / "events.jsonl").read_bytes().splitlines(keepends=True)
    lines = list(background_stream(600, seed=3)) + world_lines
    rng.shuffle(lines)
    lines.insert(10, lines[9])
    lines.insert(BATCH * 3 + 5, lines[BATCH * 2 + 1])
    lines += [*lines[:7], b"not json\n", b'{"id": "x", "type": "nope"}\n']
    return lines


def _snapshot(url: str) -> dict[str, Any]:
    engine = db.make_engine(url)
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for name, columns in TABLES.items():
            table = db.metadata.tables[name]
            cols = [table.c[c] for c in columns] if columns else list(table.c)
            rows = [tuple(_plain(v) for v in r) for r in conn.execute(sa.select(*cols))]
            out[name] = sorted(rows, key=repr)
        out["log"] = conn.execute(sa.select(sa.func.count()).select_from(
            db.metadata.tables["log_entries"])).scalar()
    engine.dispose()
    return out


def _plain(value: Any) -> Any:
    return msgspec.json.encode(value).decode() if isinstance(value, list | dict) else value


def _ingest(url: str, world: Path, lines: list[bytes], pipeline: bool,
            preload: Sequence[bytes] = ()) -> IngestResult:
    engine = db.make_engine(url)
    import_file(engine, (world / "registry.json").read_bytes(), "test", "test")
    if preload:
        ingest_stream(Intake(engine, world), io.BytesIO(b"".join(preload)), IngestResult())
    result = IngestResult()
    ingest_stream(Intake(engine, world), io.BytesIO(b"".join(lines)), result, batch=BATCH,
                  pipeline=pipeline)
    engine.dispose()
    return result


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("world")
    generate(folder, background_users=20)
    return folder


def test_pipelined_ingest_stores_what_the_serial_one_stores(db_url: str, world: Path,
                                                             tmp_path: Path) -> None:
    lines = _lines(world)
    oracle = f"sqlite:///{tmp_path / 'serial.db'}"
    db.init_schema(db.make_engine(oracle))
    serial = _ingest(oracle, world, lines, pipeline=False)
    piped = _ingest(db_url, world, lines, pipeline=True)
    assert msgspec.structs.asdict(piped) == msgspec.structs.asdict(serial)
    assert (piped.duplicates, piped.refused) == (9, 2)
    assert min(piped.violations, piped.malicious, piped.denied) > 0
    assert _snapshot(db_url) == _snapshot(oracle)


def test_events_stored_meanwhile_by_another_process_are_not_lost_or_counted_twice(
        db_url: str, world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _lines(world)[:BATCH * 8]
    # Another process stored these after the pipeline looked the batch up: the look-up
    # is made blind to stored events, so the writer meets them on insert.
    elsewhere = lines[BATCH * 4 + 2:BATCH * 4 + 6]
    oracle = f"sqlite:///{tmp_path / 'serial.db'}"
    db.init_schema(db.make_engine(oracle))
    serial = _ingest(oracle, world, lines, pipeline=False, preload=elsewhere)
    monkeypatch.setattr(Pipeline, "_stored", lambda self, ids: {})
    resyncs: list[int] = []
    resync = Intake.resync
    monkeypatch.setattr(Intake, "resync", lambda self: (resyncs.append(1), resync(self))[1])
    piped = _ingest(db_url, world, lines, pipeline=True, preload=elsewhere)
    assert resyncs == [1], "the writer met the stored events and the pipeline stopped"
    assert msgspec.structs.asdict(piped) == msgspec.structs.asdict(serial)
    assert piped.duplicates == len(set(elsewhere)) + 2
    assert _snapshot(db_url) == _snapshot(oracle)


def test_a_stream_of_one_batch_starts_no_writer(db_url: str, world: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[object] = []
    monkeypatch.setattr(Pipeline, "__init__",
                        lambda self, *a, **k: started.append(a))   # never called
    lines = list(itertools.islice(background_stream(BATCH - 1, seed=9), BATCH - 1))
    result = _ingest(db_url, world, lines, pipeline=True)
    assert result.accepted == BATCH - 1
    assert started == []


def _insert_then_fail(engine: sa.Engine, table: sa.Table, columns: tuple[str, ...],
                      rows: list[tuple[str, str]]) -> None:
    with engine.begin() as conn:
        db.insert_rows(conn, table, columns, rows)
        raise RuntimeError("the batch fails after its first insert")


def test_insert_rows_skips_stored_keys_and_counts_the_new(db_url: str) -> None:
    engine = db.make_engine(db_url)
    table, columns = db.delivery_payloads, ("sha256", "ref")
    first = [("a" * 64, "m1"), ("b" * 64, "m1")]
    # The first statement of a transaction that then fails: nothing of it stays.
    with pytest.raises(RuntimeError):
        _insert_then_fail(engine, table, columns, [("e" * 64, "m3")])
    with engine.begin() as conn:
        assert db.insert_rows(conn, table, columns, first) == 2
    for _ in range(3):     # past a collision, and again once the pause is over
        with engine.begin() as conn:
            assert db.insert_rows(conn, table, columns, [*first, ("c" * 64, "m2")]) == 1
            assert db.insert_rows(conn, table, columns, [("d" * 64, "m2")] * 2) == 1
        with engine.begin() as conn:
            conn.execute(table.delete().where(table.c.sha256.in_(["c" * 64, "d" * 64])))
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.select(table.c.sha256, table.c.ref))) == first
    engine.dispose()


def _count(url: str) -> int:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(sa.select(sa.func.count()).select_from(db.events)).scalar_one())
    engine.dispose()
    return n


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_killed_ingest_leaves_no_writer_and_a_rerun_stores_each_event_once(
        db_url: str, tmp_path: Path) -> None:
    """SIGKILL the ``ingest`` command once its writer has stored a batch: the writer
    stops by itself (its input ended), and ingesting the file again stores every event
    exactly once (the batches stored before the kill count as duplicates)."""
    total = 60_000
    events = tmp_path / "events.jsonl"
    with events.open("wb") as fh:
        fh.writelines(background_stream(total, seed=4))
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-m", "spywall", "platform", "ingest", "--db", db_url, "-q",
               "-f", "json", str(events)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    writers: list[int] = []
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        writers = writers or children(proc.pid)
        if writers and _count(db_url) >= 10_000:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 120
    while any(Path(f"/proc/{w}").exists() for w in writers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{w}").exists() for w in writers), "the writer outlived it"
    stored = _count(db_url)
    out = subprocess.run(command, env=env, capture_output=True, check=False)
    assert out.returncode in (0, 1), out.stderr.decode()[-2000:]
    result = msgspec.json.decode(out.stdout)
    assert result["duplicates"] == stored
    assert result["accepted"] + result["duplicates"] == total
    assert _count(db_url) == total
