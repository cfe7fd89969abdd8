"""Canonical entry bytes and the RFC 9162 hashes: the only code the verifier shares with
the writer.

An entry is a JSON object; its bytes are its RFC 8785 (JSON Canonicalization Scheme)
serialisation. The Merkle tree hashes are those of RFC 9162 section 2.1.1 (the same as
RFC 6962): a leaf is ``SHA-256(0x00 || entry)``, an interior node
``SHA-256(0x01 || left || right)``, and the empty tree ``SHA-256()``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
# A canonical entry larger than this is refused (by the writer and by the verifier).
MAX_ENTRY_BYTES = 1 << 20


class CanonicalError(ValueError):
    """The value has no canonical JSON form (a float that is not finite, an integer
    beyond 2^53, a non-string key, a type JSON does not have) or is too large."""


def canonical(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value``."""
    try:
        data = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, RecursionError) as exc:
        raise CanonicalError(f"no canonical JSON form: {exc}") from exc
    if len(data) > MAX_ENTRY_BYTES:
        raise CanonicalError(f"canonical form is {len(data)} bytes (limit {MAX_ENTRY_BYTES})")
    return data


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()
