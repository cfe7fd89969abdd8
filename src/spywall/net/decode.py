"""Link, IP and transport decoding of captured frames into ``Datagram`` objects.

Link types (tcpdump.org LINKTYPE values): Ethernet (1) with any stack of 802.1Q / 802.1ad /
QinQ tags, Linux cooked capture SLL (113) and SLL2 (276), raw IP (101, 228 IPv4, 229 IPv6),
BSD loopback / null (0, host byte order) and OpenBSD loop (108, network byte order).
IPv4 with options (checked for shape), IPv6 with its extension headers walked (bounded),
fragments of either reassembled by ``reassembly.Fragments``; UDP; TCP in-order bytes per
direction through ``reassembly.TcpStreams``.

The hot path (an unfragmented UDP packet) costs a handful of ``struct.unpack_from`` calls,
two dictionary look-ups for the address text and one ``Datagram``.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

from spywall.net.packet import Datagram
from spywall.net.reassembly import Fragments, TcpStreams

ErrorSink = Callable[[int, str, str], None]                       # frame, code, message
FindingSink = Callable[[str, str, Datagram], None]                # rule, message, where
AddressSink = Callable[[Datagram, list[str]], None]               # where, new addresses
TRANSPORT_NAMES = {6: "tcp", 17: "udp"}

MAX_VLAN_TAGS = 8
MAX_IPV6_EXT = 16
MAX_NAMES = 1 << 16
VLAN_TYPES = frozenset({0x8100, 0x88A8, 0x9100, 0x9200})
IP_TYPES = frozenset({0x0800, 0x86DD})
NULL_FAMILIES = frozenset({2, 10, 24, 28, 30})   # AF_INET, AF_INET6 on Linux/BSDs/Darwin
NOT_IP, CUT = -1, -2

_H = struct.Struct("!H").unpack_from
_V4 = struct.Struct("!BBHHHBB").unpack_from
_V6 = struct.Struct("!HB").unpack_from
_UDP = struct.Struct("!HHH").unpack_from
_TCP = struct.Struct("!HHIIBB").unpack_from
_FRAG6 = struct.Struct("!HI").unpack_from
_FAST = struct.Struct("!BBHHHBB2x4s4sHHH").unpack_from   # IPv4 without options + UDP
_PORTS = struct.Struct("!HH").unpack_from
_FAMILY_LE = struct.Struct("<I").unpack_from
_FAMILY_BE = struct.Struct(">I").unpack_from


def link_ethernet(data: bytes) -> int:
    if len(data) < 14:
        return CUT
    et, off = _H(data, 12)[0], 14
    for _ in range(MAX_VLAN_TAGS):
        if et not in VLAN_TYPES:
            break
        if len(data) < off + 4:
            return CUT
        et, off = _H(data, off + 2)[0], off + 4
    return off if et in IP_TYPES else NOT_IP


def link_sll(data: bytes) -> int:
    if len(data) < 16:
        return CUT
    return 16 if _H(data, 14)[0] in IP_TYPES else NOT_IP


def link_sll2(data: bytes) -> int:
    if len(data) < 20:
        return CUT
    return 20 if _H(data, 0)[0] in IP_TYPES else NOT_IP


def link_raw(data: bytes) -> int:
    return 0


def link_null(data: bytes) -> int:
    if len(data) < 4:
        return CUT
    fam = _FAMILY_LE(data, 0)[0]
    return 4 if fam in NULL_FAMILIES or _FAMILY_BE(data, 0)[0] in NULL_FAMILIES else NOT_IP


def link_loop(data: bytes) -> int:
    if len(data) < 4:
        return CUT
    return 4 if _FAMILY_BE(data, 0)[0] in NULL_FAMILIES else NOT_IP


LINKS: dict[int, Callable[[bytes], int]] = {
    1: link_ethernet, 113: link_sll, 276: link_sll2, 101: link_raw, 228: link_raw,
    229: link_raw, 12: link_raw, 14: link_raw, 0: link_null, 108: link_loop,
}

# The fast path: link type -> (offset of an IPv4 header, offset of its EtherType or -1)
FAST_IPV4: dict[int, tuple[int, int]] = {1: (14, 12), 113: (16, 14), 276: (20, 0),
                                         101: (0, -1), 228: (0, -1)}

# IPv6 extension headers: next-header value -> header length from its length byte
IPV6_EXT: dict[int, Callable[[int], int]] = {
    0: lambda n: (n + 1) * 8, 43: lambda n: (n + 1) * 8, 60: lambda n: (n + 1) * 8,
    135: lambda n: (n + 1) * 8, 139: lambda n: (n + 1) * 8, 140: lambda n: (n + 1) * 8,
    253: lambda n: (n + 1) * 8, 254: lambda n: (n + 1) * 8, 51: lambda n: (n + 2) * 4,
}
IPV6_FRAGMENT = 44


def ipv4_options_problem(data: bytes, pos: int, end: int) -> str | None:
    """Why the IPv4 options in ``data[pos:end]`` are malformed, or None."""
    while pos < end:
        kind = data[pos]
        if kind == 0:
            return None
        if kind == 1:
            pos += 1
            continue
        if pos + 1 >= end:
            return f"IPv4 option {kind} has no length byte"
        length = data[pos + 1]
        if length < 2 or pos + length > end:
            return f"IPv4 option {kind} length {length} does not fit the header"
        pos += length
    return None


class Decoder:
    """Decodes frames; holds the bounded reassembly state of one capture."""

    def __init__(self, on_error: ErrorSink, on_finding: FindingSink,
                 on_address: AddressSink | None = None) -> None:
        self.on_error, self.on_finding, self.on_address = on_error, on_finding, on_address
        self.fresh: list[str] = []
        self.frags = Fragments()
        self.streams = TcpStreams()
        self.names: dict[bytes, str] = {}
        self.unknown_links: set[int] = set()
        self.transports: dict[int, Callable[[int, float, str, str, bytes, int, int],
                                            Datagram | None]] = {
            17: self._udp, 6: self._tcp}

    def _name(self, raw: bytes) -> str:
        text = self.names.get(raw)
        if text is None:
            if len(self.names) >= MAX_NAMES:
                self.names.clear()
            family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
            text = self.names[raw] = socket.inet_ntop(family, raw)
            self.fresh.append(text)
        return text

    def _announce(self, frame: int, ts: float, src: str, dst: str, proto: int, data: bytes,
                  l4: int, end: int) -> None:
        """Tell ``on_address`` about addresses seen for the first time (IOC checks), with
        the ports when the packet starts a UDP or TCP header."""
        fresh, self.fresh = self.fresh, []
        if self.on_address is None:
            return
        name = TRANSPORT_NAMES.get(proto, "ip")
        sport = dport = 0
        if name != "ip" and l4 + 4 <= end:
            sport, dport = _PORTS(data, l4)
        else:
            name = "ip"
        self.on_address(Datagram(frame, ts, src, dst, sport, dport, name, b""), fresh)

    def _cut(self, frame: int, what: str, have: int, need: int, wire: int, caplen: int) -> None:
        if wire > caplen:
            self.on_error(frame, "truncated", f"{what} cut by the snapshot length "
                                              f"({have} of {need} bytes captured)")
        else:
            self.on_error(frame, "malformed", f"{what} claims {need} bytes, frame holds {have}")

    def packet(self, frame: int, ts: float, linktype: int, data: bytes,
               wire: int) -> Datagram | None:
        """The transport payload of one frame, or None (not IP, incomplete, bad)."""
        fast = FAST_IPV4.get(linktype)
        if fast is not None:   # unfragmented IPv4/UDP with no options: one unpack
            off, et = fast
            if len(data) >= off + 28 and (et < 0 or (data[et] == 8 and data[et + 1] == 0)):
                vihl, _tos, total, _id, flags, _ttl, proto, s, d, sport, dport, ulen = _FAST(
                    data, off)
                if (vihl == 0x45 and proto == 17 and not flags & 0x3FFF
                        and 28 <= total <= len(data) - off and 8 <= ulen <= total - 20):
                    names = self.names
                    src, dst = names.get(s), names.get(d)
                    if src is not None and dst is not None:
                        return Datagram(frame, ts, src, dst, sport, dport, "udp",
                                        data[off + 28:off + 20 + ulen])
        link = LINKS.get(linktype)
        if link is None:
            if linktype not in self.unknown_links:
                self.unknown_links.add(linktype)
                self.on_error(frame, "unsupported", f"link type {linktype} is not decoded")
            return None
        off = link(data)
        if off < 0:
            if off == CUT:
                self._cut(frame, "link header", len(data), len(data) + 1, wire, len(data))
            return None
        if off >= len(data):
            return None
        version = data[off] >> 4
        if version == 4:
            return self._ipv4(frame, ts, data, off, wire)
        if version == 6:
            return self._ipv6(frame, ts, data, off, wire)
        self.on_error(frame, "malformed", f"IP version {version}")
        return None

    def _ipv4(self, frame: int, ts: float, data: bytes, off: int, wire: int) -> Datagram | None:
        n = len(data)
        if n - off < 20:
            self._cut(frame, "IPv4 header", n - off, 20, wire, n)
            return None
        vihl, _tos, total, ident, flags, _ttl, proto = _V4(data, off)
        ihl = (vihl & 15) << 2
        if ihl < 20 or total < ihl:
            self.on_error(frame, "malformed", f"IPv4 header length {ihl}, total {total}")
            return None
        end = off + total
        if end > n:
            self._cut(frame, "IPv4 packet", n - off, total, wire, n)
            return None
        name = self._name
        src, dst = name(data[off + 12:off + 16]), name(data[off + 16:off + 20])
        if self.fresh:
            self._announce(frame, ts, src, dst, -1 if flags & 0x1FFF else proto, data,
                           off + ihl, end)
        if ihl > 20:
            bad = ipv4_options_problem(data, off + 20, off + ihl)
            if bad:
                self.on_error(frame, "malformed", bad)
        handler = self.transports.get(proto)
        if handler is None:
            return None
        if flags & 0x3FFF:
            key = (src, dst, proto, ident)
            whole = self._fragment(frame, ts, src, dst, key, (flags & 0x1FFF) << 3,
                                   bool(flags & 0x2000), data[off + ihl:end])
            return None if whole is None else handler(frame, ts, src, dst, whole, 0, len(whole))
        return handler(frame, ts, src, dst, data, off + ihl, end)

    def _ipv6(self, frame: int, ts: float, data: bytes, off: int, wire: int) -> Datagram | None:
        n = len(data)
        if n - off < 40:
            self._cut(frame, "IPv6 header", n - off, 40, wire, n)
            return None
        plen, nh = _V6(data, off + 4)
        end = off + 40 + plen
        if end > n:
            self._cut(frame, "IPv6 packet", n - off, 40 + plen, wire, n)
            return None
        name = self._name
        src, dst = name(data[off + 8:off + 24]), name(data[off + 24:off + 40])
        pos = off + 40
        frag: tuple[int, bool, int] | None = None
        for _ in range(MAX_IPV6_EXT):
            ext = IPV6_EXT.get(nh)
            if ext is None and nh != IPV6_FRAGMENT:
                break
            if pos + 8 > end:
                self.on_error(frame, "malformed", f"IPv6 extension header {nh} runs past "
                                                  "the payload")
                return None
            if ext is None:
                field, ident = _FRAG6(data, pos + 2)
                frag = (field & 0xFFF8, bool(field & 1), ident)
                nh, pos = data[pos], pos + 8
            else:
                nh, pos = data[pos], pos + ext(data[pos + 1])
        else:
            self.on_error(frame, "malformed", f"over {MAX_IPV6_EXT} IPv6 extension headers")
            return None
        if self.fresh:
            self._announce(frame, ts, src, dst, -1 if frag and frag[0] else nh, data, pos, end)
        if pos > end:
            self.on_error(frame, "malformed", "IPv6 extension headers run past the payload")
            return None
        handler = self.transports.get(nh)
        if handler is None:
            return None
        if frag is not None and (frag[0] or frag[1]):
            whole = self._fragment(frame, ts, src, dst, (src, dst, -1, frag[2]), frag[0],
                                   frag[1], data[pos:end])
            return None if whole is None else handler(frame, ts, src, dst, whole, 0, len(whole))
        return handler(frame, ts, src, dst, data, pos, end)

    def _fragment(self, frame: int, ts: float, src: str, dst: str, key: tuple[object, ...],
                  offset: int, more: bool, part: bytes) -> bytes | None:
        def problem(code: str, message: str, kind: str) -> None:
            if kind == "finding":
                self.on_finding(code, message, Datagram(frame, ts, src, dst, 0, 0, "ip", b""))
            else:
                self.on_error(frame, code, message)
        return self.frags.add(key, offset, more, part, ts, problem)

    def _udp(self, frame: int, ts: float, src: str, dst: str, buf: bytes, off: int,
             end: int) -> Datagram | None:
        if end - off < 8:
            self.on_error(frame, "malformed", f"UDP header cut short ({end - off} bytes)")
            return None
        sport, dport, ulen = _UDP(buf, off)
        if ulen < 8 or off + ulen > end:
            self.on_error(frame, "malformed", f"UDP length {ulen} does not fit the "
                                              f"{end - off}-byte IP payload")
            return None
        return Datagram(frame, ts, src, dst, sport, dport, "udp", buf[off + 8:off + ulen])

    def _tcp(self, frame: int, ts: float, src: str, dst: str, buf: bytes, off: int,
             end: int) -> Datagram | None:
        if end - off < 20:
            self.on_error(frame, "malformed", f"TCP header cut short ({end - off} bytes)")
            return None
        sport, dport, seq, _ack, doff, flags = _TCP(buf, off)
        hl = (doff >> 4) << 2
        if hl < 20 or off + hl > end:
            self.on_error(frame, "malformed", f"TCP header length {hl} does not fit")
            return None
        streams = self.streams
        data = streams.segment((src, sport, dst, dport), seq, flags, buf[off + hl:end])
        if streams.problems:
            for message in streams.problems:
                self.on_error(frame, "limit", message)
            streams.problems.clear()
        if not data:
            return None
        return Datagram(frame, ts, src, dst, sport, dport, "tcp", data, streams.started)
