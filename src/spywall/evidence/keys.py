"""Signing keys and signed notes (C2SP signed-note, tlog-checkpoint, tlog-cosignature).

A key has a name (a schema-less URL such as ``example.org/spywall-log``; for the log it is
the checkpoint's origin) and an Ed25519 key pair. Its key ID is the first four bytes of
``SHA-256(name || 0x0A || type || public key)``, where ``type`` is 0x01 for a note signer
(the log) and 0x04 for a timestamped witness cosigner.

Files and text forms (those of Go's ``golang.org/x/mod/sumdb/note``):
- signing key: ``PRIVATE+KEY+<name>+<key id, 8 hex digits>+<base64(type || seed)>``;
- verifier key (vkey): ``<name>+<key id, 8 hex digits>+<base64(type || public key)>``.

The signing key lives in a file (``--log-key PATH``) or in ``SPYWALL_LOG_KEY`` (the text
itself), never in the database.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

NOTE_SIGNER = 0x01
COSIGNER = 0x04
KEY_ENV = "SPYWALL_LOG_KEY"
_PREFIX = "PRIVATE+KEY+"
_TYPES = {NOTE_SIGNER: "log", COSIGNER: "witness"}


class KeyFileError(ValueError):
    """A key that cannot be read or used."""


def key_id(name: str, kind: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]


def _check_name(name: str) -> str:
    if not name or len(name) > 256 or any(c.isspace() or c == "+" or ord(c) < 0x20
                                          for c in name):
        raise KeyFileError(f"bad key name {name!r}: non-empty, no spaces or '+'")
    return name


class Signer:
    """An Ed25519 note signer (``kind`` 0x01) or witness cosigner (0x04)."""

    def __init__(self, name: str, private: Ed25519PrivateKey, kind: int = NOTE_SIGNER) -> None:
        if kind not in _TYPES:
            raise KeyFileError(f"unknown key type {kind:#x}")
        self.name = _check_name(name)
        self.kind = kind
        self._private = private
        self.public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.id = key_id(name, kind, self.public)

    @classmethod
    def generate(cls, name: str, kind: int = NOTE_SIGNER) -> Signer:
        return cls(name, Ed25519PrivateKey.generate(), kind)

    @classmethod
    def parse(cls, text: str) -> Signer:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or "+".join(parts[:2]) + "+" != _PREFIX:
            raise KeyFileError("not a signing key (PRIVATE+KEY+name+id+key)")
        name, hex_id, blob = parts[2], parts[3], parts[4]
        try:
            raw = base64.b64decode(blob, validate=True)
        except ValueError as exc:
            raise KeyFileError("signing key: bad base64") from exc
        if len(raw) != 33:
            raise KeyFileError("signing key: not an Ed25519 seed")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]), raw[0])
        if signer.id.hex() != hex_id:
            raise KeyFileError("signing key: key id does not match the key")
        return signer

    def text(self) -> str:
        seed = self._private.private_bytes(serialization.Encoding.Raw,
                                           serialization.PrivateFormat.Raw,
                                           serialization.NoEncryption())
        blob = base64.b64encode(bytes([self.kind]) + seed).decode()
        return f"{_PREFIX}{self.name}+{self.id.hex()}+{blob}"

    def vkey(self) -> str:
        blob = base64.b64encode(bytes([self.kind]) + self.public).decode()
        return f"{self.name}+{self.id.hex()}+{blob}"

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def signature_line(self, body: str, now: int | None = None) -> str:
        """The note signature line over ``body``: a plain Ed25519 signature for a log
        key, a timestamped ``cosignature/v1`` for a witness key."""
        if self.kind == COSIGNER:
            ts = int(time.time()) if now is None else now
            message = f"cosignature/v1\ntime {ts}\n".encode() + body.encode()
            sig = struct.pack(">Q", ts) + self.sign(message)
        else:
            sig = self.sign(body.encode())
        return f"\u2014 {self.name} {base64.b64encode(self.id + sig).decode()}\n"


def sign_note(body: str, signer: Signer) -> str:
    """A signed note: ``body`` (newline-terminated), a blank line, one signature line."""
    if not body.endswith("\n") or "\n\n" in body:
        raise KeyFileError("a note body ends in one newline and has no blank line")
    return body + "\n" + signer.signature_line(body)


def add_signature(note: str, signer: Signer, now: int | None = None) -> str:
    """``note`` with one more signature line (a witness cosignature, for example)."""
    body, sep, _ = note.rpartition("\n\n")
    if not sep:
        raise KeyFileError("not a signed note")
    return note + signer.signature_line(body + "\n", now)


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    """The C2SP tlog-checkpoint note text: origin, decimal size, base64 root hash."""
    return f"{_check_name(origin)}\n{size}\n{base64.b64encode(root).decode()}\n"


# Where the embedded default keeps its log key when none is given (beside the default
# sqlite:///spywall.db in the current folder); a platform gives its own with --log-key or
# SPYWALL_LOG_KEY, kept outside the database.
DEFAULT_KEY_FILE = "spywall-log.key"


def default_signer(folder: Path | None = None) -> Signer:
    """The log key in ``./spywall-log.key``, made there (owner-only) the first time."""
    path = (folder or Path.cwd()) / DEFAULT_KEY_FILE
    if not path.exists():
        import socket
        import sys

        name = f"{socket.gethostname() or 'localhost'}/spywall-log".replace(" ", "-")
        try:
            write_signer(Signer.generate(name), path)
        except FileExistsError:
            pass   # another process made it first: use theirs
        else:
            print(f"spywall: made a log signing key in {path} (keep it outside the "
                  "database; publish its verifier key)", file=sys.stderr)
    return load_signer(str(path))


def load_signer(path: str | None, kind: int = NOTE_SIGNER) -> Signer:
    """The signing key in ``path``, else in ``SPYWALL_LOG_KEY`` (log keys only)."""
    if path:
        try:
            text = Path(path).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyFileError(f"cannot read key {path}: {exc}") from exc
    elif kind == NOTE_SIGNER and os.environ.get(KEY_ENV):
        text = os.environ[KEY_ENV]
    else:
        raise KeyFileError("no signing key: give --log-key PATH or set SPYWALL_LOG_KEY"
                        if kind == NOTE_SIGNER else "no witness key: give --key PATH")
    signer = Signer.parse(text)
    if signer.kind != kind:
        raise KeyFileError(f"{path or KEY_ENV} is a {_TYPES[signer.kind]} key, "
                        f"not a {_TYPES[kind]} key")
    return signer


def write_signer(signer: Signer, path: Path) -> None:
    """Write a signing key to a new file readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(signer.text() + "\n")
