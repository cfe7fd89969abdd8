"""The independent verifier of an evidence bundle (or of one entry with its proof).

It needs nothing but the bundle (and, if the reader has one from elsewhere, the log's
public key), and shares no code with the writer beyond ``canonical`` (RFC 8785 bytes and
the RFC 9162 hashes). Read it top to bottom: it is what a court's expert would check.

A bundle is a folder (docs/evidence.md has the layout):

- ``keys.json``: ``{"log": [vkey, ...], "witnesses": [vkey, ...]}``, the log's keys in
  the order they were used; every change of key is a ``key-rotation`` entry, signed by
  the old key, and is in ``entries.jsonl``;
- ``checkpoint``: the signed checkpoint (C2SP tlog-checkpoint) all proofs lead to;
- ``entries.jsonl``: ``{"index", "entry", "inclusion"}`` a line, in log order;
- ``consistency.jsonl``: ``{"checkpoint", "proof"}`` a line: earlier checkpoints and the
  proof that the bundle's tree extends each of them;
- ``manifest.json``: every other file with its SHA-256 and size; ``manifest.sig``: a
  signed note over the manifest's hash, by the key that signed the checkpoint;
- ``report.html`` (and ``report.pdf``): the human-readable report, covered by the manifest.

Every JSON file and line must be exactly its canonical (RFC 8785) form, so that no byte
can change without the check noticing. Result: 0 intact, 1 changed (the first problem
is named), 2 not a bundle at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from spywall.evidence.canonical import (
    HASH_SIZE,
    MAX_ENTRY_BYTES,
    CanonicalError,
    canonical,
    leaf_hash,
    node_hash,
)

INTACT, CHANGED, NOT_A_BUNDLE = 0, 1, 2
BUNDLE_FORMAT = "spywall-evidence-bundle/1"
ENTRY_FORMAT = "spywall-evidence-entry/1"
BUNDLE_FILES = ("manifest.json", "manifest.sig", "checkpoint", "entries.jsonl",
                "consistency.jsonl", "keys.json")
MAX_PROOF = 64                  # hashes in a proof (a tree of 2^64 leaves)
MAX_SMALL_FILE = 1 << 20        # keys.json, checkpoint, manifest
MAX_NOTE = 64 << 10
MAX_SIGNATURES = 100
MAX_LINE = MAX_ENTRY_BYTES + 8192
MAX_PROBLEMS = 100
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


class Problem(ValueError):
    """One check that failed."""


# RFC 9162 2.1.3.2 and 2.1.4.2 ------------------------------------------------------------

def _hashes(proof: Any) -> list[bytes]:
    if not isinstance(proof, list) or len(proof) > MAX_PROOF:
        raise Problem("a proof is a list of at most 64 hashes")
    out = []
    for item in proof:
        try:
            raw = base64.b64decode(item, validate=True) if isinstance(item, str) else b""
        except ValueError:
            raw = b""
        if len(raw) != HASH_SIZE:
            raise Problem("a proof hash is not 32 bytes of base64")
        out.append(raw)
    return out


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes],
                     root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size or index < 0:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(size1: int, size2: int, proof: list[bytes], root1: bytes,
                       root2: bytes) -> bool:
    """RFC 9162 section 2.1.4.2, with the cases it leaves aside: equal sizes need equal
    roots and an empty proof; an empty first tree is consistent with any (empty proof)."""
    if size1 < 0 or size2 < size1:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == root1 and sr == root2 and sn == 0


# Keys and signed notes (C2SP signed-note, tlog-checkpoint, tlog-cosignature) ------------

@dataclass(frozen=True)
class VKey:
    text: str
    name: str
    id: bytes
    kind: int             # 0x01 note signer, 0x04 timestamped cosigner
    public: bytes


def parse_vkey(text: Any) -> VKey:
    if not isinstance(text, str) or text.count("+") < 2 or len(text) > 512:
        raise Problem("a verifier key is name+id+base64(type || key)")
    name, hex_id, blob = text.split("+", 2)
    try:
        raw = base64.b64decode(blob, validate=True)
        kid = bytes.fromhex(hex_id)
    except ValueError as exc:
        raise Problem(f"verifier key {name!r}: bad encoding") from exc
    if len(raw) != 33 or raw[0] not in (0x01, 0x04) or len(kid) != 4:
        raise Problem(f"verifier key {name!r}: not an Ed25519 key")
    want = hashlib.sha256(name.encode() + b"\n" + raw[:1] + raw[1:]).digest()[:4]
    if kid != want or not name or any(c.isspace() for c in name):
        raise Problem(f"verifier key {name!r}: key id does not match")
    return VKey(text, name, kid, raw[0], raw[1:])


def _valid(key: VKey, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(key.public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def open_note(text: str, keys: list[VKey]) -> tuple[str, set[str]]:
    """The note's text and the keys (vkey texts) whose signatures verified. A signature
    line of a known key that does not verify fails the note; unknown ones are ignored."""
    if len(text) > MAX_NOTE or any(ord(c) < 0x20 and c != "\n" for c in text):
        raise Problem("not a signed note (size or control characters)")
    cut = text.rfind("\n\n")
    if cut < 0 or not text.endswith("\n"):
        raise Problem("not a signed note (no blank line before the signatures)")
    body, lines = text[:cut + 1], text[cut + 2:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise Problem("too many signature lines")
    good: set[str] = set()
    for line in lines:
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014":
            raise Problem("malformed signature line")
        try:
            sig = base64.b64decode(parts[2], validate=True)
        except ValueError as exc:
            raise Problem("malformed signature line") from exc
        for key in keys:
            if key.name != parts[1] or sig[:4] != key.id:
                continue
            if key.kind == 0x04:
                ts = struct.unpack(">Q", sig[4:12])[0] if len(sig) == 76 else -1
                msg = f"cosignature/v1\ntime {ts}\n".encode() + body.encode()
                ok = len(sig) == 76 and _valid(key, sig[12:], msg)
            else:
                ok = len(sig) == 68 and _valid(key, sig[4:], body.encode())
            if not ok:
                raise Problem(f"signature of {key.name} does not verify")
            good.add(key.text)
    return body, good


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    body: str


def parse_checkpoint(body: str) -> Checkpoint:
    lines = body.split("\n")[:-1]
    if len(lines) < 3 or not lines[0] or not _DECIMAL.fullmatch(lines[1]):
        raise Problem("not a checkpoint (origin, size, root hash)")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except ValueError as exc:
        raise Problem("checkpoint root is not base64") from exc
    if len(root) != HASH_SIZE:
        raise Problem("checkpoint root is not 32 bytes")
    return Checkpoint(lines[0], int(lines[1]), root, body)


def rotation_message(origin: str, old_key: str, new_key: str, ts: str) -> bytes:
    return f"spywall key-rotation/v1\n{origin}\n{old_key}\n{new_key}\n{ts}\n".encode()


# Reading canonical JSON -------------------------------------------------------------------

def _canonical_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise Problem(f"{what}: not JSON") from exc
    if not isinstance(value, dict):
        raise Problem(f"{what}: not a JSON object")
    try:
        again = canonical(value)
    except CanonicalError as exc:
        raise Problem(f"{what}: {exc}") from exc
    if again != raw:
        raise Problem(f"{what}: not in canonical form (changed)")
    return value


def _read(path: Path, cap: int) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(cap + 1)
    except OSError as exc:
        raise Problem(f"{path.name}: cannot read ({exc.strerror})") from exc
    if len(data) > cap:
        raise Problem(f"{path.name}: larger than {cap} bytes")
    return data


def _lines(path: Path, cap: int) -> Iterator[tuple[int, bytes]]:
    """Numbered lines, each with its newline checked (a truncated file fails)."""
    try:
        f = path.open("rb")
    except OSError as exc:
        raise Problem(f"{path.name}: cannot read ({exc.strerror})") from exc
    with f:
        for number, line in enumerate(iter(lambda: f.readline(cap + 1), b""), 1):
            if len(line) > cap:
                raise Problem(f"{path.name} line {number}: longer than {cap} bytes")
            if not line.endswith(b"\n"):
                raise Problem(f"{path.name} line {number}: truncated (no newline)")
            yield number, line[:-1]


# The bundle -------------------------------------------------------------------------------

@dataclass
class Result:
    status: int
    problems: list[str] = field(default_factory=list)
    entries: int = 0
    tree_size: int = 0
    origin: str = ""
    trusted: str = ""
    witnesses: list[str] = field(default_factory=list)
    checkpoints: int = 0

    @property
    def first(self) -> str:
        return self.problems[0] if self.problems else ""


class _Bundle:
    def __init__(self, folder: Path, key: str | None) -> None:
        self.dir = folder
        self.result = Result(INTACT)
        self.anchor = key
        self.log_keys: list[VKey] = []
        self.witness_keys: list[VKey] = []
        self.rotations: list[tuple[int, dict[str, Any]]] = []
        self.chain: list[tuple[int, VKey]] = []      # (first size it signs, key)
        self.checkpoint: Checkpoint | None = None

    def problem(self, text: str) -> None:
        if len(self.result.problems) < MAX_PROBLEMS:
            self.result.problems.append(text)
        self.result.status = CHANGED

    def step(self, fn: Any) -> None:
        try:
            fn()
        except Problem as exc:
            self.problem(str(exc))

    def keys(self) -> None:
        doc = _canonical_object(_read(self.dir / "keys.json", MAX_SMALL_FILE), "keys.json")
        logs, wits = doc.get("log"), doc.get("witnesses", [])
        if not isinstance(logs, list) or not logs or not isinstance(wits, list):
            raise Problem("keys.json: needs a non-empty 'log' list and a 'witnesses' list")
        self.log_keys = [parse_vkey(k) for k in logs]
        self.witness_keys = [parse_vkey(k) for k in wits]
        if any(k.kind != 0x01 for k in self.log_keys) or \
                any(k.kind != 0x04 for k in self.witness_keys):
            raise Problem("keys.json: a log key is not a note key, or a witness key "
                          "not a cosignature key")

    def read_checkpoint(self) -> None:
        text = _read(self.dir / "checkpoint", MAX_NOTE).decode("utf-8", "strict")
        cut = text.rfind("\n\n")
        self.checkpoint = parse_checkpoint(text[:cut + 1] if cut >= 0 else text)
        self.result.tree_size = self.checkpoint.size
        self.result.origin = self.checkpoint.origin

    def entries(self) -> None:
        cp = self.checkpoint
        assert cp is not None
        last = -1
        for number, line in _lines(self.dir / "entries.jsonl", MAX_LINE):
            where = f"entries.jsonl line {number}"
            try:
                doc = _canonical_object(line, where)
                index, entry = doc.get("index"), doc.get("entry")
                if not isinstance(index, int) or not isinstance(entry, dict) \
                        or set(doc) != {"index", "entry", "inclusion"}:
                    raise Problem(f"{where}: needs exactly index, entry, inclusion")
                where = f"entry {index} ({where})"
                if index <= last:
                    raise Problem(f"{where}: out of order (after entry {last})")
                last = index
                proof = _hashes(doc["inclusion"])
                if not verify_inclusion(index, cp.size, leaf_hash(canonical(entry)),
                                        proof, cp.root):
                    raise Problem(f"{where}: not included in the checkpoint (the entry "
                                  "or its proof was changed)")
            except Problem as exc:
                msg = str(exc)
                raise Problem(msg if msg.startswith(("entry", "entries")) else
                              f"{where}: {msg}") from exc
            self.result.entries += 1
            if entry.get("kind") == "key-rotation":
                self.rotations.append((index, entry))

    def key_chain(self) -> None:
        """Follow the key rotations from the first key; the anchor must be in the chain."""
        cp = self.checkpoint
        assert cp is not None
        current = self.log_keys[0]
        chain = [(0, current)]
        for index, entry in self.rotations:
            old, new = entry.get("old_key"), entry.get("new_key")
            if old != current.text:
                raise Problem(f"entry {index}: key rotation from a key that is not the "
                              "current one")
            try:
                sig = base64.b64decode(str(entry.get("signature")), validate=True)
            except ValueError as exc:
                raise Problem(f"entry {index}: key rotation signature is not base64") from exc
            message = rotation_message(cp.origin, str(old), str(new), str(entry.get("ts")))
            if entry.get("origin") != cp.origin or not _valid(current, sig, message):
                raise Problem(f"entry {index}: key rotation not signed by the old key")
            current = parse_vkey(new)
            chain.append((index + 1, current))
        if [k.text for _, k in chain] != [k.text for k in self.log_keys]:
            raise Problem("keys.json: the log keys differ from the key rotations in the log")
        anchor = self.anchor or self.log_keys[0].text
        if anchor not in [k.text for k in self.log_keys]:
            raise Problem("the trusted key (--key) is not one of this log's keys")
        self.result.trusted = anchor
        self.chain = chain

    def key_at(self, size: int) -> VKey:
        key = self.chain[0][1]
        for first, k in self.chain:
            if size >= first:
                key = k
        return key

    def signed_checkpoint(self, text: str, what: str) -> tuple[Checkpoint, set[str]]:
        """The checkpoint in ``text`` signed by the key in use at its size, and the
        witness keys whose cosignatures verified."""
        _, _, size_line = text.partition("\n")
        first = size_line.split("\n", 1)[0]
        size = int(first) if _DECIMAL.fullmatch(first) else -1
        key = self.key_at(size)
        body, good = open_note(text, [key, *self.witness_keys])
        if key.text not in good:
            raise Problem(f"{what}: not signed by the log key in use at its size")
        cp = parse_checkpoint(body)
        if self.checkpoint is not None and cp.origin != self.checkpoint.origin:
            raise Problem(f"{what}: another log's checkpoint ({cp.origin})")
        return cp, good - {key.text}

    def the_checkpoint(self) -> None:
        text = _read(self.dir / "checkpoint", MAX_NOTE).decode("utf-8", "strict")
        _, witnesses = self.signed_checkpoint(text, "checkpoint")
        self.result.witnesses = sorted(witnesses)

    def manifest(self) -> None:
        cp = self.checkpoint
        assert cp is not None
        raw = _read(self.dir / "manifest.json", MAX_SMALL_FILE)
        doc = _canonical_object(raw, "manifest.json")
        files = doc.get("files")
        if doc.get("format") != BUNDLE_FORMAT or doc.get("origin") != cp.origin \
                or doc.get("tree_size") != cp.size or not isinstance(files, dict):
            raise Problem("manifest.json: not this bundle's manifest")
        present = {p.name for p in self.dir.iterdir()} - {"manifest.json", "manifest.sig"}
        for name in sorted(present - set(files)):
            self.problem(f"{name}: not in the manifest (added)")
        for name, want in sorted(files.items()):
            path = self.dir / name
            if name not in present or not path.is_file():
                self.problem(f"{name}: missing (removed)")
                continue
            digest, size = hashlib.sha256(), 0
            with path.open("rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
                    size += len(block)
            if not isinstance(want, dict) or want.get("sha256") != digest.hexdigest() \
                    or want.get("size") != size:
                self.problem(f"{name}: differs from the manifest (changed)")
        note = _read(self.dir / "manifest.sig", MAX_NOTE).decode("utf-8", "strict")
        key = self.key_at(cp.size)
        body, good = open_note(note, [key])
        want_body = (f"{BUNDLE_FORMAT}\n{cp.origin}\n{cp.size}\n"
                     f"{hashlib.sha256(raw).hexdigest()}\n")
        if key.text not in good or body != want_body:
            raise Problem("manifest.sig: not the log key's signature of this manifest")

    def consistency(self) -> None:
        cp = self.checkpoint
        assert cp is not None
        last = -1
        for number, line in _lines(self.dir / "consistency.jsonl", MAX_NOTE + 8192):
            where = f"consistency.jsonl line {number}"
            doc = _canonical_object(line, where)
            if set(doc) != {"checkpoint", "proof"} or not isinstance(doc["checkpoint"], str):
                raise Problem(f"{where}: needs exactly checkpoint and proof")
            try:
                old, _ = self.signed_checkpoint(doc["checkpoint"], where)
                proof = _hashes(doc["proof"])
            except Problem as exc:
                raise Problem(f"{where}: {exc}") from exc
            if old.size <= last or old.size > cp.size:
                raise Problem(f"{where}: checkpoints out of order")
            last = old.size
            if not verify_consistency(old.size, cp.size, proof, old.root, cp.root):
                raise Problem(f"{where}: the checkpoint of size {old.size} is not "
                              "consistent with the bundle's checkpoint")
            self.result.checkpoints += 1

    def run(self) -> Result:
        for first in (self.keys, self.read_checkpoint):
            self.step(first)
            if self.result.problems:
                return self.result
        self.step(self.entries)
        self.step(self.key_chain)
        if self.chain:
            for step in (self.the_checkpoint, self.manifest, self.consistency):
                self.step(step)
        return self.result


def verify_bundle(folder: Path, key: str | None = None) -> Result:
    """Check a bundle folder; ``key`` is a log verifier key obtained independently."""
    if not folder.is_dir() or not any((folder / n).exists() for n in BUNDLE_FILES):
        return Result(NOT_A_BUNDLE, [f"{folder}: not an evidence bundle"])
    try:
        return _Bundle(folder, key).run()
    except UnicodeDecodeError:
        return Result(CHANGED, ["a note is not UTF-8 (changed)"])


def verify_entry(path: Path, key: str | None = None) -> Result:
    """Check one entry file: ``{"checkpoint", "entry", "format", "inclusion", "index",
    "key"}`` (canonical JSON); ``key`` (or the file's own, less trustworthy) must have
    signed the checkpoint."""
    try:
        raw = _read(path, MAX_LINE + MAX_NOTE)
    except Problem as exc:
        return Result(NOT_A_BUNDLE, [str(exc)])
    if not raw.startswith(b'{"checkpoint":'):
        return Result(NOT_A_BUNDLE, [f"{path}: not an evidence entry file"])
    result = Result(INTACT)
    try:
        doc = _canonical_object(raw, path.name)
        if doc.get("format") != ENTRY_FORMAT or not isinstance(doc.get("entry"), dict) \
                or not isinstance(doc.get("index"), int):
            raise Problem(f"{path.name}: not an {ENTRY_FORMAT} file")
        vkey = parse_vkey(key or doc.get("key"))
        result.trusted = vkey.text
        body, good = open_note(str(doc.get("checkpoint")), [vkey])
        if vkey.text not in good:
            raise Problem("checkpoint: not signed by the trusted key")
        cp = parse_checkpoint(body)
        result.tree_size, result.origin = cp.size, cp.origin
        index = doc["index"]
        if not verify_inclusion(index, cp.size, leaf_hash(canonical(doc["entry"])),
                                _hashes(doc.get("inclusion")), cp.root):
            raise Problem(f"entry {index}: not included in the checkpoint")
        result.entries = 1
    except Problem as exc:
        result.status, result.problems = CHANGED, [str(exc)]
    except UnicodeDecodeError:
        result.status, result.problems = CHANGED, ["not UTF-8 (changed)"]
    return result


def verify_path(path: Path, key: str | None = None) -> Result:
    return verify_entry(path, key) if path.is_file() else verify_bundle(path, key)
