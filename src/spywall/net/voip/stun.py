"""STUN messages (RFC 8489) and TURN ChannelData (RFC 8656 12.4).

``parse_stun`` accepts anything with the STUN shape (first two bits zero, the magic cookie)
and reports every rule the message breaks as ``Anomaly`` values; ``check_channel_data``
does the same for ChannelData and hands back the relayed payload.
"""

from __future__ import annotations

import struct
import zlib

import msgspec

from spywall.errors import FormatError
from spywall.net.voip.rules import Anomaly

MAGIC_COOKIE = 0x2112A442
FINGERPRINT_XOR = 0x5354554E
HEADER = 20
MESSAGE_INTEGRITY = 0x0008
MESSAGE_INTEGRITY_SHA256 = 0x001C
FINGERPRINT = 0x8028
AFTER_INTEGRITY = frozenset({MESSAGE_INTEGRITY_SHA256, FINGERPRINT})
# Attribute type -> the lengths it may have.
FIXED_SIZES: dict[int, frozenset[int]] = {
    MESSAGE_INTEGRITY: frozenset({20}),
    MESSAGE_INTEGRITY_SHA256: frozenset({16, 20, 24, 28, 32}),
    FINGERPRINT: frozenset({4}),
}
CHANNEL_MIN, CHANNEL_MAX = 0x4000, 0x7FFF
_HDR = struct.Struct(">HHI12s")
_ATTR = struct.Struct(">HH")


class StunMessage(msgspec.Struct, frozen=True):
    msg_type: int
    length: int
    transaction: bytes
    attributes: tuple[tuple[int, int, int], ...]  # (type, value offset, value length)
    anomalies: tuple[Anomaly, ...]


def is_stun(p: bytes) -> bool:
    return len(p) >= HEADER and p[0] < 0x40 and p[4:8] == b"\x21\x12\xa4\x42"


def parse_stun(p: bytes) -> StunMessage:
    """Decode a STUN message; ``FormatError`` if ``p`` does not have the STUN shape."""
    if not is_stun(p):
        raise FormatError("not a STUN message (no magic cookie)")
    msg_type, length, _, txid = _HDR.unpack_from(p)
    n = len(p)
    out: list[Anomaly] = []
    if length != n - HEADER or length % 4:
        out.append(Anomaly("voip-stun-length", f"STUN length field {length}, datagram carries "
                           f"{n - HEADER} bytes after the header",
                           {"declared": length, "actual": n - HEADER}))
    end = min(HEADER + length, n)
    attrs: list[tuple[int, int, int]] = []
    off, integrity, fingerprint = HEADER, False, False
    while off < end:
        if off + 4 > end:
            out.append(Anomaly("voip-stun-attribute", f"attribute header at {off} runs past the "
                               f"message end at {end}", {"offset": off, "end": end}))
            break
        atype, alen = _ATTR.unpack_from(p, off)
        if off + 4 + alen > end:
            out.append(Anomaly("voip-stun-attribute", f"attribute 0x{atype:04x} of length {alen} "
                               f"at {off} runs past the message end at {end}",
                               {"offset": off, "type": atype, "length": alen, "end": end}))
            break
        sizes = FIXED_SIZES.get(atype)
        if sizes is not None and alen not in sizes:
            out.append(Anomaly("voip-stun-attribute", f"attribute 0x{atype:04x} has length {alen}",
                               {"offset": off, "type": atype, "length": alen}))
        if fingerprint or (integrity and atype not in AFTER_INTEGRITY):
            out.append(Anomaly("voip-stun-order", f"attribute 0x{atype:04x} at {off} follows "
                               f"{'FINGERPRINT' if fingerprint else 'MESSAGE-INTEGRITY'}",
                               {"offset": off, "type": atype}))
        if atype == MESSAGE_INTEGRITY:
            integrity = True
        elif atype == FINGERPRINT and alen == 4:
            fingerprint = True
            got = int.from_bytes(p[off + 4 : off + 8], "big")
            want = fingerprint_of(p[:off])
            if got != want:
                out.append(Anomaly("voip-stun-fingerprint", f"FINGERPRINT 0x{got:08x}, the "
                                   f"message gives 0x{want:08x}",
                                   {"offset": off, "declared": got, "computed": want}))
        attrs.append((atype, off + 4, alen))
        off += 4 + ((alen + 3) & ~3)
    return StunMessage(msg_type, length, txid, tuple(attrs), tuple(out))


def fingerprint_of(prefix: bytes) -> int:
    """The FINGERPRINT value for a message whose bytes before the attribute are ``prefix``."""
    return (zlib.crc32(prefix) ^ FINGERPRINT_XOR) & 0xFFFFFFFF


def check_channel_data(p: bytes, *, stream: bool = False) -> tuple[bytes, list[Anomaly]]:
    """(relayed application data, anomalies) of a ChannelData message.

    Over UDP the padding to 4 bytes is optional, so up to 3 extra bytes are accepted; over
    a stream (``stream=True``) only the declared length matters. ``FormatError`` if shorter
    than the 4-byte header.
    """
    n = len(p)
    if n < 4:
        raise FormatError(f"ChannelData of {n} bytes has no header")
    channel, length = _ATTR.unpack_from(p)
    out: list[Anomaly] = []
    if not CHANNEL_MIN <= channel <= CHANNEL_MAX:
        out.append(Anomaly("voip-turn-channel", f"channel number 0x{channel:04x} outside "
                           "0x4000-0x7FFF", {"channel": channel}))
    if 4 + length > n or (not stream and n - 4 - length > 3):
        out.append(Anomaly("voip-turn-channel", f"ChannelData length {length}, datagram carries "
                           f"{n - 4} bytes of data", {"declared": length, "actual": n - 4,
                                                       "channel": channel}))
    return p[4 : 4 + length], out
