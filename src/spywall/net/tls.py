"""The server name (SNI) of a TLS ClientHello at the start of a TCP stream (RFC 8446 4.1.2,
RFC 6066 section 3).

``client_hello_sni(prefix)`` looks at the first in-order bytes of one direction of a
stream. The ClientHello may span several handshake records; their fragments are joined
(bounded by ``MAX_HELLO``) before the extensions are walked.
"""

from __future__ import annotations

import struct

from spywall.errors import FormatError
from spywall.formats.reader import Reader

HANDSHAKE = 22
CLIENT_HELLO = 1
EXT_SERVER_NAME = 0
MAX_RECORD = (1 << 14) + 2048
MAX_HELLO = 1 << 16
MAX_EXTENSIONS = 512
NEED_MORE = "need-more"

_REC = struct.Struct("!BHH").unpack_from


def looks_like_tls(prefix: bytes) -> bool:
    """A handshake record header with a TLS 1.x / SSL 3 version."""
    return len(prefix) >= 3 and prefix[0] == HANDSHAKE and prefix[1] == 3 and prefix[2] <= 4


def _handshake_bytes(prefix: bytes) -> bytes | None:
    """The joined handshake fragments once the first message is complete, else None."""
    pos, parts, have = 0, [], 0
    need: int | None = None
    while pos + 5 <= len(prefix):
        ctype, _ver, length = _REC(prefix, pos)
        if ctype != HANDSHAKE:
            raise FormatError(f"TLS record type {ctype} before the ClientHello was complete")
        if length == 0 or length > MAX_RECORD:
            raise FormatError(f"TLS record length {length}")
        if pos + 5 + length > len(prefix):
            return None
        parts.append(prefix[pos + 5:pos + 5 + length])
        have += length
        pos += 5 + length
        if need is None and have >= 4:
            joined = b"".join(parts)
            need = 4 + int.from_bytes(joined[1:4], "big")
            if need > MAX_HELLO:
                raise FormatError(f"TLS handshake message of {need} bytes")
        if need is not None and have >= need:
            return b"".join(parts)
    return None


def client_hello_sni(prefix: bytes) -> str | None:
    """The SNI host name; None if the hello has none; ``NEED_MORE`` if it is incomplete.

    Raises ``FormatError`` for a stream that starts like TLS and then breaks its rules.
    """
    hs = _handshake_bytes(prefix)
    if hs is None:
        return NEED_MORE
    r = Reader(hs)
    if r.u8() != CLIENT_HELLO:
        return None
    length = int.from_bytes(r.read(3), "big")
    r = r.sub(length)
    r.skip(2 + 32)                     # legacy_version, random
    r.skip(r.u8())                     # legacy_session_id
    r.skip(r.u16be())                  # cipher_suites
    r.skip(r.u8())                     # legacy_compression_methods
    if r.remaining == 0:
        return None
    exts = r.sub(r.u16be())
    for _ in range(MAX_EXTENSIONS):
        if exts.remaining == 0:
            return None
        etype, body = exts.u16be(), exts.sub(exts.u16be())
        if etype == EXT_SERVER_NAME:
            return _server_name(body)
    raise FormatError(f"over {MAX_EXTENSIONS} TLS extensions")


def _server_name(body: Reader) -> str | None:
    names = body.sub(body.u16be())
    while names.remaining:
        kind, value = names.u8(), names.read(names.u16be())
        if kind == 0:
            try:
                return value.decode("ascii").rstrip(".").lower()
            except UnicodeDecodeError as exc:
                raise FormatError("TLS server name is not ASCII") from exc
    return None
