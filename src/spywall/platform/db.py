"""The platform's storage: one SQLAlchemy ``MetaData``, the engine factory, and schema
creation through Alembic.

The same tables serve SQLite (the embedded default, in WAL mode) and PostgreSQL (the
production backend). Nothing outside ``spywall.platform`` and ``spywall.evidence`` writes
SQL; the tables below are the only shape of stored data, and the Alembic revisions in
``migrations/versions`` create them (a test compares the migrated schema with this file).

Times are stored twice where they are compared: ``*_us`` columns hold microseconds since
the Unix epoch (UTC) for ordering and range queries on both databases, and the event's
own text (``raw``) keeps what the producer sent.
"""

from __future__ import annotations

import functools
import operator
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy import event as sa_event

DEFAULT_URL = "sqlite:///spywall.db"

metadata = sa.MetaData()

# Events as received: the stored text is the event as sent; the columns beside it are
# what the gate and the analysis query.
events = sa.Table(
    "events", metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("id", sa.String(256), nullable=False, unique=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("account", sa.String(256)),      # the acting account (account/caller/sender)
    sa.Column("ref", sa.String(256)),          # the call or message id
    sa.Column("ip", sa.String(64)),
    sa.Column("sha256", sa.String(64)),        # a call.media capture's content hash
    sa.Column("raw", sa.Text, nullable=False),
    sa.Column("verdict", sa.String(8), nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Column("party", sa.String(128)),
    sa.Column("source", sa.String(16), nullable=False),   # file, http, gate, nats
    sa.Column("received_us", sa.BigInteger, nullable=False),
)
sa.Index("ix_events_account", events.c.account)

# A call's media found malicious before the call's offer arrived (events out of order).
pending_media = sa.Table(
    "pending_media", metadata,
    sa.Column("ref", sa.String(256), primary_key=True),
    sa.Column("event", sa.String(256), nullable=False),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("detectors", sa.JSON, nullable=False),
    sa.Column("infrastructure", sa.JSON, nullable=False),
)

# Accounts as the platform knows them (from registration and connection events).
accounts = sa.Table(
    "accounts", metadata,
    sa.Column("account", sa.String(256), primary_key=True),
    sa.Column("phone", sa.String(32)),
    sa.Column("registered_us", sa.BigInteger),
    sa.Column("registration_denied", sa.Boolean, nullable=False, default=False),
    sa.Column("denied_party", sa.String(128)),
)

# Strong identifiers seen on accounts (device fingerprints, non-official client builds,
# registration from barred infrastructure): the edges of the actor-linking graph.
account_links = sa.Table(
    "account_links", metadata,
    sa.Column("account", sa.String(256), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("value", sa.String(512), primary_key=True),
    sa.Column("event", sa.String(256), nullable=False),   # first event that showed it
)
sa.Index("ix_account_links_value", account_links.c.kind, account_links.c.value)

parties = sa.Table(
    "parties", metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("aliases", sa.JSON, nullable=False),
    sa.Column("affiliate_of", sa.String(128)),
)

orders = sa.Table(
    "orders", metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("party", sa.String(128), sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("court", sa.Text, nullable=False),
    sa.Column("case", sa.Text, nullable=False),
    sa.Column("date", sa.String(10), nullable=False),   # YYYY-MM-DD
    sa.Column("scope", sa.Text, nullable=False),
)

identifiers = sa.Table(
    "identifiers", metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("party", sa.String(128), sa.ForeignKey("parties.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("value", sa.String(512), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("added", sa.String(32), nullable=False),
    sa.Column("added_by", sa.String(128), nullable=False),
    sa.Column("derived_from", sa.String(64)),           # campaign id, for derived ones
    sa.Column("retired_us", sa.BigInteger),
    sa.Column("retired_reason", sa.Text),
    sa.UniqueConstraint("party", "kind", "value", name="uq_identifier"),
)

official_clients = sa.Table(
    "official_clients", metadata,
    sa.Column("pattern", sa.String(256), primary_key=True),
)

# Every change to the registry: who, when, what and why.
registry_changes = sa.Table(
    "registry_changes", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("party", sa.String(128)),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

# What the engines found in a payload (attachment or call capture), by content hash.
payloads = sa.Table(
    "payloads", metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("malicious", sa.Boolean, nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False),
    sa.Column("detectors", sa.JSON, nullable=False),
    sa.Column("infrastructure", sa.JSON, nullable=False),
    sa.Column("findings", sa.JSON, nullable=False),
)

# Calls and messages: who sent what to whom, and whether it carried an exploit.
deliveries = sa.Table(
    "deliveries", metadata,
    sa.Column("ref", sa.String(256), primary_key=True),     # call or message id
    sa.Column("kind", sa.String(8), nullable=False),        # call, message
    sa.Column("event", sa.String(256), nullable=False),     # call.offered / message.sent
    sa.Column("sender", sa.String(256), nullable=False),
    sa.Column("targets", sa.JSON, nullable=False),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("ip", sa.String(64)),
    sa.Column("answered", sa.Boolean, nullable=False, default=False),
    sa.Column("blocked", sa.Boolean, nullable=False, default=False),
    sa.Column("malicious", sa.Boolean, nullable=False, default=False),
    sa.Column("payloads", sa.JSON, nullable=False),          # sha256 of attachments/captures
    sa.Column("detectors", sa.JSON, nullable=False),
    sa.Column("infrastructure", sa.JSON, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),          # event ids behind the verdict
)
# Only the malicious deliveries are indexed (a partial index, on both databases): the
# analysis asks for those, and nothing asks for the clean ones by this column. A full
# index took an entry for every call and message ingested (half the events). Queries
# select them by ``MALICIOUS_ONLY``, the index's own condition, which is what lets
# SQLite's planner use a partial index.
MALICIOUS_ONLY = deliveries.c.malicious.is_(True)
sa.Index("ix_deliveries_malicious", deliveries.c.malicious, sqlite_where=MALICIOUS_ONLY,
         postgresql_where=MALICIOUS_ONLY)

# Which deliveries carried a payload (by content hash): a retro-hunt that finds an exploit
# in a stored object finds the deliveries it came in through this table.
delivery_payloads = sa.Table(
    "delivery_payloads", metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("ref", sa.String(256), primary_key=True),
)

campaigns = sa.Table(
    "campaigns", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("party", sa.String(128)),
    sa.Column("attributed_us", sa.BigInteger),
    sa.Column("attribution", sa.JSON),                        # rule and matching identifiers
    sa.Column("seed", sa.String(256), nullable=False, unique=True),  # first actor account
)

violations = sa.Table(
    "violations", metadata,
    sa.Column("event", sa.String(256), primary_key=True),
    sa.Column("party", sa.String(128), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("verdict", sa.String(8), nullable=False),
    sa.Column("identifiers", sa.JSON, nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("orders", sa.JSON, nullable=False),
    sa.Column("recorded_us", sa.BigInteger, nullable=False),
)
sa.Index("ix_violations_party_ts", violations.c.party, violations.c.ts_us)

# Enforcement with review: a proposed ban waits for an analyst; every step is kept.
bans = sa.Table(
    "bans", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account", sa.String(256), nullable=False),
    sa.Column("party", sa.String(128)),
    sa.Column("campaign", sa.String(64)),
    # proposed, approved, applied, rejected, reverted
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)
sa.Index("ix_bans_account", bans.c.account)

ban_steps = sa.Table(
    "ban_steps", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ban", sa.Integer, sa.ForeignKey("bans.id"), nullable=False),
    sa.Column("step", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
)

notifications = sa.Table(
    "notifications", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("target", sa.String(256), nullable=False),
    sa.Column("campaign", sa.String(64), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),   # pending sent failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("target", "campaign", name="uq_notification"),
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("revoked_us", sa.BigInteger),
)

audit = sa.Table(
    "audit", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
)


# TAXII 2.1: objects by collection, in the order they were added (``seq`` pages them),
# each version of an object once; rights of API keys (by key name) per collection.
taxii_objects = sa.Table(
    "taxii_objects", metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("collection", sa.String(64), nullable=False),
    sa.Column("id", sa.String(128), nullable=False),
    sa.Column("version", sa.String(40), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("spec_version", sa.String(8), nullable=False),
    sa.Column("date_added_us", sa.BigInteger, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.UniqueConstraint("collection", "id", "version", name="uq_taxii_object"),
)
sa.Index("ix_taxii_objects_added", taxii_objects.c.collection, taxii_objects.c.date_added_us)

taxii_rights = sa.Table(
    "taxii_rights", metadata,
    sa.Column("key_name", sa.String(128), primary_key=True),
    sa.Column("collection", sa.String(64), primary_key=True),
    sa.Column("can_read", sa.Boolean, nullable=False),
    sa.Column("can_write", sa.Boolean, nullable=False),
)

taxii_status = sa.Table(
    "taxii_status", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("body", sa.JSON, nullable=False),
)


def db_url(arg: str | None = None) -> str:
    """The database URL: ``--db``, else ``SPYWALL_DB``, else a SQLite file here."""
    return arg or os.environ.get("SPYWALL_DB") or DEFAULT_URL


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None      # SQLAlchemy's begin event says BEGIN itself
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: durable at each checkpoint
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # 64 MiB of page cache (the default is 2 MiB): the unique indexes of a world of
    # millions of events stay in memory while batches are inserted at random keys.
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


# Execution options of a connection that only reads and must not wait for writers (the
# pipelined ingest's duplicate look-ups while its writer process holds the write lock).
READ_ONLY = {"spywall_read_only": True}


def _begin_immediate(conn: sa.Connection) -> None:
    """SQLite transactions take the write lock when they begin: one that read first and
    wrote later (the duplicate check, then the inserts) could otherwise meet another
    writer half-way and fail with 'database is locked' instead of waiting its turn.
    A connection marked ``READ_ONLY`` reads each statement in its own snapshot instead."""
    if not conn.get_execution_options().get("spywall_read_only"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_bulk(dbapi_conn: Any, _record: Any) -> None:
    # A bulk load commits a batch of thousands of events at a time: the WAL is copied
    # back into the database every 10,000 pages instead of every 1,000, so pages that
    # consecutive batches change (index pages above all) are copied once, not each
    # time (a sixth of the writer's time at a million events). With synchronous=NORMAL
    # what a power loss can take back is what came after the last checkpoint: here well
    # under a second of ingest, and the closing connection checkpoints the rest.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA wal_autocheckpoint=10000")
    cur.close()


def _null(value: None) -> None:
    """The sqlite3 driver's adapter for None (see ``make_engine``)."""
    return value


def make_engine(url: str, bulk: bool = False) -> sa.Engine:
    """An engine for ``url``: SQLite in WAL mode with a busy timeout, or PostgreSQL
    through psycopg 3 (``postgresql://`` is mapped to the psycopg driver). ``bulk``:
    for a process that only writes large batches (the ingest writer)."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        # The driver binds a parameter of a type other than str, int, float or bytearray
        # through the adapter registered for its type; for None there was none, so it
        # asked the type for ``__adapt__`` and ``__conform__`` first, and each failed
        # look-up built an AttributeError's message (Python 3.11) only to drop it: 7% of
        # the ingest writer's instructions (most rows carry a few NULL columns). With
        # this adapter None is bound as NULL as before, without the look-ups.
        import sqlite3

        sqlite3.register_adapter(type(None), _null)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa_event.listen(engine, "connect", _sqlite_pragmas)
        if bulk:
            sa_event.listen(engine, "connect", _sqlite_bulk)
        sa_event.listen(engine, "begin", _begin_immediate)
        return engine
    # No server-side prepared statements: psycopg prepares a statement after five uses,
    # and PostgreSQL then keeps the generic plan it made while the tables were nearly
    # empty (a sequential scan of events for the duplicate check: 2.5 s a batch at 200k
    # events). Each query is planned with the statistics of the moment instead.
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"prepare_threshold": None})


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def migrations_config(engine: sa.Engine) -> Any:
    """Alembic's configuration for ``engine`` (scripts shipped inside the package)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def init_schema(engine: sa.Engine) -> str:
    """Bring the schema to the newest revision (idempotent); returns that revision."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    command.upgrade(migrations_config(engine), "head")
    with engine.connect() as conn:
        return str(MigrationContext.configure(conn).get_current_revision())


def schema_revisions(engine: sa.Engine) -> tuple[str | None, str | None]:
    """(the database's schema revision, the newest this code ships)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    head = ScriptDirectory.from_config(migrations_config(engine)).get_current_head()
    return current, head


def schema_ready(engine: sa.Engine) -> bool:
    return sa.inspect(engine).has_table("events")


_json = msgspec.json.Encoder()


def insert_ignore(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows``, skipping any that collide with a stored key (both databases);
    returns how many were inserted. JSON columns hold Python values here."""
    if not rows:
        return 0
    columns = tuple(c.name for c in table.c if c.name in rows[0])
    row_values = operator.itemgetter(*columns)
    json_at = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, sa.JSON)]
    encode = _json.encode
    tuples: list[tuple[Any, ...]] = []
    for row in rows:
        values = row_values(row)
        if len(columns) == 1:
            values = (values,)
        elif json_at:
            values = list(values)
            for i in json_at:
                values[i] = encode(values[i]).decode()
        tuples.append(tuple(values))
    return insert_rows(conn, table, columns, tuples)


def insert_rows(conn: sa.Connection, table: sa.Table, columns: tuple[str, ...],
                rows: list[tuple[Any, ...]]) -> int:
    """Insert ``rows`` (tuples in the order of ``columns``; JSON columns already encoded
    as text, booleans as 0 or 1), skipping any that collide with a stored key; returns
    how many were inserted.

    SQLite gets ``executemany`` on the driver's cursor with the statement SQLAlchemy
    compiled (SQLAlchemy's own per-row parameter processing was three quarters of the
    cost of storing a batch). PostgreSQL gets ``COPY`` into a temporary twin of the table
    and one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``: one round trip for the whole
    batch instead of one per row."""
    if not rows:
        return 0
    raw = conn.connection.driver_connection
    assert raw is not None
    if conn.dialect.name == "postgresql":
        return _copy_insert(raw, table, columns, rows)
    cur = raw.cursor()
    cur.executemany(_sqlite_statement(table, columns), rows)
    return int(cur.rowcount)


@functools.cache
def _sqlite_statement(table: sa.Table, columns: tuple[str, ...]) -> str:
    """The INSERT that SQLAlchemy writes for these columns, compiled once. SQLAlchemy
    writes the columns in the table's order, so the rows' tuples must follow it too."""
    if columns != tuple(c.name for c in table.c if c.name in columns):
        raise ValueError(f"{table.name}: columns not in the table's order: {columns}")
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.dialects.sqlite import insert as lite_insert

    stmt = lite_insert(table).values({c: sa.bindparam(c) for c in columns})
    return str(stmt.on_conflict_do_nothing().compile(dialect=sqlite.dialect()))


# Tables whose last direct COPY met a stored key: their next batches go through the
# temporary twin at once (a COPY that fails is work thrown away), then COPY is tried again.
_collided: dict[str, int] = {}
COLLISION_PAUSE = 16


def _copy_insert(raw: Any, table: sa.Table, columns: tuple[str, ...],
                 rows: list[tuple[Any, ...]]) -> int:
    """``COPY`` straight into the table under a savepoint (most batches collide with no
    stored key: half the server's work of the way round); on a collision, ``COPY`` into
    a temporary twin and ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``."""
    from psycopg import errors

    names = ", ".join(f'"{c}"' for c in columns)
    # Names here are this module's own tables and columns, never input.
    pause = _collided.get(table.name, 0)
    if pause:
        _collided[table.name] = pause - 1
    else:
        # An explicit savepoint, inside the caller's transaction (psycopg's own
        # ``transaction()`` would commit by itself when it opens the transaction).
        with raw.cursor() as cur:
            cur.execute("SAVEPOINT spywall_copy")
            try:
                with cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
            except errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT spywall_copy")
                _collided[table.name] = COLLISION_PAUSE
            else:
                cur.execute("RELEASE SAVEPOINT spywall_copy")
                return len(rows)
    temp = f"tmp_{table.name}"
    with raw.cursor() as cur:
        cur.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{temp}" '
                    f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS')
        with cur.copy(f'COPY "{temp}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(f'INSERT INTO "{table.name}" ({names}) SELECT {names} '  # noqa: S608
                    f'FROM "{temp}" ON CONFLICT DO NOTHING')
        inserted = int(cur.rowcount)
        cur.execute(f'DELETE FROM "{temp}"')  # noqa: S608
    return inserted


def mark_answered(conn: sa.Connection, refs: list[str]) -> None:
    """Calls that were answered (by their refs)."""
    if not refs:
        return
    d = deliveries
    if conn.dialect.name == "postgresql":
        conn.execute(d.update().where(d.c.ref.in_(refs)).values(answered=True))
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.cursor().executemany(_sqlite_answered(), [(r,) for r in refs])


@functools.cache
def _sqlite_answered() -> str:
    from sqlalchemy.dialects import sqlite

    stmt = deliveries.update().where(deliveries.c.ref == sa.bindparam("r")).values(
        answered=sa.true())
    return str(stmt.compile(dialect=sqlite.dialect()))


def select_among(conn: sa.Connection, columns: list[sa.Column[Any]],
                 key: sa.Column[Any], values: list[str]) -> list[Sequence[Any]]:
    """``SELECT columns WHERE key IN values`` over many values, as rows in the order of
    ``columns`` (JSON columns decoded). On SQLite 900 values at a time (its limit on
    parameters), on the driver's cursor with the statement SQLAlchemy compiled for that
    many values: SQLAlchemy expanding 900 parameters at each execution cost twice the
    query itself (1.3 of 1.9 us per value, the ingest's duplicate check at a million
    events). On PostgreSQL one array, joined as a table (an index look-up each):
    ``key = ANY(array)`` of 5,000 made the planner scan the whole table in parallel (39 ms
    against 6 ms at 400,000 events, and growing with the table)."""
    if not values:
        return []
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        wanted = sa.func.unnest(sa.bindparam(None, values, type_=postgresql.ARRAY(
            sa.String))).table_valued("v").render_derived()
        query = sa.select(*columns).select_from(key.table.join(wanted, key == wanted.c.v))
        # An index look-up per value, whatever the table's statistics say: while a table
        # grows by thousands of rows a second they lag, and the planner then hashed the
        # whole table for every batch (34 us of server time per id at 600,000 events).
        # (A failure aborts the transaction, and its rollback undoes the SET LOCAL.)
        conn.exec_driver_sql("SET LOCAL enable_hashjoin = off")
        conn.exec_driver_sql("SET LOCAL enable_mergejoin = off")
        found: list[Sequence[Any]] = list(conn.execute(query))
        conn.exec_driver_sql("SET LOCAL enable_hashjoin TO DEFAULT")
        conn.exec_driver_sql("SET LOCAL enable_mergejoin TO DEFAULT")
        return found
    table = key.table
    assert isinstance(table, sa.Table)
    names = tuple(c.name for c in columns)
    json_at = [i for i, c in enumerate(columns) if isinstance(c.type, sa.JSON)]
    raw = conn.connection.driver_connection
    assert raw is not None
    cur = raw.cursor()
    rows: list[Sequence[Any]] = []
    for start in range(0, len(values), 900):
        chunk = values[start:start + 900]
        cur.execute(_sqlite_among(table, names, key.name, len(chunk)), chunk)
        for row in cur.fetchall():
            if json_at:
                row = list(row)
                for i in json_at:
                    row[i] = _decode(row[i])
            rows.append(row)
    return rows


_decode = msgspec.json.Decoder().decode


@functools.lru_cache(maxsize=64)
def _sqlite_among(table: sa.Table, columns: tuple[str, ...], key: str, count: int) -> str:
    """The SELECT that SQLAlchemy writes for ``count`` values of ``key``, compiled once
    (its parameters are positional, in the order of the values)."""
    from sqlalchemy.dialects import sqlite

    stmt = sa.select(*(table.c[c] for c in columns)).where(
        table.c[key].in_([sa.bindparam(f"v{i}") for i in range(count)]))
    return str(stmt.compile(dialect=sqlite.dialect()))


def lock_writes(conn: sa.Connection) -> None:
    """Serialise writers of the platform's derived state (analysis) across processes:
    an advisory lock on PostgreSQL; SQLite's own write lock is taken by the first write."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(727172)"))


# The evidence log's tables live on this metadata too, so that the declared schema is the
# whole schema the migrations create (a test compares the two).
from spywall.evidence import tables as _evidence_tables  # noqa: E402, F401
