"""Fixtures of the platform tests: every test that takes ``db_url`` runs on SQLite and on
PostgreSQL. PostgreSQL is the real server at 127.0.0.1:5432 (trust auth); each test gets a
database of its own, created and dropped here, and the PostgreSQL runs skip with a reason
only when no server answers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from spywall.platform import db

PG_ADMIN = os.environ.get("SPYWALL_TEST_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")


def _pg_admin() -> sa.Engine | None:
    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT",
                              connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return engine
    except sa.exc.OperationalError:
        for user in ("postgres",):
            alt = sa.create_engine(PG_ADMIN.replace("root@", f"{user}@"),
                                   isolation_level="AUTOCOMMIT",
                                   connect_args={"connect_timeout": 3})
            try:
                with alt.connect():
                    return alt
            except sa.exc.OperationalError:
                continue
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated platform database URL (SQLite file, or a new PostgreSQL db)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'platform.db'}"
        db.init_schema(db.make_engine(url))
        yield url
        return
    admin = _pg_admin()
    if admin is None:
        pytest.skip("PostgreSQL does not answer at 127.0.0.1:5432")
    name = f"spywall_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = db.make_engine(url)
    db.init_schema(engine)
    try:
        yield url
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
