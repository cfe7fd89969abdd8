"""DNS messages (RFC 1035): the names asked and answered, for indicator matching.

Question names, answer/authority/additional owner names, the names inside CNAME, NS, PTR,
DNAME, MX and SRV data, and A/AAAA addresses. Names follow compression pointers with a cap
on hops and on total length, so pointer loops and deep chains end in ``FormatError``.
Over TCP, ``TcpFramer`` cuts each direction's bytes into messages by their length prefixes.
"""

from __future__ import annotations

import socket
import struct

import msgspec

from spywall.errors import FormatError, TruncatedError

MAX_QUESTIONS = 32
MAX_RECORDS = 512
MAX_POINTER_HOPS = 32
MAX_NAME = 255
# rtype -> offset of a domain name inside its RDATA
NAME_RDATA: dict[int, int] = {2: 0, 5: 0, 12: 0, 39: 0, 15: 2, 33: 6}
ADDR_RDATA: dict[int, tuple[int, socket.AddressFamily]] = {
    1: (4, socket.AF_INET), 28: (16, socket.AF_INET6)}

_HDR = struct.Struct("!HHHHHH").unpack_from
_RR = struct.Struct("!HHIH").unpack_from


class DnsMessage(msgspec.Struct):
    response: bool
    questions: list[str] = msgspec.field(default_factory=list)
    names: list[str] = msgspec.field(default_factory=list)       # owner names and names in RDATA
    addresses: list[str] = msgspec.field(default_factory=list)   # A / AAAA data


def read_name(msg: bytes, pos: int) -> tuple[str, int]:
    """The name at ``pos`` and the offset just after it in the message."""
    labels: list[str] = []
    length, hops, after = 0, 0, -1
    while True:
        if pos >= len(msg):
            raise TruncatedError(f"DNS name runs past the message at offset {pos}")
        n = msg[pos]
        if n == 0:
            pos += 1
            break
        kind = n & 0xC0
        if kind == 0xC0:
            if pos + 2 > len(msg):
                raise TruncatedError("DNS compression pointer cut short")
            hops += 1
            if hops > MAX_POINTER_HOPS:
                raise FormatError(f"DNS name over {MAX_POINTER_HOPS} compression pointers "
                                  "(a loop?)")
            if after < 0:
                after = pos + 2
            pos = ((n & 0x3F) << 8) | msg[pos + 1]
            continue
        if kind:
            raise FormatError(f"DNS label type {kind:#x} is not supported")
        end = pos + 1 + n
        if end > len(msg):
            raise TruncatedError("DNS label runs past the message")
        length += n + 1
        if length > MAX_NAME:
            raise FormatError(f"DNS name longer than {MAX_NAME} bytes")
        labels.append(msg[pos + 1:end].decode("ascii", "replace"))
        pos = end
    return ".".join(labels).lower(), after if after >= 0 else pos


def parse(msg: bytes) -> DnsMessage:
    """Parse one DNS message (UDP payload, or a TCP message without its length prefix)."""
    if len(msg) < 12:
        raise TruncatedError(f"DNS header needs 12 bytes, got {len(msg)}")
    _id, flags, qd, an, ns, ar = _HDR(msg, 0)
    if qd > MAX_QUESTIONS or an + ns + ar > MAX_RECORDS:
        raise FormatError(f"DNS counts {qd}/{an}/{ns}/{ar} over the caps")
    out = DnsMessage(response=bool(flags & 0x8000))
    pos = 12
    for _ in range(qd):
        name, pos = read_name(msg, pos)
        if pos + 4 > len(msg):
            raise TruncatedError("DNS question cut short")
        pos += 4
        out.questions.append(name)
    for _ in range(an + ns + ar):
        name, pos = read_name(msg, pos)
        if pos + 10 > len(msg):
            raise TruncatedError("DNS resource record header cut short")
        rtype, _cls, _ttl, rdlen = _RR(msg, pos)
        pos += 10
        if pos + rdlen > len(msg):
            raise TruncatedError(f"DNS RDATA of {rdlen} bytes runs past the message")
        if rtype != 41:   # OPT carries no owner name
            out.names.append(name)
        _rdata(msg, pos, rtype, rdlen, out)
        pos += rdlen
    return out


def _rdata(msg: bytes, pos: int, rtype: int, rdlen: int, out: DnsMessage) -> None:
    skip = NAME_RDATA.get(rtype)
    if skip is not None and rdlen > skip:
        out.names.append(read_name(msg, pos + skip)[0])
        return
    addr = ADDR_RDATA.get(rtype)
    if addr is not None and rdlen == addr[0]:
        out.addresses.append(socket.inet_ntop(addr[1], msg[pos:pos + rdlen]))


MAX_TCP_STREAMS = 256      # directions holding a partial message at once


class TcpFramer:
    """DNS over TCP (RFC 1035 4.2.2, RFC 7766 6.2): each message is preceded by a 2-byte
    length, and a segment may carry several messages, or a part of one. The in-order bytes
    of each direction are framed here; a partial message waits for the rest (at most
    2 + 65535 bytes per direction, ``MAX_TCP_STREAMS`` directions: the oldest is dropped,
    and ``feed`` says so). Every message is cut out, however many one chunk holds (the work
    is linear in the bytes; a cap here would let padding messages push a query past it)."""

    def __init__(self) -> None:
        self.partial: dict[tuple[str, int, str, int], bytes] = {}

    def feed(self, key: tuple[str, int, str, int], data: bytes
             ) -> tuple[list[bytes], list[str]]:
        """Whole messages completed by ``data`` (prefixes removed), and problems."""
        buf = self.partial.pop(key, b"") + data
        out: list[bytes] = []
        problems: list[str] = []
        pos = 0
        while len(buf) - pos >= 2:
            n = int.from_bytes(buf[pos : pos + 2], "big")
            if len(buf) - pos - 2 < n:
                break
            out.append(buf[pos + 2 : pos + 2 + n])
            pos += 2 + n
        if pos < len(buf):
            if len(self.partial) >= MAX_TCP_STREAMS:
                old = next(iter(self.partial))
                del self.partial[old]
                problems.append(f"over {MAX_TCP_STREAMS} DNS-over-TCP streams waiting for "
                                "the rest of a message; the oldest partial message dropped")
            self.partial[key] = buf[pos:]
        return out, problems

    def close(self, key: tuple[str, int, str, int]) -> None:
        self.partial.pop(key, None)
