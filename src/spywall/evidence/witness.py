"""A witness: cosigns a log's checkpoint only if it is consistent with the last one it
cosigned (C2SP tlog-cosignature, timestamped Ed25519 ``cosignature/v1``).

A log that shows one history to one reader and another to a second cannot get both
cosigned by the same witness: the second view is either older than what the witness saw
(refused), the same size with another root (a fork, refused), or larger without a valid
consistency proof from what it saw (refused). Readers who require cosignatures from
witnesses they trust are therefore all shown the same history.

The witness checks with the verifier's code (``verify``), not the writer's. Its state is
one JSON file per log origin in ``--state DIR``, written (atomically) before the
cosignature is handed out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spywall.evidence import verify
from spywall.evidence.keys import Signer, add_signature

ProofSource = Callable[[int, int], list[bytes] | None]


class Refused(ValueError):
    """The checkpoint is not cosigned (and why)."""


@dataclass
class Source:
    note: str
    proof: ProofSource
    log_key: str | None          # the key the source says signs it (trust on first use)
    store: Callable[[int, str], None] | None = None


def _db_source(url: str) -> Source:
    import sqlalchemy as sa

    from spywall.evidence import log, store
    from spywall.evidence.tables import log_checkpoints, log_head

    engine = store.open_engine(url)
    with engine.connect() as conn:
        note = conn.execute(sa.select(log_checkpoints.c.note)
                            .order_by(log_checkpoints.c.size.desc()).limit(1)).scalar()
        key = conn.execute(sa.select(log_head.c.key)).scalar()
    if note is None:
        raise Refused(f"{url}: the log has no checkpoint yet")

    def proof(old: int, new: int) -> list[bytes]:
        with engine.connect() as conn:
            return log.consistency(conn, old, new)

    def keep(size: int, cosigned: str) -> None:
        with engine.begin() as conn:
            log.add_cosignatures(conn, size, cosigned)

    return Source(str(note), proof, key, keep)


def _bundle_source(folder: Path) -> Source:
    note = (folder / "checkpoint").read_text(encoding="utf-8")
    proofs: dict[int, list[bytes]] = {}
    cons = folder / "consistency.jsonl"
    if cons.exists():
        for line in cons.read_text(encoding="utf-8").splitlines()[:verify.MAX_SIGNATURES * 10]:
            doc = json.loads(line)
            size = int(doc["checkpoint"].split("\n")[1])
            proofs[size] = [base64.b64decode(h) for h in doc["proof"]]
    keys = json.loads((folder / "keys.json").read_text(encoding="utf-8"))
    return Source(note, lambda old, new: proofs.get(old), keys["log"][-1])


def open_source(source: str) -> Source:
    """A database URL, a bundle folder, or a file holding one checkpoint note."""
    if "://" in source:
        return _db_source(source)
    path = Path(source)
    try:
        if path.is_dir():
            return _bundle_source(path)
        return Source(path.read_text(encoding="utf-8"), lambda old, new: None, None)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise Refused(f"{source}: cannot read a checkpoint ({exc})") from exc


def _state_path(state: Path, origin: str) -> Path:
    return state / (hashlib.sha256(origin.encode()).hexdigest()[:24] + ".json")


def _write_state(path: Path, doc: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(doc, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


@dataclass
class Cosigned:
    note: str
    origin: str
    size: int
    previous: int | None


def witness(source: Source, cosigner: Signer, state: Path, log_key: str | None = None,
            now: int | None = None) -> Cosigned:
    """Check ``source``'s checkpoint against the state and cosign it (or raise Refused)."""
    state.mkdir(parents=True, exist_ok=True)
    try:
        cut = source.note.rfind("\n\n")
        origin = source.note[:cut].split("\n", 1)[0]
        path = _state_path(state, origin)
        seen = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        trusted = log_key or (seen or {}).get("log_key") or source.log_key
        if not trusted:
            raise Refused("no log key: give --log-vkey")
        vkey = verify.parse_vkey(trusted)
        body, good = verify.open_note(source.note, [vkey])
        if vkey.text not in good:
            raise Refused("the checkpoint is not signed by the log key")
        cp = verify.parse_checkpoint(body)
        previous = None
        if seen is not None:
            previous = int(seen["size"])
            old_root = base64.b64decode(seen["root"])
            if cp.size < previous:
                raise Refused(f"rollback: size {cp.size} is smaller than the {previous} "
                              "already cosigned")
            if cp.size == previous and cp.root != old_root:
                raise Refused(f"fork: another root for size {cp.size} than the one cosigned")
            if cp.size > previous:
                proof = source.proof(previous, cp.size)
                if proof is None:
                    raise Refused(f"no consistency proof from the cosigned size {previous}")
                if not verify.verify_consistency(previous, cp.size, proof, old_root, cp.root):
                    raise Refused(f"fork: size {cp.size} is not consistent with the "
                                  f"cosigned size {previous}")
    except verify.Problem as exc:
        raise Refused(str(exc)) from exc
    _write_state(path, {"origin": cp.origin, "size": cp.size,
                        "root": base64.b64encode(cp.root).decode(), "log_key": vkey.text})
    cosigned = add_signature(source.note, cosigner, now)
    if source.store is not None:
        source.store(cp.size, cosigned)
    return Cosigned(cosigned, cp.origin, cp.size, previous)
