"""The log in the database (SQLite and PostgreSQL): concurrent writers get distinct,
contiguous indices and a consistent tree; a writer killed with SIGKILL mid-appends loses
nothing it acknowledged; bad entries are refused before anything is written; reports
are appended to a standalone log file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from spywall.commands.common import finish, new_report
from spywall.evidence import log, merkle, store
from spywall.evidence.canonical import canonical, leaf_hash
from spywall.evidence.keys import Signer
from spywall.evidence.kinds import EntryError
from spywall.evidence.reports import ReportError, append_report
from spywall.evidence.tables import log_entries
from spywall.evidence.verify import verify_consistency, verify_inclusion
from spywall.report import Finding, FindingKind, Severity, Subject, dump_json

from .conftest import ORIGIN, violation


def mth(hashes: list[bytes]) -> bytes:
    from spywall.evidence.canonical import EMPTY_ROOT, node_hash

    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def check_consistent(engine: sa.Engine) -> list[bytes]:
    """The stored tree against the entries: every leaf hash is the hash of the stored
    bytes, the bytes are canonical, indices run 0..size-1, and the root computed from the
    stored nodes equals the root recomputed from the entries (RFC 9162 MTH)."""
    with engine.connect() as conn:
        size = log.size(conn)
        rows = conn.execute(sa.select(log_entries.c.idx, log_entries.c.leaf_hash,
                                      log_entries.c.body).order_by(log_entries.c.idx)).all()
        assert [int(r[0]) for r in rows] == list(range(size))
        hashes = []
        for _, h, body in rows:
            assert bytes(h) == leaf_hash(bytes(body))
            assert canonical(json.loads(body)) == bytes(body)
            hashes.append(bytes(h))
        root = log.root(conn, size)
        assert root == mth(hashes)
        for old in {0, 1, size // 3, size - 1, size}:
            if 0 <= old <= size:
                proof = log.consistency(conn, old, size)
                assert verify_consistency(old, size, proof, mth(hashes[:old]), root)
        for index in {0, size // 2, size - 1}:
            if 0 <= index < size:
                assert verify_inclusion(index, size, hashes[index],
                                        log.inclusion(conn, index, size), root)
    return hashes


def test_append_and_checkpoint(url: str) -> None:
    engine = store.open_engine(url)
    key = Signer.generate(ORIGIN)
    with engine.begin() as conn:
        assert log.append(conn, [violation(i) for i in range(3)]) == [0, 1, 2]
        assert log.append(conn, []) == []
        assert log.append_many(conn, (violation(i) for i in range(3, 20)), batch=4) == \
            list(range(3, 20))
        note = log.checkpoint(conn, key)
    lines = note.split("\n")
    assert lines[:2] == [ORIGIN, "20"]
    assert lines[3] == ""
    assert lines[4].startswith("\u2014 ")
    with engine.begin() as conn:
        assert log.checkpoint(conn, key) == note        # same size: the stored note
        with pytest.raises(log.LogError):
            log.checkpoint(conn, Signer.generate(ORIGIN))   # not the log's key
    check_consistent(engine)
    engine.dispose()


def test_platform_engine_appends(url: str) -> None:
    """The platform's own engine (no BEGIN IMMEDIATE hook) works too."""
    from spywall.platform.db import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        log.append(conn, [violation(1)])
    with engine.begin() as conn:
        log.append(conn, [violation(2)])
    assert len(check_consistent(engine)) == 2
    engine.dispose()


def test_bad_entries_write_nothing(url: str) -> None:
    engine = store.open_engine(url)
    bad = [
        {"kind": "nonsense", "ts": "2026-01-01T00:00:00Z"},
        {"kind": "violation", "ts": "2026-01-01T00:00:00Z"},           # fields missing
        {**violation(1), "ts": "yesterday"},
        {**violation(1), "ts": "2026-01-01T00:00:00"},                  # no time zone
        {**violation(1), "score": float("nan")},
        {**violation(1), "big": 2 ** 60},
        {"kind": "enforcement", "ts": "2026-01-01T00:00:00Z", "step": "burn", "ban": 1,
         "account": "a", "actor": "b", "events": []},
        {**violation(1), "blob": "x" * (1 << 20)},
    ]
    for entry in bad:
        with pytest.raises(EntryError), engine.begin() as conn:
            log.append(conn, [violation(0), entry])
    with engine.connect() as conn:
        assert log.size(conn) == 0
    engine.dispose()


def test_concurrent_writers(url: str) -> None:
    engine = store.open_engine(url)
    got: list[list[int]] = []
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for t in range(15):
                with engine.begin() as conn:
                    got.append(log.append(conn, [violation(w * 1000 + t * 10 + i)
                                                 for i in range(7)]))
        except BaseException as exc:   # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    flat = sorted(i for batch in got for i in batch)
    assert flat == list(range(4 * 15 * 7))
    assert all(b == list(range(b[0], b[0] + 7)) for b in got)   # a batch is contiguous
    check_consistent(engine)
    engine.dispose()


WRITER = """
import sys
from spywall.evidence import log, store
engine = store.open_engine(sys.argv[1])
n = 0
while True:
    with engine.begin() as conn:
        idx = log.append(conn, [{"kind": "notification", "ts": "2026-01-01T00:00:00Z",
                                 "target": f"t{n}-{i}", "campaign": "c", "status": "sent"}
                                for i in range(25)])
    print(idx[-1], flush=True)
    n += 1
"""


def test_kill_9_during_appends(url: str, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    import spywall

    env = {**os.environ, "PYTHONPATH": str(Path(spywall.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, str(script), url], stdout=subprocess.PIPE,
                            env=env, text=True)
    acked = -1
    assert proc.stdout is not None
    for _ in range(40):
        line = proc.stdout.readline()
        if not line:
            break
        acked = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert acked >= 0, "the writer acknowledged nothing"
    engine = store.open_engine(url)
    hashes = check_consistent(engine)
    assert len(hashes) > acked            # everything acknowledged is there
    assert len(hashes) % 25 == 0          # no half batch
    from spywall.evidence.audit import audit

    with engine.connect() as conn:
        assert audit(conn).problems == []
    with engine.begin() as conn:          # and the log goes on
        log.append(conn, [violation(1)])
    check_consistent(engine)
    engine.dispose()


def _report(findings: int) -> bytes:
    report = new_report("scan")
    report.subjects = [Subject(path="a.pdf", sha256="ab" * 32, size=10, findings=[
        Finding(rule="jbig2", title="t", kind=FindingKind.EXPLOIT, severity=Severity.HIGH,
                message="m", path="a.pdf", cves=["CVE-2021-30860"])] * findings)]
    return dump_json(finish(report)).encode()


def test_append_report_to_file(tmp_path: Path) -> None:
    target = str(tmp_path / "reports.db")
    data = _report(2)
    assert append_report(target, data) == 0
    assert append_report(target, _report(0)) == 1
    engine = store.open_engine(store.target_url(target))
    with engine.connect() as conn:
        entry = json.loads(log.entry_bytes(conn, 0))
    assert entry["kind"] == "report"
    assert entry["command"] == "scan"
    assert entry["inputs"] == [{"path": "a.pdf", "sha256": "ab" * 32, "size": 10}]
    assert [f["cves"] for f in entry["findings"]] == [["CVE-2021-30860"]] * 2
    import hashlib
    assert entry["report_sha256"] == hashlib.sha256(data).hexdigest()
    check_consistent(engine)
    engine.dispose()
    with pytest.raises(ReportError):
        append_report(target, b"not json")
    with pytest.raises(ReportError):
        append_report(f"sqlite:///{tmp_path / 'nolog.db'}", data)


def test_peaks() -> None:
    assert merkle.peaks(0) == []
    assert merkle.peaks(13) == [(3, 0), (2, 2), (0, 12)]


def test_audit_finds_tampering(url: str) -> None:
    from spywall.evidence.audit import audit
    from spywall.evidence.tables import log_checkpoints, log_nodes

    engine = store.open_engine(url)
    key = Signer.generate(ORIGIN)
    with engine.begin() as conn:
        log.append(conn, [violation(i) for i in range(40)])
        log.checkpoint(conn, key)
        log.append(conn, [violation(i) for i in range(40, 45)])
    with engine.connect() as conn:
        clean = audit(conn)
    assert clean.problems == []
    assert (clean.entries, clean.checkpoints) == (45, 1)
    assert clean.nodes == sum(45 >> lv for lv in range(1, 6))
    e, n = log_entries, log_nodes
    changes = [
        (sa.update(e).where(e.c.idx == 7).values(
            body=canonical({**violation(7), "verdict": "allow"})),
         "entry 7: stored leaf hash"),
        (sa.update(e).where(e.c.idx == 9).values(body=b'{"kind": "violation"}',
                                                 leaf_hash=leaf_hash(b'{"kind": "violation"}')),
         "entry 9: bytes are not canonical"),
        (sa.update(n).where(n.c.level == 3, n.c.idx == 2).values(hash=bytes(32)),
         "tree node (3, 2)"),
        (sa.update(log_checkpoints).values(root=bytes(32)), "checkpoint 40"),
        (sa.delete(e).where(e.c.idx == 44), "entry 44: missing"),
    ]
    for change, want in changes:
        with engine.connect() as conn:
            trans = conn.begin()
            conn.execute(change)
            found = audit(conn)
            trans.rollback()
        assert any(p.startswith(want) for p in found.problems), (want, found.problems)
    engine.dispose()
