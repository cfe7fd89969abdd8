"""The witness cosigns only checkpoints consistent with the last one it cosigned: a log
that shows a forked history is refused, as is a rollback; cosignatures follow the
C2SP tlog-cosignature format and travel with the exported checkpoint."""

from __future__ import annotations

import base64
import hashlib
import struct
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from spywall import cli
from spywall.evidence import bundle, log, store, verify
from spywall.evidence.keys import Signer
from spywall.evidence.witness import Refused, open_source, witness

from .conftest import violation


def grow(engine: sa.Engine, key: Signer, entries: list[dict[str, object]]) -> str:
    with engine.begin() as conn:
        log.append(conn, entries)
        return log.checkpoint(conn, key)


def test_fork_is_refused(tmp_path: Path, key: Signer, witness_key: Signer) -> None:
    honest = store.open_engine(f"sqlite:///{tmp_path / 'a.db'}")
    forked = store.open_engine(f"sqlite:///{tmp_path / 'b.db'}")
    for e in (honest, forked):
        store.create(e)
    common = [violation(i) for i in range(5)]
    grow(honest, key, [*common, violation(5), violation(6)])
    grow(forked, key, [*common, violation(5), violation(66)])   # same size, other history
    state = tmp_path / "state"
    url_a, url_b = (f"sqlite:///{tmp_path / n}" for n in ("a.db", "b.db"))
    first = witness(open_source(url_a), witness_key, state, key.vkey())
    assert first.size == 7
    assert first.previous is None
    with pytest.raises(Refused, match="fork"):
        witness(open_source(url_b), witness_key, state)
    grow(forked, key, [violation(i) for i in range(7, 12)])     # larger, still forked
    with pytest.raises(Refused, match="fork"):
        witness(open_source(url_b), witness_key, state)
    grow(honest, key, [violation(i) for i in range(7, 12)])
    later = witness(open_source(url_a), witness_key, state)
    assert (later.size, later.previous) == (12, 7)
    # a stale checkpoint file (size 7) after cosigning 12: rollback
    old = tmp_path / "old.checkpoint"
    old.write_text(first.note.split("\u2014 witness")[0])
    with pytest.raises(Refused, match="rollback"):
        witness(open_source(str(old)), witness_key, state)
    # another log key: refused
    with pytest.raises(Refused):
        witness(open_source(url_a), witness_key, tmp_path / "s2", Signer.generate(
            key.name).vkey())


def test_cosignature_format(tmp_path: Path, key: Signer, witness_key: Signer) -> None:
    """Check the cosignature line by the C2SP spec, independently of verify.py."""
    engine = store.open_engine(f"sqlite:///{tmp_path / 'a.db'}")
    store.create(engine)
    grow(engine, key, [violation(1)])
    done = witness(open_source(f"sqlite:///{tmp_path / 'a.db'}"), witness_key,
                   tmp_path / "state", key.vkey(), now=1700000000)
    body = done.note.split("\n\n")[0] + "\n"
    line = done.note.rstrip("\n").split("\n")[-1]
    dash, name, blob = line.split(" ")
    assert dash == "\u2014"
    assert name == witness_key.name
    raw = base64.b64decode(blob)
    pub = witness_key.public
    assert raw[:4] == hashlib.sha256(name.encode() + b"\n\x04" + pub).digest()[:4]
    assert struct.unpack(">Q", raw[4:12])[0] == 1700000000
    Ed25519PublicKey.from_public_bytes(pub).verify(
        raw[12:], b"cosignature/v1\ntime 1700000000\n" + body.encode())
    # stored with the checkpoint; an export carries it; the verifier checks it
    bundle.export(engine, tmp_path / "b", key, witnesses=(witness_key.vkey(),), pdf=False)
    res = verify.verify_bundle(tmp_path / "b", key.vkey())
    assert res.status == verify.INTACT
    assert res.witnesses == [witness_key.vkey()]


def test_witness_cli_on_bundles(tmp_path: Path, key: Signer, witness_key: Signer) -> None:
    engine = store.open_engine(f"sqlite:///{tmp_path / 'a.db'}")
    store.create(engine)
    grow(engine, key, [violation(i) for i in range(3)])
    bundle.export(engine, tmp_path / "b1", key, pdf=False)
    grow(engine, key, [violation(i) for i in range(3, 9)])
    bundle.export(engine, tmp_path / "b2", key, pdf=False)
    wkey = tmp_path / "w.key"
    wkey.write_text(witness_key.text())
    args = ["evidence", "witness", "--key", str(wkey), "--state", str(tmp_path / "st"),
            "-f", "json"]
    assert cli.main([*args, "--log", str(tmp_path / "b1")]) == 0
    # b2 carries the consistency proof from size 3 (an earlier checkpoint)
    assert cli.main([*args, "--log", str(tmp_path / "b2"), "--out",
                     str(tmp_path / "cosigned")]) == 0
    assert (tmp_path / "cosigned").read_text().count("\u2014 ") == 2
    assert cli.main([*args, "--log", str(tmp_path / "b1")]) == 1       # rollback
