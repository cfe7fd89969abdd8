"""Engines for the log: the platform's database, or a standalone SQLite log file.

``open_engine`` is the platform's ``make_engine`` plus, on SQLite, transactions that
begin with ``BEGIN IMMEDIATE``: a writer takes the write lock when its transaction
starts (waiting up to the busy timeout), so two writers never both read the head and
then fail to upgrade.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from spywall.evidence.tables import TABLES, log_head
from spywall.platform.db import make_engine


def open_engine(url: str) -> sa.Engine:
    """The platform's engine (on SQLite its transactions begin IMMEDIATE: see
    ``spywall.platform.db.make_engine``)."""
    return make_engine(url)


def target_url(target: str) -> str:
    """A database URL as given, or the URL of a SQLite log file at a path."""
    if "://" in target:
        return target
    return "sqlite:///" + str(Path(target).resolve())


def initialise(conn: sa.Connection) -> None:
    """Insert the head row of an empty log (no-op when it exists)."""
    if conn.execute(sa.select(log_head.c.id).where(log_head.c.id == 1)).first() is None:
        conn.execute(sa.insert(log_head).values(id=1, size=0))


def create(engine: sa.Engine) -> None:
    """Create the log's tables (a standalone log file; the platform uses Alembic)."""
    with engine.begin() as conn:
        for table in TABLES:
            table.create(conn, checkfirst=True)
        initialise(conn)


def ready(engine: sa.Engine) -> bool:
    return sa.inspect(engine).has_table(log_head.name)
