"""Fixtures of the evidence-log tests: a migrated platform database on SQLite and on
PostgreSQL (a database of its own per test, created and dropped here; the PostgreSQL
runs skip with a reason only when no server answers at 127.0.0.1:5432), signing keys,
and a small log with violations, a key rotation and checkpoints."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from spywall.evidence import log, store
from spywall.evidence.keys import COSIGNER, Signer
from spywall.platform import db

PG = os.environ.get("SPYWALL_TEST_PG", "postgresql+psycopg://{user}@127.0.0.1:5432/postgres")
ORIGIN = "example.org/spywall-evidence"
ORDER = {"court": "N.D. Cal.", "case": "4:19-cv-07123", "date": "2025-10-17",
         "scope": "permanent injunction"}


def pg_admin() -> sa.Engine | None:
    for user in ("root", "postgres"):
        engine = sa.create_engine(PG.format(user=user), isolation_level="AUTOCOMMIT",
                                  connect_args={"connect_timeout": 3})
        try:
            with engine.connect():
                return engine
        except sa.exc.OperationalError:
            engine.dispose()
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated platform database (Alembic 0001 + 0002)."""
    if request.param == "sqlite":
        u = f"sqlite:///{tmp_path / 'platform.db'}"
        engine = db.make_engine(u)
        db.init_schema(engine)
        engine.dispose()
        yield u
        return
    admin = pg_admin()
    if admin is None:
        pytest.skip("PostgreSQL does not answer at 127.0.0.1:5432")
    name = f"spywall_evidence_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    u = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = db.make_engine(u)
    db.init_schema(engine)
    engine.dispose()
    try:
        yield u
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
