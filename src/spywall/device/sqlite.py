"""Evidence databases, opened so that the evidence cannot change.

- A database is opened through a ``file:`` URI with ``mode=ro&immutable=1``: SQLite neither
  writes nor locks it, and creates no ``-shm`` / ``-wal`` beside it.
- ``immutable`` makes SQLite ignore a write-ahead log, so when one exists (the committed
  transactions not yet checkpointed into the main file) the database and its log are
  copied to a private temporary folder and the *copy* is opened read-only; the evidence
  folder is never written.
- Every query is parameterised; a progress handler aborts any statement that runs past the
  time budget (a hostile database can make a query slow).
- ``tables`` / ``columns`` / ``require`` let a module see schema drift and say so
  (``SchemaUnknown``) instead of failing with a vague "malformed database".
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from spywall.device.base import SchemaUnknown
from spywall.errors import FormatError, LimitExceeded
from spywall.safeopen import kind_of

DEFAULT_SECONDS = 30.0
MAX_DB_BYTES = 4 * 1024 * 1024 * 1024


# Text that is not valid UTF-8 (a hostile or damaged row) makes Python's sqlite3 raise at
# that row. A module that meets it is run again with its text read leniently: invalid
# bytes become surrogate escapes, which the report and the result folder write as
# escapes. Only then: a Python text factory costs a call per value on every row.
UNDECODABLE = "Could not decode to UTF-8"
_lenient = False


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


@contextmanager
def lenient_text() -> Iterator[None]:
    """Databases opened inside read invalid UTF-8 text with its bytes escaped."""
    global _lenient
    before, _lenient = _lenient, True
    try:
        yield
    finally:
        _lenient = before


def is_lenient() -> bool:
    return _lenient


def _uri(path: Path, immutable: bool) -> str:
    flags = "mode=ro&immutable=1" if immutable else "mode=ro"
    return f"file:{quote(str(path.resolve()))}?{flags}"


def _guard(conn: sqlite3.Connection, seconds: float) -> None:
    deadline = time.monotonic() + seconds

    def check() -> int:
        return 1 if time.monotonic() > deadline else 0

    conn.set_progress_handler(check, 10_000)


# Evidence is data, but a database's schema is code: a 4 KB Manifest.db whose ``Files``
# is a view over a recursive common table expression made millions of rows of random
# blobs (2.5 GB in 30 s); a view over a cross join does the same without recursion.
# The records spywall reads are rows of tables: recursion and reading through a view are
# refused, and no value may be near this length; SQLite refuses them while the query runs.
MAX_VALUE_BYTES = 16 * 1024 * 1024


def _authorize(action: int, arg1: str | None, arg2: str | None, db: str | None,
               source: str | None) -> int:
    if action == sqlite3.SQLITE_RECURSIVE:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_READ and source is not None:  # a column read by a view
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _harden(conn: sqlite3.Connection) -> None:
    """No recursive queries, no reading through views, no value over ``MAX_VALUE_BYTES``,
    and no function that SQLite does not call innocuous inside the evidence's schema."""
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    conn.execute("PRAGMA trusted_schema = OFF")
    conn.set_authorizer(_authorize)


def _check_size(path: Path) -> None:
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):  # SQLite's open of a FIFO would block for ever
        raise FormatError(f"{path.name} is {kind_of(st.st_mode)}: only regular files are read")
    size = st.st_size
    if size > MAX_DB_BYTES:
        raise LimitExceeded(f"database of {size} bytes is over the cap of {MAX_DB_BYTES}")


@contextmanager
def open_evidence(path: str | os.PathLike[str], wal: str | os.PathLike[str] | None = None,
                  seconds: float = DEFAULT_SECONDS) -> Iterator[sqlite3.Connection]:
    """A read-only connection to an evidence database.

    ``wal`` is the write-ahead log when it is not stored beside the database as
    ``<path>-wal`` (iOS backups store it as a file of its own). A non-empty log means the
    database is copied with it to a temporary folder, and the copy is opened.
    """
    db = Path(path)
    _check_size(db)
    log = Path(wal) if wal is not None else Path(f"{db}-wal")
    if not (log.is_file() and log.stat().st_size > 0):  # (no private folder to make: a
        with _connected(db, True, seconds) as conn:       # check opens twenty databases)
            yield conn
        return
    _check_size(log)
    with tempfile.TemporaryDirectory(prefix="spywall-db-") as tmp:
        target = Path(tmp, "evidence.db")
        shutil.copyfile(db, target)
        shutil.copyfile(log, Path(tmp, "evidence.db-wal"))
        with _connected(target, False, seconds) as conn:
            yield conn


@contextmanager
def _connected(target: Path, immutable: bool, seconds: float) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(_uri(target, immutable), uri=True)
    if _lenient:
        conn.text_factory = _lenient_text
    try:
        _harden(conn)
        _guard(conn, seconds)
        yield conn
    except sqlite3.OperationalError as exc:
        if str(exc) == "interrupted":
            raise LimitExceeded(f"query over the time budget of {seconds:g}s") from exc
        raise
    finally:
        conn.close()


def tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    return {str(r[0]) for r in rows}


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """Column names of ``table`` (empty when it does not exist)."""
    rows = conn.execute("SELECT name FROM pragma_table_info(?)", (table,))
    return {str(r[0]) for r in rows}


def require(conn: sqlite3.Connection, table: str, cols: Sequence[str]) -> set[str]:
    """The columns of ``table``; ``SchemaUnknown`` if the table or any of ``cols`` is absent."""
    have = columns(conn, table)
    if not have:
        raise SchemaUnknown(f"no table {table!r} (tables: {', '.join(sorted(tables(conn)))})")
    missing = [c for c in cols if c not in have]
    if missing:
        raise SchemaUnknown(f"table {table!r} lacks column(s) {', '.join(missing)}")
    return have


def ident(name: str) -> str:
    """Quote an identifier that came from ``columns`` / ``tables`` (never from the data)."""
    return '"' + name.replace('"', '""') + '"'
