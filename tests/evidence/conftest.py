"""Fixtures of the evidence-log tests: a migrated platform database on SQLite and on
PostgreSQL (a database of its own per test, ``migrated_db`` in ``tests/conftest.py``; the
PostgreSQL runs skip with a reason only when no server answers), signing keys,
and a small log with violations, a key rotation and checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from spywall.evidence import log, store
from spywall.evidence.keys import COSIGNER, Signer

ORIGIN = "example.org/spywall-evidence"
ORDER = {"court": "N.D. Cal.", "case": "4:19-cv-07123", "date": "2025-10-17",
         "scope": "permanent injunction"}


@pytest.fixture
def url(migrated_db: str) -> str:
    """A migrated platform database (SQLite, or PostgreSQL of its own)."""
    return migrated_db


@pytest.fixture
def key() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture
def witness_key() -> Signer:
    return Signer.generate("witness.example.net/w1", COSIGNER)


def violation(i: int, party: str = "vendor-x", event: str | None = None) -> dict[str, Any]:
    return {"kind": "violation", "ts": f"2026-06-{1 + i % 28:02d}T10:{i % 60:02d}:00Z",
            "event": event or f"ev-{i}", "party": party, "type": "call.offered",
            "verdict": "deny", "identifiers": [f"ip:203.0.113.{i % 250}"],
            "rule": "party-identifier", "orders": [ORDER]}


def sample_log(engine: sa.Engine, key: Signer, new_key: Signer | None = None) -> None:
    """20 violations of two parties, notifications, checkpoints at 8 and 15, and (with
    ``new_key``) a key rotation before the last entries."""
    with engine.begin() as conn:
        log.append(conn, [violation(i, "vendor-x" if i % 3 else "affiliate-y")
                          for i in range(8)])
        log.checkpoint(conn, key)
    with engine.begin() as conn:
        log.append(conn, [violation(i, "vendor-x") for i in range(8, 15)])
        log.checkpoint(conn, key)
    signer = key
    if new_key is not None:
        with engine.begin() as conn:
            log.rotate_key(conn, key, new_key)
        signer = new_key
    with engine.begin() as conn:
        log.append(conn, [
            {"kind": "notification", "ts": "2026-06-20T00:00:00Z", "target": "acc-7",
             "campaign": "c-1", "status": "sent"},
            {"kind": "enforcement", "ts": "2026-06-21T00:00:00Z", "step": "approve",
             "ban": 3, "account": "acc-666", "actor": "analyst@example.org",
             "events": ["ev-3"], "party": "vendor-x"},
            violation(15, event="<script>alert(1)</script>")])
        log.checkpoint(conn, signer)


@pytest.fixture
def sqlite_log(tmp_path: Path) -> sa.Engine:
    engine = store.open_engine(f"sqlite:///{tmp_path / 'log.db'}")
    store.create(engine)
    return engine
