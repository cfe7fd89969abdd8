"""The evidence log's tables, on the platform's ``metadata`` (created by the Alembic
revision ``0002_evidence_log``; a standalone log file gets them from ``store.create``).

- ``log_head``: one row (``id`` 1): the tree size, the origin (the checkpoint's first
  line) and the verifier key that signs checkpoints now. Every append updates this row
  first: that update is the writers' lock (a row lock on PostgreSQL, the write lock on
  SQLite) and allocates the new indices.
- ``log_entries``: the leaves: index, leaf hash, the canonical entry bytes, and the
  columns an export selects on (kind, time, party).
- ``log_nodes``: the hash of every complete subtree of level >= 1 (level 0 is
  ``log_entries.leaf_hash``); written once, never changed.
- ``log_checkpoints``: every signed checkpoint (note text with its cosignatures).
"""

from __future__ import annotations

import sqlalchemy as sa

from spywall.platform.db import metadata

_BIG = sa.BigInteger().with_variant(sa.Integer, "sqlite")

log_head = sa.Table(
    "log_head", metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("size", _BIG, nullable=False),
    sa.Column("origin", sa.String(256)),
    sa.Column("key", sa.String(512)),
)

log_entries = sa.Table(
    "log_entries", metadata,
    sa.Column("idx", _BIG, primary_key=True, autoincrement=False),
    sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("ts", sa.String(64), nullable=False),
    sa.Column("party", sa.String(128)),
    sa.Column("body", sa.LargeBinary, nullable=False),
)
sa.Index("ix_log_entries_kind", log_entries.c.kind)
sa.Index("ix_log_entries_party_ts", log_entries.c.party, log_entries.c.ts)

log_nodes = sa.Table(
    "log_nodes", metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("idx", _BIG, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
)

log_checkpoints = sa.Table(
    "log_checkpoints", metadata,
    sa.Column("size", _BIG, primary_key=True, autoincrement=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created", sa.String(40), nullable=False),
)

TABLES = (log_head, log_entries, log_nodes, log_checkpoints)
