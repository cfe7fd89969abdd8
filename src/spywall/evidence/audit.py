"""Audit the stored log against itself: what an operator runs after a crash or before
an export, and what a monitor with read access to the database can run at any time.

It reads every entry in index order and checks that the indices run without a gap up to
the head's size, that each entry's bytes are canonical JSON and its leaf hash is theirs;
it recomputes every complete subtree from the leaves and compares it with the stored
node; and it recomputes the root at every stored checkpoint's size and compares it with
the root stored and signed there. Memory stays bounded: entries are read in chunks and
only the peaks of the tree are kept.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import sqlalchemy as sa

from spywall.evidence import log, merkle
from spywall.evidence.canonical import CanonicalError, canonical, leaf_hash
from spywall.evidence.tables import log_checkpoints, log_entries

CHUNK = 5000
MAX_PROBLEMS = 100


@dataclass
class Audit:
    size: int = 0
    entries: int = 0
    nodes: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


def _check_entry(result: Audit, idx: int, stored_hash: bytes, body: bytes) -> bytes:
    h = leaf_hash(body)
    if h != stored_hash:
        result.problem(f"entry {idx}: stored leaf hash is not the hash of its bytes")
    try:
        if canonical(json.loads(body)) != body:
            result.problem(f"entry {idx}: bytes are not canonical JSON")
    except (ValueError, CanonicalError):
        result.problem(f"entry {idx}: bytes are not JSON")
    return h


def audit(conn: sa.Connection) -> Audit:
    result = Audit(size=log.size(conn))
    marks = {int(s): (bytes(r), str(n)) for s, r, n in conn.execute(sa.select(
        log_checkpoints.c.size, log_checkpoints.c.root, log_checkpoints.c.note))}
    fetch = log.fetcher(conn)
    size, peaks = 0, list[bytes]()
    if 0 in marks:
        _check_root(result, 0, peaks, marks[0])
    while size < result.size:
        rows = conn.execute(sa.select(log_entries.c.idx, log_entries.c.leaf_hash,
                                      log_entries.c.body)
                            .where(log_entries.c.idx >= size)
                            .order_by(log_entries.c.idx).limit(CHUNK)).all()
        if not rows or int(rows[0][0]) != size:
            result.problem(f"entry {size}: missing")
            return result
        pending: list[tuple[int, int, bytes]] = []
        for idx, stored, body in rows:
            if int(idx) != size or size >= result.size:
                result.problem(f"entry {size}: missing (found {idx})" if size < result.size
                               else f"entry {idx}: beyond the head's size {result.size}")
                return result
            h = _check_entry(result, size, bytes(stored), bytes(body))
            nodes, peaks = merkle.extend(size, peaks, [h])
            size += 1
            result.entries += 1
            pending += nodes
            if size in marks:
                _check_root(result, size, peaks, marks[size])
        _check_nodes(result, pending, fetch)
    beyond = conn.execute(sa.select(sa.func.max(log_entries.c.idx))).scalar()
    if beyond is not None and int(beyond) >= result.size:
        result.problem(f"entry {beyond}: beyond the head's size {result.size}")
    return result


def _check_nodes(result: Audit, nodes: list[tuple[int, int, bytes]],
                 fetch: merkle.Fetch) -> None:
    stored = fetch([(lv, i) for lv, i, _ in nodes])
    for lv, i, h in nodes:
        result.nodes += 1
        if stored.get((lv, i)) != h:
            result.problem(f"tree node ({lv}, {i}): stored hash differs from the leaves'")


def _check_root(result: Audit, size: int, peaks: list[bytes],
                mark: tuple[bytes, str]) -> None:
    result.checkpoints += 1
    root = merkle.root_of_peaks(peaks)
    signed = mark[1].split("\n")
    if root != mark[0] or len(signed) < 3 or signed[2] != base64.b64encode(root).decode():
        result.problem(f"checkpoint {size}: root differs from the entries' tree")
