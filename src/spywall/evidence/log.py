"""The log in the platform database: append entries, sign checkpoints, read proofs.

The platform calls, inside its own transaction (so that an entry is written exactly when
what it records is)::

    from spywall.evidence import log
    indices = log.append(conn, [{"kind": "violation", "ts": ..., ...}])

``append`` first updates the ``log_head`` row: on PostgreSQL that row lock serialises
writers until the caller's transaction ends; on SQLite the update takes the database's
write lock (use ``store.open_engine`` for ``BEGIN IMMEDIATE`` transactions). Entries and
tree nodes commit with the caller's transaction or not at all, so a writer killed at any
moment leaves the log as of its last commit: nothing acknowledged is lost, nothing half
written is seen.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from spywall.evidence import merkle
from spywall.evidence.canonical import leaf_hash
from spywall.evidence.keys import Signer, checkpoint_body, sign_note
from spywall.evidence.kinds import encode
from spywall.evidence.tables import log_checkpoints, log_entries, log_head, log_nodes

BATCH = 5000


class LogError(RuntimeError):
    """The log cannot do what was asked (not initialised, wrong key, missing nodes)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _lock(conn: sa.Connection, grow: int = 0) -> tuple[int, str | None, str | None]:
    """Lock the head row (adding ``grow`` to the size); the new size, origin and key."""
    row = conn.execute(
        sa.update(log_head).where(log_head.c.id == 1)
        .values(size=log_head.c.size + grow)
        .returning(log_head.c.size, log_head.c.origin, log_head.c.key)).one_or_none()
    if row is None:
        raise LogError("the evidence log is not initialised (spywall platform init)")
    return int(row[0]), row[1], row[2]


# One statement per table, compiled once: level 0 from the entries, a level of inner
# nodes by (level, idx IN ...), which both databases answer from the primary key.
_LEAVES = sa.select(log_entries.c.idx, log_entries.c.leaf_hash).where(
    log_entries.c.idx.in_(sa.bindparam("ids", expanding=True)))
_NODES = sa.select(log_nodes.c.idx, log_nodes.c.hash).where(
    log_nodes.c.level == sa.bindparam("level"),
    log_nodes.c.idx.in_(sa.bindparam("ids", expanding=True)))
_CHUNK = 500


def fetcher(conn: sa.Connection) -> merkle.Fetch:
    """Read stored tree nodes: level 0 from the entries, higher levels from the nodes."""
    def fetch(keys: Iterable[merkle.Key]) -> dict[merkle.Key, bytes]:
        by_level: dict[int, list[int]] = {}
        for level, idx in keys:
            by_level.setdefault(level, []).append(idx)
        out: dict[merkle.Key, bytes] = {}
        for level, idxs in sorted(by_level.items()):
            for start in range(0, len(idxs), _CHUNK):
                ids = idxs[start:start + _CHUNK]
                rows = (conn.execute(_LEAVES, {"ids": ids}) if level == 0 else
                        conn.execute(_NODES, {"level": level, "ids": ids}))
                out.update(((level, int(row[0])), bytes(row[1])) for row in rows)
        return out
    return fetch


def append(conn: sa.Connection, entries: Sequence[Mapping[str, Any]]) -> list[int]:
    """Append ``entries`` in the caller's transaction; their indices in the log.

    Every entry is checked (``kinds.encode``) before anything is written: one bad entry
    refuses the whole call with ``EntryError``."""
    encoded = [encode(e) for e in entries]
    if not encoded:
        return []
    size, _, _ = _lock(conn, len(encoded))
    start = size - len(encoded)
    fetch = fetcher(conn)
    keys = merkle.peaks(start)
    got = fetch(keys)
    if len(got) != len(keys):
        raise LogError(f"tree nodes of size {start} missing: the log is damaged")
    leaves = [leaf_hash(body) for body, *_ in encoded]
    nodes, _ = merkle.extend(start, [got[k] for k in keys], leaves)
    conn.execute(sa.insert(log_entries), [
        {"idx": start + i, "leaf_hash": h, "kind": kind, "ts": ts, "party": party,
         "body": body}
        for i, ((body, kind, ts, party), h) in enumerate(zip(encoded, leaves, strict=True))])
    if nodes:
        conn.execute(sa.insert(log_nodes),
                     [{"level": lv, "idx": i, "hash": h} for lv, i, h in nodes])
    return list(range(start, size))


def append_many(conn: sa.Connection, entries: Iterable[Mapping[str, Any]],
                batch: int = BATCH) -> list[int]:
    """``append`` in batches of ``batch`` entries (one transaction: the caller's)."""
    out: list[int] = []
    chunk: list[Mapping[str, Any]] = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) >= batch:
            out += append(conn, chunk)
            chunk = []
    return out + append(conn, chunk)


def size(conn: sa.Connection) -> int:
    got = conn.execute(sa.select(log_head.c.size).where(log_head.c.id == 1)).scalar()
    if got is None:
        raise LogError("the evidence log is not initialised (spywall platform init)")
    return int(got)


def root(conn: sa.Connection, tree_size: int) -> bytes:
    try:
        return merkle.root(tree_size, fetcher(conn))
    except KeyError as exc:
        raise LogError(f"tree nodes of size {tree_size} missing: the log is damaged") from exc


def inclusion(conn: sa.Connection, index: int, tree_size: int) -> list[bytes]:
    return merkle.inclusion_proof(index, tree_size, fetcher(conn))


def inclusions(conn: sa.Connection, indices: Sequence[int], tree_size: int
               ) -> list[list[bytes]]:
    """Inclusion proofs of many leaves in one tree (one fetch, shared subtree hashes)."""
    return merkle.inclusion_proofs(indices, tree_size, fetcher(conn))


def consistency(conn: sa.Connection, old: int, new: int) -> list[bytes]:
    return merkle.consistency_proof(old, new, fetcher(conn))


def _claim_key(conn: sa.Connection, signer: Signer, origin: str | None, key: str | None
               ) -> str:
    """The origin; the log takes the signer's name and key when it has none yet."""
    if origin is None or key is None:
        origin = origin or signer.name
        conn.execute(sa.update(log_head).where(log_head.c.id == 1)
                     .values(origin=origin, key=signer.vkey()))
        key = signer.vkey()
    if signer.vkey() != key:
        raise LogError(f"this log's checkpoints are signed by {key.split('+')[0]}+"
                       f"{key.split('+')[1]}; the key given is {signer.name}+"
                       f"{signer.id.hex()} (rotate keys with 'spywall evidence rotate-key')")
    if signer.name != origin:
        raise LogError(f"the key's name {signer.name!r} is not the log's origin {origin!r}")
    return origin


def checkpoint(conn: sa.Connection, signer: Signer) -> str:
    """Sign (and store) a checkpoint of the whole log; the signed note text. The same
    size twice gives the stored note (with the cosignatures it has gathered)."""
    tree_size, origin, key = _lock(conn)
    origin = _claim_key(conn, signer, origin, key)
    stored = conn.execute(sa.select(log_checkpoints.c.note)
                          .where(log_checkpoints.c.size == tree_size)).scalar()
    if stored is not None:
        return str(stored)
    head = root(conn, tree_size)
    note = sign_note(checkpoint_body(origin, tree_size, head), signer)
    conn.execute(sa.insert(log_checkpoints).values(size=tree_size, root=head, note=note,
                                                   created=_now()))
    return note


def rotation_message(origin: str, old_key: str, new_key: str, ts: str) -> bytes:
    """What the old key signs in a ``key-rotation`` entry."""
    return f"spywall key-rotation/v1\n{origin}\n{old_key}\n{new_key}\n{ts}\n".encode()


def rotate_key(conn: sa.Connection, old: Signer, new: Signer) -> int:
    """Record in the log that ``new`` replaces ``old`` (signed by ``old``); from then on
    only ``new`` signs checkpoints. The entry's index."""
    _, origin, key = _lock(conn)
    origin = _claim_key(conn, old, origin, key)
    if new.name != origin:
        raise LogError(f"the new key's name {new.name!r} is not the log's origin {origin!r}")
    ts = _now()
    sig = old.sign(rotation_message(origin, old.vkey(), new.vkey(), ts))
    [index] = append(conn, [{"kind": "key-rotation", "ts": ts, "origin": origin,
                             "old_key": old.vkey(), "new_key": new.vkey(),
                             "signature": base64.b64encode(sig).decode()}])
    conn.execute(sa.update(log_head).where(log_head.c.id == 1).values(key=new.vkey()))
    return index


def add_cosignatures(conn: sa.Connection, tree_size: int, note: str) -> None:
    """Store ``note`` (a stored checkpoint with more signature lines) in place of the
    stored one; refused unless it extends the stored text."""
    stored = conn.execute(sa.select(log_checkpoints.c.note)
                          .where(log_checkpoints.c.size == tree_size)).scalar()
    if stored is None or not note.startswith(str(stored)):
        raise LogError(f"no stored checkpoint of size {tree_size} that this note extends")
    conn.execute(sa.update(log_checkpoints).where(log_checkpoints.c.size == tree_size)
                 .values(note=note))


def entry_bytes(conn: sa.Connection, index: int) -> bytes:
    got = conn.execute(sa.select(log_entries.c.body)
                       .where(log_entries.c.idx == index)).scalar()
    if got is None:
        raise LogError(f"no entry {index}")
    return bytes(got)


__all__ = ["BATCH", "LogError", "add_cosignatures", "append", "append_many",
           "checkpoint", "consistency", "entry_bytes", "inclusion", "root", "rotate_key",
           "size"]
