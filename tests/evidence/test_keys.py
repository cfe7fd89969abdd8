"""Keys and signed notes by the C2SP signed-note spec (checked with the cryptography
library directly), key files, rotation, and the verifier's independence from the
writer."""

from __future__ import annotations

import ast
import base64
import hashlib
import re
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import spywall.evidence.verify as verify_module
from spywall.evidence import kinds, log
from spywall.evidence.keys import (
    COSIGNER,
    KEY_ENV,
    KeyFileError,
    Signer,
    checkpoint_body,
    load_signer,
    sign_note,
    write_signer,
)
from spywall.evidence.verify import Problem, open_note, parse_vkey

from .conftest import ORIGIN, violation


def test_signed_note_by_the_spec(key: Signer) -> None:
    body = checkpoint_body(ORIGIN, 5, bytes(range(32)))
    assert body == f"{ORIGIN}\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    note = sign_note(body, key)
    text, sep, sig_line = note.partition("\n\n")
    assert text + "\n" == body
    assert sep
    dash, name, blob = sig_line.rstrip("\n").split(" ")
    assert dash == "\u2014"
    assert name == ORIGIN
    raw = base64.b64decode(blob)
    assert raw[:4] == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + key.public).digest()[:4]
    Ed25519PublicKey.from_public_bytes(key.public).verify(raw[4:], body.encode())
    # the verifier: the key verifies, a changed body fails, an unknown key is ignored
    vkey = parse_vkey(key.vkey())
    assert open_note(note, [vkey])[1] == {key.vkey()}
    with pytest.raises(Problem):
        open_note(note.replace("\n5\n", "\n6\n"), [vkey])
    assert open_note(note, [parse_vkey(Signer.generate(ORIGIN).vkey())])[1] == set()


def test_key_files(tmp_path: Path, key: Signer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert re.fullmatch(r"PRIVATE\+KEY\+[^+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+", key.text())
    path = tmp_path / "k"
    write_signer(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_signer(key, path)
    assert load_signer(str(path)).vkey() == key.vkey()
    monkeypatch.setenv(KEY_ENV, key.text())
    assert load_signer(None).vkey() == key.vkey()
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(KeyFileError):
        load_signer(None)
    with pytest.raises(KeyFileError):
        load_signer(str(path), COSIGNER)           # a log key is not a witness key
    tampered = key.text()[:-6] + ("A" if key.text()[-6] != "A" else "B") + key.text()[-5:]
    with pytest.raises(KeyFileError):
        Signer.parse(tampered)
    for bad in ("", "bad name", "a+b"):
        with pytest.raises(KeyFileError):
            Signer.generate(bad)


def test_rotation_changes_the_signing_key(sqlite_log: sa.Engine, key: Signer) -> None:
    new = Signer.generate(ORIGIN)
    with sqlite_log.begin() as conn:
        log.append(conn, [violation(0)])
        log.checkpoint(conn, key)
        index = log.rotate_key(conn, key, new)
    assert index == 1
    with sqlite_log.begin() as conn:
        log.append(conn, [violation(1)])
        with pytest.raises(log.LogError):
            log.checkpoint(conn, key)
    with sqlite_log.begin() as conn:
        assert log.checkpoint(conn, new).split("\n")[1] == "3"
        with pytest.raises(log.LogError):
            log.rotate_key(conn, key, Signer.generate(ORIGIN))   # old key no longer in use
        with pytest.raises(log.LogError):
            log.rotate_key(conn, new, Signer.generate("other.example/log"))


def test_verifier_shares_only_canonical_with_the_writer() -> None:
    tree = ast.parse(Path(verify_module.__file__).read_text())
    spywall_imports = {node.module for node in ast.walk(tree)
                       if isinstance(node, ast.ImportFrom) and node.module
                       and node.module.startswith("spywall")}
    assert spywall_imports == {"spywall.evidence.canonical"}


def test_docs_list_every_kind() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "evidence.md").read_text()
    for kind, fields in kinds.KINDS.items():
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{kind}` |"))
        for name in fields:
            assert f"`{name}`" in row, (kind, name)
