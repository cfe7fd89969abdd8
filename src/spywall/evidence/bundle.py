"""Export a bundle a court can keep (the layout is described in ``verify``).

The export signs a checkpoint of the whole log, then reads the selected entries (below
that size; they never change) and writes, for each, its inclusion proof against that
checkpoint; consistency proofs from every earlier stored checkpoint; the log's keys (the
rotation entries are always included, whatever the selection); the report; and a
manifest of every file, signed by the log key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from spywall.evidence import log, render
from spywall.evidence.canonical import canonical
from spywall.evidence.keys import Signer, sign_note
from spywall.evidence.tables import log_checkpoints, log_entries, log_head

BUNDLE_FORMAT = "spywall-evidence-bundle/1"
ENTRY_FORMAT = "spywall-evidence-entry/1"
PROOF_BATCH = 500           # inclusion proofs computed together
MAX_REPORT_OTHERS = 10000   # entries other than violations listed in the report
MAX_EARLIER = 1000          # earlier checkpoints proven consistent (the newest ones)

README = """This folder is an evidence bundle of the transparency log {origin}.

checkpoint         the signed tree head (C2SP tlog-checkpoint, Ed25519 signed note)
entries.jsonl      the selected entries (RFC 8785 JSON), each with its RFC 9162
                   inclusion proof against the checkpoint, in log order
consistency.jsonl  earlier checkpoints and the proof that this tree extends each
keys.json          the log's public keys (in order of use) and known witness keys
report.html/.pdf   the violations by party and court order, for people to read
manifest.json/.sig every file's SHA-256, signed by the log key

Check it with:  spywall evidence verify THIS_FOLDER --key '{vkey}'
(compare the key with the one the platform published; exit 0 means every proof and
signature holds, 1 that something was changed, removed, reordered or added).
"""


class ExportError(ValueError):
    """The export cannot be written (folder not empty, bad filter)."""


@dataclass
class Exported:
    folder: Path
    tree_size: int
    entries: int
    violations: int
    checkpoints: int
    pdf: bool


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


def _selected(conn: sa.Connection, size: int, party: str | None, since: str | None
              ) -> Iterator[tuple[int, bytes]]:
    cond = [log_entries.c.idx < size]
    if party is not None:
        cond.append(log_entries.c.party == party)
    if since is not None:
        cond.append(log_entries.c.ts >= since)
    q = (sa.select(log_entries.c.idx, log_entries.c.body)
         .where(sa.or_(sa.and_(*cond), sa.and_(log_entries.c.idx < size,
                                               log_entries.c.kind == "key-rotation")))
         .order_by(log_entries.c.idx))
    for idx, body in conn.execute(q):
        yield int(idx), bytes(body)


def log_keys(conn: sa.Connection) -> list[str]:
    """The log's verifier keys in the order they were used."""
    keys: list[str] = []
    q = (sa.select(log_entries.c.body).where(log_entries.c.kind == "key-rotation")
         .order_by(log_entries.c.idx))
    for (body,) in conn.execute(q):
        entry = json.loads(body)
        keys = keys or [entry["old_key"]]
        keys.append(entry["new_key"])
    current = conn.execute(sa.select(log_head.c.key)).scalar()
    return keys or [str(current)]


def _line(value: dict[str, Any]) -> bytes:
    return canonical(value) + b"\n"


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise ExportError(f"--since {value!r} is not a date (YYYY-MM-DD)") from exc
    return value


def export(engine: sa.Engine, folder: Path, signer: Signer, party: str | None = None,
           since: str | None = None, witnesses: tuple[str, ...] = (), pdf: bool = True
           ) -> Exported:
    since = _since(since)
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise ExportError(f"{folder} is not empty")
    with engine.begin() as conn:
        note = log.checkpoint(conn, signer)
    lines = note.split("\n")
    origin, size, root = lines[0], int(lines[1]), lines[2]
    shown: list[render.Entry] = []     # what the report lists
    count = violations = others = 0
    with engine.connect() as conn, (folder / "entries.jsonl").open("wb") as out:
        batch: list[tuple[int, bytes]] = []
        for row in chain(_selected(conn, size, party, since), [None]):
            if row is not None:
                batch.append(row)
            if batch and (row is None or len(batch) >= PROOF_BATCH):
                proofs = log.inclusions(conn, [i for i, _ in batch], size)
                for (idx, body), proof in zip(batch, proofs, strict=True):
                    entry = json.loads(body)
                    out.write(_line({"index": idx, "entry": entry, "inclusion": _b64(proof)}))
                    count += 1
                    violations += entry.get("kind") == "violation"
                    if entry.get("kind") == "violation" or others < MAX_REPORT_OTHERS:
                        others += entry.get("kind") != "violation"
                        shown.append((idx, entry))
                batch = []
        earlier = list(conn.execute(
            sa.select(log_checkpoints.c.size, log_checkpoints.c.note)
            .where(log_checkpoints.c.size < size)
            .order_by(log_checkpoints.c.size.desc()).limit(MAX_EARLIER)))
        with (folder / "consistency.jsonl").open("wb") as cons:
            for old, old_note in reversed(earlier):
                proof = log.consistency(conn, int(old), size)
                cons.write(_line({"checkpoint": str(old_note), "proof": _b64(proof)}))
        keys = log_keys(conn)
    (folder / "checkpoint").write_text(note, encoding="utf-8")
    (folder / "keys.json").write_bytes(canonical({"log": keys, "witnesses": list(witnesses)}))
    selection = ", ".join(f"{k} {v}" for k, v in (("party", party), ("since", since)) if v) \
        or "every entry"
    meta = {"origin": origin, "size": size, "root": root, "selection": selection,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "entries": count, "unlisted": count - len(shown)}
    (folder / "report.html").write_text(render.to_html(meta, shown), encoding="utf-8")
    if pdf:
        render.write_pdf(folder / "report.pdf", render.lines(meta, shown))
    (folder / "README.txt").write_text(README.format(origin=origin, vkey=keys[0]),
                                       encoding="utf-8")
    files = {}
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        files[path.name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    manifest = canonical({"format": BUNDLE_FORMAT, "origin": origin, "tree_size": size,
                          "files": files})
    (folder / "manifest.json").write_bytes(manifest)
    signed = f"{BUNDLE_FORMAT}\n{origin}\n{size}\n{hashlib.sha256(manifest).hexdigest()}\n"
    (folder / "manifest.sig").write_text(sign_note(signed, signer), encoding="utf-8")
    return Exported(folder, size, count, violations, len(earlier), pdf)


def export_entry(engine: sa.Engine, index: int, path: Path, signer: Signer) -> None:
    """One entry with its proof against a new checkpoint, in one file."""
    with engine.begin() as conn:
        note = log.checkpoint(conn, signer)
    size = int(note.split("\n")[1])
    with engine.connect() as conn:
        body = log.entry_bytes(conn, index)
        proof = log.inclusion(conn, index, size)
    path.write_bytes(canonical({
        "format": ENTRY_FORMAT, "index": index, "entry": json.loads(body),
        "inclusion": _b64(proof), "checkpoint": note, "key": signer.vkey()}))
