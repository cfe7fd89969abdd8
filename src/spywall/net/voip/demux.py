"""Flows, the RFC 7983 first-byte demultiplexer, and media framing over TCP.

A ``Flow`` is one direction of a UDP 5-tuple. Flows on ports learned from SDP are media
flows of a call; other flows (``DEMUX``) are split packet by packet on the first byte:
0-3 STUN, 16-19 ZRTP, 20-63 DTLS, 64-79 TURN ChannelData (RFC 7983; 64-127 on flows known
to carry TURN, the RFC 5766 channel range), 128-191 RTP or RTCP (RTCP when the second byte
is 192-223, RFC 5761). Unlearned flows only report once they are confirmed (see ``Flow``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from spywall.net.voip.rtcp import SrtcpLayout
from spywall.net.voip.rules import Anomaly
from spywall.net.voip.sip import PREFIXES

if TYPE_CHECKING:
    from spywall.net.packet import Datagram
    from spywall.net.voip.calls import Call
    from spywall.net.voip.srtcp import Shape
    from spywall.net.voip.zeroclick import Unsolicited

# Packet kinds (small ints: they index tables on the hot path).
OTHER, STUN, ZRTP, DTLS, TURN, RTP, RTCP, SRTCP = range(8)
KIND_NAMES = ("other", "stun", "zrtp", "dtls", "turn", "rtp", "rtcp", "srtcp")
MEDIA_KINDS = frozenset({RTP, RTCP, SRTCP})


def _first_byte_table() -> tuple[int, ...]:
    table = [OTHER] * 256
    for lo, hi, kind in ((0, 3, STUN), (16, 19, ZRTP), (20, 63, DTLS), (64, 127, TURN),
                         (128, 191, RTP)):
        for b in range(lo, hi + 1):
            table[b] = kind
    return tuple(table)


FIRST_BYTE = _first_byte_table()


def classify(p: bytes) -> int:
    """RFC 7983 kind of a non-empty payload (TURN means 64-127: only valid on TURN flows)."""
    kind = FIRST_BYTE[p[0]]
    if kind == RTP and len(p) > 1 and 192 <= p[1] <= 223:
        return RTCP
    return kind


def looks_like_channel_data(p: bytes) -> bool:
    """ChannelData by shape alone (a TURN server on another port, its allocation not in the
    capture): the length field leaves 0-3 bytes of padding exactly and the relayed data is
    RTP or RTCP (odds for random bytes about 1 in 250,000)."""
    length = int.from_bytes(p[2:4], "big")
    return len(p) >= 16 and 0 <= len(p) - 4 - length <= 3 and length >= 8 \
        and classify(p[4:]) in (RTP, RTCP)


# Flow classes.
SIP, MEDIA, DEMUX, IGNORED = range(4)

IGNORED_PORTS = frozenset({53, 67, 68, 123, 137, 138, 161, 162, 443, 500, 514, 1900, 4500,
                           5353, 5355})
"""Well-known non-media UDP services (DNS, DHCP, NTP, NetBIOS, SNMP, QUIC, IKE, syslog, SSDP,
mDNS, LLMNR); together with every port under 1024 they are never demultiplexed."""
TURN_PORTS = frozenset({3478, 5349})
"""STUN/TURN server ports (RFC 8489 18.1): flows on them may carry ChannelData."""
MAX_SEQ_STEP = 100
"""Largest RTP sequence step between two packets that confirms a flow (loss and reordering
of a few packets are normal; random data lands in 1..100 with odds 100/65536)."""
MAX_PENDING = 8
"""Anomalies an unconfirmed flow may hold back until it is confirmed."""


class Flow(msgspec.Struct, eq=False):
    """One direction of a UDP 5-tuple and what has been seen on it.

    ``secure``: True when SDP or DTLS says SRTP, False when SDP says plain RTP, None if
    unknown. ``confirmed``: a learned media flow, a flow to the callee of a ringing call, a
    flow that carried a valid STUN message or TURN ChannelData, or one where two packets of
    one RTP source (same SSRC, sequence 1..MAX_SEQ_STEP ahead) or two SR/RR-led RTCP
    compounds of one sender came by; until then anomalies wait in ``pending`` (random UDP
    payloads look like broken RTP a quarter of the time).
    """

    key: tuple[str, int, str, int]
    cls: int
    gen: int
    call: Call | None = None
    secure: bool | None = None
    confirmed: bool = False
    turn: bool = False
    packets: int = 0
    first_frame: int = 0
    last_frame: int = 0
    seen: int = 0
    ssrc: bytes = b""
    seq: int = -2
    explained: bool = False                 # RTCP here followed media (see zeroclick)
    layouts: tuple[SrtcpLayout, ...] = ()   # SRTCP trailers its keying allows (() unknown)
    layout_from: str = ""                   # "sdp" or "dtls"
    shape: Shape | None = None              # the trailer told from the packets (srtcp)
    plain: bool = False                     # a valid plain RTCP compound came (not SRTCP)
    # the first plain-valid compounds of a flow with no keying (at most srtcp.MAX_HELD),
    # judged again as SRTCP if the flow's later packets show an SRTCP index after all
    early_plain: list[tuple[Datagram, bytes]] = msgspec.field(default_factory=list)
    unsolicited: Unsolicited | None = None
    pending: list[tuple[Anomaly, Datagram, str]] = msgspec.field(default_factory=list)

    def protocol(self) -> str:
        """Names of the kinds seen, e.g. ``rtp+rtcp`` (``srtp`` for secure RTP)."""
        names = [KIND_NAMES[k] for k in range(1, 8) if self.seen >> k & 1]
        if self.secure and "rtp" in names:
            names[names.index("rtp")] = "srtp"
        return "+".join(names) or "udp"


def stun_method(msg_type: int) -> int:
    """The method number of a STUN message type (RFC 8489 5: class bits removed)."""
    return (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2)


TURN_METHODS = frozenset(range(3, 10))
"""Allocate, Refresh, Send, Data, CreatePermission, ChannelBind (RFC 8656 17)."""


MAX_TCP_MEDIA_STREAMS = 256
MAX_TCP_FRAME = 65535 + 4 + 3   # the largest ChannelData message with its padding


class TcpMediaFramer:
    """Media packets from the in-order bytes of a TCP stream, per direction (bounded).

    RFC 4571: RTP and RTCP over TCP, each packet after a 2-byte length. TURN over TCP
    (RFC 8656 12.5, RFC 6062): STUN messages (first two bits 00, 20-byte header, length
    field) and ChannelData messages (first two bits 01, 4-byte header, length field,
    padded to a multiple of 4 over a stream). ``feed`` gives back the complete packets
    (ChannelData and STUN whole, RFC 4571 packets without their prefix); bytes that
    cannot start a TURN message end that stream's framing, with a problem reported."""

    def __init__(self) -> None:
        self.partial: dict[tuple[str, int, str, int], bytes] = {}
        self.broken: set[tuple[str, int, str, int]] = set()

    def feed(self, key: tuple[str, int, str, int], data: bytes, *, turn: bool
             ) -> tuple[list[bytes], list[str]]:
        if key in self.broken:
            return [], []
        buf = self.partial.pop(key, b"") + data
        out: list[bytes] = []
        problems: list[str] = []
        pos = 0
        while True:
            size, skip = _turn_frame(buf, pos) if turn else _rfc4571_frame(buf, pos)
            if size is None:
                break
            if size < 0:
                problems.append(f"TURN over TCP: byte 0x{buf[pos]:02x} at stream offset "
                                f"{pos} starts neither STUN nor ChannelData")
                if len(self.broken) < MAX_TCP_MEDIA_STREAMS:
                    self.broken.add(key)
                return out, problems
            whole = size + (-size % 4 if turn and buf[pos] >> 6 == 1 else 0)  # padding
            if pos + whole > len(buf):
                break
            out.append(buf[pos + skip : pos + size])
            pos += whole
        if pos < len(buf):
            if len(self.partial) >= MAX_TCP_MEDIA_STREAMS:
                del self.partial[next(iter(self.partial))]
                problems.append(f"over {MAX_TCP_MEDIA_STREAMS} media-over-TCP streams "
                                "waiting for the rest of a packet; the oldest dropped")
            self.partial[key] = buf[pos:]
        return out, problems

    def close(self, key: tuple[str, int, str, int]) -> None:
        """Forget ``key``'s partial packet and broken state (its stream starts again)."""
        self.partial.pop(key, None)
        self.broken.discard(key)


def _rfc4571_frame(buf: bytes, pos: int) -> tuple[int | None, int]:
    """(bytes of the framed packet with its prefix, prefix bytes), None if incomplete."""
    if len(buf) - pos < 2:
        return None, 2
    return 2 + int.from_bytes(buf[pos : pos + 2], "big"), 2


def _turn_frame(buf: bytes, pos: int) -> tuple[int | None, int]:
    """(bytes of the STUN or ChannelData message, 0), None if incomplete, -1 if neither."""
    if len(buf) - pos < 4:
        return None, 0
    kind = buf[pos] >> 6
    length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
    if kind == 0:
        return 20 + length, 0
    if kind == 1:
        return 4 + length, 0
    return -1, 0


# What one direction of a TCP stream carries, told from its first bytes.
TCP_SIP, TCP_RFC4571, TCP_TURN, TCP_OTHER = "sip", "rfc4571", "turn", "other"
TCP_DNS_PORTS = frozenset({53, 5353, 5355})
"""DNS over TCP looks like RFC 4571 a quarter of the time (a length, then an ID); never media."""
MAX_SNIFF = 64
"""Bytes a TCP direction may show before its kind is decided (CRLF keep-alives before SIP)."""
SNIFF_AT_LEAST = 10
COOKIE = b"\x21\x12\xa4\x42"


def sniff_tcp(buf: bytes, *, turn_port: bool) -> str | None:
    """The kind of a TCP direction from its first bytes, None while they could still be
    several. SIP: a request or status line (after CRLF keep-alives). TURN over TCP
    (RFC 8656, RFC 6062): a STUN message (magic cookie at byte 4), or ChannelData on a
    STUN/TURN port. RFC 4571 (RTP/AVP over TCP, RFC 6544 ICE-TCP): a 2-byte length of at
    least 8, then RTP/RTCP version 2, STUN (magic cookie) or a DTLS 1.x record."""
    text = buf.lstrip(b"\r\n")
    if text.startswith(PREFIXES):
        return TCP_SIP
    if len(buf) < SNIFF_AT_LEAST or not text or any(p.startswith(text) for p in PREFIXES):
        return None if len(buf) <= MAX_SNIFF else TCP_OTHER
    if buf[0] < 0x40 and buf[4:8] == COOKIE:
        return TCP_TURN
    if turn_port and buf[0] >> 6 == 1:
        return TCP_TURN
    b2 = buf[2]
    if int.from_bytes(buf[:2], "big") >= 8 and (
            b2 >> 6 == 2 or (b2 < 4 and buf[6:10] == COOKIE) or (20 <= b2 < 64
                                                                 and buf[3] == 0xFE)):
        return TCP_RFC4571
    return TCP_OTHER


class TcpKinds:
    """``sniff_tcp`` per direction, holding the first bytes until they decide (bounded)."""

    def __init__(self) -> None:
        self.kinds: dict[tuple[str, int, str, int], str] = {}
        self.probes: dict[tuple[str, int, str, int], bytes] = {}

    def feed(self, key: tuple[str, int, str, int], data: bytes, *, turn_port: bool
             ) -> tuple[str | None, bytes]:
        """(the direction's kind or None, the bytes to frame: held ones included)."""
        kind = self.kinds.get(key)
        if kind is not None:
            return kind, data
        buf = self.probes.pop(key, b"") + data
        kind = sniff_tcp(buf, turn_port=turn_port)
        if kind is None:
            if len(self.probes) >= MAX_TCP_MEDIA_STREAMS:
                del self.probes[next(iter(self.probes))]
            self.probes[key] = buf
            return None, b""
        if len(self.kinds) >= MAX_FLOWS_TCP:
            del self.kinds[next(iter(self.kinds))]
        self.kinds[key] = kind
        return kind, buf

    def forget(self, key: tuple[str, int, str, int]) -> None:
        """A new connection (or bytes after a gap) on ``key``: sniff it again."""
        self.kinds.pop(key, None)
        self.probes.pop(key, None)


MAX_FLOWS_TCP = 1 << 16
"""TCP directions whose kind is remembered (the oldest is forgotten beyond)."""
