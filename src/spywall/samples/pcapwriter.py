"""Write pcap and pcapng captures from code (for samples, tests and the benchmark).

Layers are plain functions over bytes (``ipv4``, ``ipv6``, ``udp``, ``tcp``, ``frame``) so a
test can craft any header it likes; ``Capture`` keeps packets in memory with per-direction
TCP sequence numbers and writes them as pcap or pcapng. ``PcapWriter`` / ``PcapngWriter``
stream to a file for big captures. Formats: draft-ietf-opsawg-pcap and
draft-ietf-opsawg-pcapng; SLL/SLL2 as documented by tcpdump.org (LINKTYPE_LINUX_SLL/SLL2).
"""

from __future__ import annotations

import io
import ipaddress
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import BinaryIO

import msgspec

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_BOM = 0x1A2B3C4D
SHB, IDB, SPB, OPB, NRB, ISB, EPB, CUSTOM = (
    0x0A0D0D0A, 1, 3, 2, 4, 5, 6, 0x00000BAD)

ETH_IPV4, ETH_IPV6, ETH_VLAN, ETH_QINQ = 0x0800, 0x86DD, 0x8100, 0x88A8
PROTO_TCP, PROTO_UDP = 6, 17
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def _addr(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, ident: int = 1, ttl: int = 64,
         df: bool = False, mf: bool = False, frag_offset: int = 0, options: bytes = b"",
         total_length: int | None = None) -> bytes:
    """An IPv4 packet; ``frag_offset`` in bytes (a multiple of 8); options padded to 4."""
    options += b"\x00" * (-len(options) % 4)
    ihl = 5 + len(options) // 4
    length = total_length if total_length is not None else ihl * 4 + len(payload)
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_offset // 8)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, length, ident & 0xFFFF, flags, ttl,
                      proto, 0, _addr(src), _addr(dst)) + options
    csum = checksum(hdr)
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:] + payload


def ipv6(src: str, dst: str, nh: int, payload: bytes, *,
         ext: Sequence[tuple[int, bytes]] = (), hop_limit: int = 64) -> bytes:
    """An IPv6 packet; ``ext`` is a list of (header type, body) extension headers.

    Each body is the header after its next-header byte (the length byte is filled in for
    generic headers; a fragment header body is 7 bytes as is), padded to 8-byte units.
    """
    chain = b""
    types = [t for t, _ in ext] + [nh]
    for i, (kind, body) in enumerate(ext):
        if kind == 44:
            chain += bytes([types[i + 1]]) + body
        else:
            body += b"\x00" * (-(len(body) + 2) % 8)
            chain += bytes([types[i + 1], (len(body) + 2) // 8 - 1]) + body
    first = types[0]
    data = chain + payload
    return struct.pack("!IHBB16s16s", 0x60000000, len(data), first, hop_limit,
                       _addr(src), _addr(dst)) + data


def ipv6_fragment_header(offset: int, more: bool, ident: int) -> tuple[int, bytes]:
    """An extension entry for ``ipv6(ext=...)``: offset in bytes (multiple of 8)."""
    return 44, struct.pack("!BHI", 0, (offset // 8) << 3 | (1 if more else 0), ident)


def udp(sport: int, dport: int, payload: bytes, *, length: int | None = None) -> bytes:
    """A UDP header (checksum 0: not computed) and payload; ``length`` may lie."""
    n = 8 + len(payload) if length is None else length
    return struct.pack("!HHHH", sport, dport, n & 0xFFFF, 0) + payload


def tcp(sport: int, dport: int, seq: int, payload: bytes = b"", *, ack: int = 0,
        flags: int = TCP_ACK | TCP_PSH, window: int = 65535, options: bytes = b"") -> bytes:
    options += b"\x01" * (-len(options) % 4)
    off = (5 + len(options) // 4) << 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, off,
                       flags, window, 0, 0) + options + payload


def fragment_ipv4(src: str, dst: str, proto: int, payload: bytes, ident: int,
                  size: int) -> list[bytes]:
    """Split a transport payload into IPv4 fragments carrying ``size`` bytes each."""
    size = max(8, size - size % 8)
    out = []
    for off in range(0, len(payload), size):
        part = payload[off:off + size]
        out.append(ipv4(src, dst, proto, part, ident=ident, frag_offset=off,
                        mf=off + size < len(payload)))
    return out


# --- link-layer framing: name -> (LINKTYPE, wrap(ip_packet, ethertype)) ---

def _eth(vlans: Sequence[int]) -> Callable[[bytes, int], bytes]:
    def wrap(packet: bytes, ethertype: int) -> bytes:
        tags = b"".join(
            struct.pack("!HH", ETH_QINQ if i == 0 and len(vlans) > 1 else ETH_VLAN, vid)
            for i, vid in enumerate(vlans))
        return MAC_B + MAC_A + tags + struct.pack("!H", ethertype) + packet
    return wrap


def _sll(packet: bytes, ethertype: int) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, MAC_A + b"\x00\x00", ethertype) + packet


def _sll2(packet: bytes, ethertype: int) -> bytes:
    return struct.pack("!HHIHBB8s", ethertype, 0, 2, 1, 0, 6, MAC_A + b"\x00\x00") + packet


def _raw(packet: bytes, ethertype: int) -> bytes:
    return packet


def _null(packet: bytes, ethertype: int) -> bytes:
    return struct.pack("<I", 2 if ethertype == ETH_IPV4 else 30) + packet


def _loop(packet: bytes, ethertype: int) -> bytes:
    return struct.pack("!I", 2 if ethertype == ETH_IPV4 else 30) + packet


FRAMINGS: dict[str, tuple[int, Callable[[bytes, int], bytes]]] = {
    "eth": (1, _eth(())),
    "vlan": (1, _eth((100,))),
    "qinq": (1, _eth((200, 100))),
    "sll": (113, _sll),
    "sll2": (276, _sll2),
    "raw": (101, _raw),
    "ipv4": (228, _raw),
    "ipv6": (229, _raw),
    "null": (0, _null),
    "loop": (108, _loop),
}


def frame(framing: str, packet: bytes) -> bytes:
    """Wrap an IP packet in the link layer named ``framing`` (a key of ``FRAMINGS``)."""
    ethertype = ETH_IPV6 if packet[:1] and packet[0] >> 4 == 6 else ETH_IPV4
    return FRAMINGS[framing][1](packet, ethertype)


# --- file writers ---

class PcapWriter:
    """Classic pcap to a binary stream: microsecond or nanosecond, either byte order."""

    def __init__(self, out: BinaryIO, linktype: int = 1, *, nano: bool = False,
                 big_endian: bool = False, snaplen: int = 262144) -> None:
        self.out = out
        self.bo = ">" if big_endian else "<"
        self.scale = 1_000_000_000 if nano else 1_000_000
        self.rec = struct.Struct(self.bo + "IIII")
        out.write(struct.pack(self.bo + "IHHiIII", PCAP_MAGIC_NS if nano else PCAP_MAGIC_US,
                              2, 4, 0, 0, snaplen, linktype))

    def write(self, ts: float, data: bytes, orig_len: int | None = None) -> None:
        units = round(ts * self.scale)
        sec, frac = divmod(units, self.scale)
        self.out.write(self.rec.pack(sec, frac, len(data),
                                     len(data) if orig_len is None else orig_len) + data)


def _options(opts: Iterable[tuple[int, bytes]], bo: str) -> bytes:
    out = b""
    items = list(opts)
    for code, value in items:
        out += struct.pack(bo + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)
    return out + (struct.pack(bo + "HH", 0, 0) if items else b"")


class PcapngWriter:
    """pcapng to a binary stream: sections, interfaces with if_tsresol, EPB/SPB/OPB."""

    def __init__(self, out: BinaryIO, *, big_endian: bool = False) -> None:
        self.out = out
        self.bo = ">" if big_endian else "<"
        self.scales: list[int] = []
        self.section()

    def block(self, btype: int, body: bytes) -> None:
        """Any block; the body is padded to 32 bits."""
        body += b"\x00" * (-len(body) % 4)
        n = len(body) + 12
        self.out.write(struct.pack(self.bo + "II", btype, n) + body
                       + struct.pack(self.bo + "I", n))

    def section(self, options: Iterable[tuple[int, bytes]] = ()) -> None:
        """Start a new section (interfaces are forgotten, as the format says)."""
        self.scales = []
        self.block(SHB, struct.pack(self.bo + "IHHq", PCAPNG_BOM, 1, 0, -1)
                   + _options(options, self.bo))

    def interface(self, linktype: int = 1, *, snaplen: int = 0, tsresol: int = 6) -> int:
        """Add an IDB; ``tsresol`` is the if_tsresol byte (high bit set: power of two)."""
        opts = [] if tsresol == 6 else [(9, bytes([tsresol]))]
        self.block(IDB, struct.pack(self.bo + "HHI", linktype, 0, snaplen)
                   + _options(opts, self.bo))
        base = 2 if tsresol & 0x80 else 10
        self.scales.append(base ** (tsresol & 0x7F))
        return len(self.scales) - 1

    def _ts(self, ts: float, interface: int) -> tuple[int, int]:
        units = round(ts * self.scales[interface])
        return units >> 32, units & 0xFFFFFFFF

    def write(self, ts: float, data: bytes, interface: int = 0,
              orig_len: int | None = None) -> None:
        hi, lo = self._ts(ts, interface)
        wire = len(data) if orig_len is None else orig_len
        self.block(EPB, struct.pack(self.bo + "IIIII", interface, hi, lo, len(data), wire)
                   + data)

    def simple(self, data: bytes, orig_len: int | None = None) -> None:
        wire = len(data) if orig_len is None else orig_len
        self.block(SPB, struct.pack(self.bo + "I", wire) + data)

    def obsolete(self, ts: float, data: bytes, interface: int = 0) -> None:
        hi, lo = self._ts(ts, interface)
        self.block(OPB, struct.pack(self.bo + "HHIIII", interface, 0, hi, lo, len(data),
                                    len(data)) + data)


# --- an in-memory capture with per-direction TCP state ---

class Capture(msgspec.Struct):
    """Packets kept in memory as (ts, link frame) and written as pcap or pcapng."""

    framing: str = "eth"
    packets: list[tuple[float, bytes]] = msgspec.field(default_factory=list)
    _seq: dict[tuple[str, int, str, int], int] = msgspec.field(default_factory=dict)
    _ident: int = 0x1000

    @property
    def linktype(self) -> int:
        return FRAMINGS[self.framing][0]

    def ip(self, ts: float, packet: bytes) -> None:
        self.packets.append((ts, frame(self.framing, packet)))

    def _ip_of(self, src: str, dst: str, proto: int, payload: bytes) -> bytes:
        if ":" in src:
            return ipv6(src, dst, proto, payload)
        self._ident += 1
        return ipv4(src, dst, proto, payload, ident=self._ident)

    def udp(self, ts: float, src: str, sport: int, dst: str, dport: int, payload: bytes,
            *, fragment: int = 0) -> None:
        """One UDP datagram; ``fragment`` > 0 splits it into IPv4 fragments of that size."""
        seg = udp(sport, dport, payload)
        if fragment and ":" not in src:
            self._ident += 1
            for part in fragment_ipv4(src, dst, PROTO_UDP, seg, self._ident, fragment):
                self.ip(ts, part)
        else:
            self.ip(ts, self._ip_of(src, dst, PROTO_UDP, seg))

    def tcp(self, ts: float, src: str, sport: int, dst: str, dport: int, payload: bytes = b"",
            *, flags: int = TCP_ACK | TCP_PSH, seq: int | None = None) -> None:
        """One TCP segment; sequence numbers follow on per direction unless given."""
        key = (src, sport, dst, dport)
        cur = self._seq.get(key, 1000) if seq is None else seq
        self.ip(ts, self._ip_of(src, dst, PROTO_TCP, tcp(sport, dport, cur, payload,
                                                         flags=flags)))
        step = len(payload) + (1 if flags & (TCP_SYN | TCP_FIN) else 0)
        self._seq[key] = (cur + step) & 0xFFFFFFFF

    def tcp_stream(self, ts: float, src: tuple[str, int], dst: tuple[str, int], data: bytes,
                   cuts: Iterable[int] = (), *, order: Sequence[int] | None = None,
                   again: Iterable[int] = ()) -> list[int]:
        """``data`` as one direction's segments, cut at the offsets ``cuts`` (taken modulo
        the length; 0 and duplicates ignored), sent in ``order`` (indexes into the segments;
        default in order) 10 ms apart, the segments in ``again`` sent a second time right
        after (retransmissions). The frame number of each segment's first copy, in stream
        order."""
        points = sorted({c % len(data) for c in cuts} - {0}) if data else []
        bounds = list(zip([0, *points], [*points, len(data)], strict=True))
        base = self._seq.get((*src, *dst), 1000)
        twice = set(again)
        frames = [0] * len(bounds)
        for n, i in enumerate(order if order is not None else range(len(bounds))):
            a, b = bounds[i]
            for _ in range(2 if i in twice else 1):
                self.tcp(ts + n / 100, *src, *dst, data[a:b], seq=base + a)
                frames[i] = frames[i] or len(self.packets)
        self._seq[(*src, *dst)] = (base + len(data)) & 0xFFFFFFFF
        return frames

    def tcp_handshake(self, ts: float, client: tuple[str, int], server: tuple[str, int]) -> None:
        self.tcp(ts, *client, *server, flags=TCP_SYN)
        self.tcp(ts, *server, *client, flags=TCP_SYN | TCP_ACK)
        self.tcp(ts, *client, *server, flags=TCP_ACK)

    def reframed(self, framing: str) -> Capture:
        """The same packets under another link framing."""
        strip = len(frame(self.framing, b""))
        out = Capture(framing=framing)
        out.packets = [(ts, frame(framing, data[strip:])) for ts, data in self.packets]
        return out

    def pcap(self, *, nano: bool = False, big_endian: bool = False) -> bytes:
        buf = io.BytesIO()
        w = PcapWriter(buf, self.linktype, nano=nano, big_endian=big_endian)
        for ts, data in self.packets:
            w.write(ts, data)
        return buf.getvalue()

    def pcapng(self, *, big_endian: bool = False, tsresol: int = 6) -> bytes:
        buf = io.BytesIO()
        w = PcapngWriter(buf, big_endian=big_endian)
        w.interface(self.linktype, tsresol=tsresol)
        for ts, data in self.packets:
            w.write(ts, data)
        return buf.getvalue()
