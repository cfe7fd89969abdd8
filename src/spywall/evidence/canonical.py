"""Canonical entry bytes and the RFC 9162 hashes: the only code the verifier shares with
the writer.

An entry is a JSON object; its bytes are its RFC 8785 (JSON Canonicalization Scheme)
serialisation. The Merkle tree hashes are those of RFC 9162 section 2.1.1 (the same as
RFC 6962): a leaf is ``SHA-256(0x00 || entry)``, an interior node
``SHA-256(0x01 || left || right)``, and the empty tree ``SHA-256()``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
# A canonical entry larger than this is refused (by the writer and by the verifier).
MAX_ENTRY_BYTES = 1 << 20


class CanonicalError(ValueError):
    """The value has no canonical JSON form (a float that is not finite, an integer
    beyond 2^53, a non-string key, a type JSON does not have) or is too large."""


_SAFE_INT = 2**53 - 1
_MAX_DEPTH = 64


def _plain(value: Any, depth: int = 0) -> bool:
    """True when ``json.dumps`` writes exactly the RFC 8785 form of ``value``: no floats
    (their ECMAScript form differs from Python's), integers within +-(2^53 - 1), object
    keys in ASCII (so code-point order is UTF-16 order), bounded depth. Strings need no
    check: both escape the same characters the same way (short forms for backspace, tab,
    newline, form feed, carriage return, quote and backslash; lowercase u00xx escapes for
    other control characters; everything else as UTF-8); a lone surrogate fails the UTF-8
    encoding and takes the slow path, which refuses it."""
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is int:
        return bool(-_SAFE_INT <= value <= _SAFE_INT)
    if depth >= _MAX_DEPTH:
        return False
    if t is list:
        return all(_plain(v, depth + 1) for v in value)
    if t is dict:
        return all(type(k) is str and k.isascii() and _plain(v, depth + 1)
                   for k, v in value.items())
    return False


def canonical(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value`` (``rfc8785``; ``json.dumps`` in C where the two
    give the same bytes: a property test compares them)."""
    data = b""
    if _plain(value):
        try:
            data = json.dumps(value, ensure_ascii=False, sort_keys=True,
                              separators=(",", ":")).encode()
        except UnicodeEncodeError:
            data = b""
    try:
        data = data or rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, RecursionError) as exc:
        raise CanonicalError(f"no canonical JSON form: {exc}") from exc
    if len(data) > MAX_ENTRY_BYTES:
        raise CanonicalError(f"canonical form is {len(data)} bytes (limit {MAX_ENTRY_BYTES})")
    return data


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()
