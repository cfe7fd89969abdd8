"""The DTLS-SRTP protection profile a DTLS 1.2 ServerHello picks (RFC 5764 4.1.1).

``srtp_profile`` walks the records of one datagram (RFC 6347 4.1, 4.2.2) to an unfragmented
ServerHello and reads its ``use_srtp`` extension: the chosen profile and the MKI length.
Everything is bounded by the datagram; anything else (other messages, fragments, DTLS 1.3
where the extension travels encrypted) gives None.
"""

from __future__ import annotations

HANDSHAKE = 22
SERVER_HELLO = 2
USE_SRTP = 14
RECORD_HEADER = 13
HANDSHAKE_HEADER = 12
MAX_RECORDS = 16


def srtp_profile(p: bytes) -> tuple[int, int] | None:
    """(protection profile, MKI length) from a ServerHello in ``p``, or None."""
    pos = 0
    for _ in range(MAX_RECORDS):
        if len(p) - pos < RECORD_HEADER:
            return None
        length = int.from_bytes(p[pos + 11 : pos + 13], "big")
        body = p[pos + RECORD_HEADER : pos + RECORD_HEADER + length]
        if (
            p[pos] == HANDSHAKE
            and len(body) == length
            and len(body) >= HANDSHAKE_HEADER
            and body[0] == SERVER_HELLO
        ):
            size = int.from_bytes(body[1:4], "big")
            offset = int.from_bytes(body[6:9], "big")
            frag = int.from_bytes(body[9:12], "big")
            if offset == 0 and frag == size and HANDSHAKE_HEADER + size <= len(body):
                return _use_srtp(body[HANDSHAKE_HEADER : HANDSHAKE_HEADER + size])
            return None
        pos += RECORD_HEADER + length
    return None


def _use_srtp(hello: bytes) -> tuple[int, int] | None:
    pos = 2 + 32  # server_version, random
    if pos >= len(hello):
        return None
    pos += 1 + hello[pos] + 2 + 1  # session_id, cipher_suite, compression_method
    if pos + 2 > len(hello):
        return None
    end = min(len(hello), pos + 2 + int.from_bytes(hello[pos : pos + 2], "big"))
    pos += 2
    while pos + 4 <= end:
        etype = int.from_bytes(hello[pos : pos + 2], "big")
        elen = int.from_bytes(hello[pos + 2 : pos + 4], "big")
        data = hello[pos + 4 : pos + 4 + elen]
        if etype == USE_SRTP:
            if len(data) < 5 or len(data) != elen:
                return None
            plen = int.from_bytes(data[:2], "big")
            if plen != 2 or 2 + plen >= len(data):  # the server picks exactly one
                return None
            return int.from_bytes(data[2:4], "big"), data[4]
        pos += 4 + elen
    return None
