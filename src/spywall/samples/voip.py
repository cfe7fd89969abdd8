"""VoIP payload builders (SIP, SDP, RTP, RTCP, SRTCP, STUN, TURN) and crafted anomalies.

Everything is built from the RFCs by code: SIP INVITE/180/200/BYE/CANCEL with SDP
(RFC 3261, 8866), RTP at 20 ms pacing and compound RTCP SR+SDES, BYE and XR (RFC 3550,
3611), SRTCP with the E flag, 31-bit index and an HMAC-SHA1 tag over AES-CTR output (the
RFC 3711 layout; keys are fixed test values, key derivation is skipped), STUN Binding with
MESSAGE-INTEGRITY and FINGERPRINT (RFC 8489) and TURN ChannelData (RFC 8656).
``CRAFTED`` maps each crafted anomaly to its builder, the rule it must trigger and how it
travels. ``call_capture`` lays a whole call out as a pcap (``samples.pcapwriter``).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import zlib
from collections.abc import Callable, Iterator

import msgspec

from spywall.samples.pcapwriter import Capture

CNAME = b"alice@atlanta.example"


# ---- SIP / SDP ----------------------------------------------------------------------
def sdp(ip: str, port: int, *, secure: bool = False, mux: bool = False, session: int = 1,
        extra: str = "") -> bytes:
    proto = "RTP/SAVP" if secure else "RTP/AVP"
    family = "IP6" if ":" in ip else "IP4"
    lines = ["v=0", f"o=- {session} 1 IN {family} {ip}", "s=-", f"c=IN {family} {ip}", "t=0 0",
             f"m=audio {port} {proto} 0 8 101", "a=rtpmap:0 PCMU/8000",
             "a=rtpmap:101 telephone-event/8000"]
    if secure:
        lines.append("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"
                     "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz")
    if mux:
        lines.append("a=rtcp-mux")
    return ("\r\n".join(lines) + "\r\n" + extra).encode()


class Dialog(msgspec.Struct, frozen=True):
    """The fixed parts of one SIP dialog."""

    call_id: str
    caller: str          # user@host
    callee: str
    caller_addr: tuple[str, int]
    callee_addr: tuple[str, int]
    transport: str = "UDP"

    def _via(self) -> str:
        h, p = self.caller_addr
        return f"SIP/2.0/{self.transport} {h}:{p};branch=z9hG4bK{abs(hash(self.call_id)) % 99999}"

    def _common(self, method: str, cseq: int, to_tag: bool) -> list[str]:
        tag = ";tag=b7c2" if to_tag else ""
        return [f"Via: {self._via()}", "Max-Forwards: 70",
                f'From: "Caller" <sip:{self.caller}>;tag=a1f9', f"To: <sip:{self.callee}>{tag}",
                f"Call-ID: {self.call_id}", f"CSeq: {cseq} {method}"]

    def request(self, method: str, *, cseq: int = 1, body: bytes = b"", to_tag: bool = False,
                content_length: int | None = None) -> bytes:
        h, p = self.caller_addr
        lines = [f"{method} sip:{self.callee} SIP/2.0", *self._common(method, cseq, to_tag),
                 f"Contact: <sip:{self.caller.split('@')[0]}@{h}:{p}>"]
        return _message(lines, body, content_length)

    def response(self, status: int, reason: str, *, method: str = "INVITE", cseq: int = 1,
                 body: bytes = b"", content_length: int | None = None) -> bytes:
        h, p = self.callee_addr
        lines = [f"SIP/2.0 {status} {reason}", *self._common(method, cseq, status > 100),
                 f"Contact: <sip:{self.callee.split('@')[0]}@{h}:{p}>"]
        return _message(lines, body, content_length)


def _message(lines: list[str], body: bytes, content_length: int | None) -> bytes:
    if body:
        lines.append("Content-Type: application/sdp")
    length = len(body) if content_length is None else content_length
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# ---- RTP / RTCP / SRTCP -------------------------------------------------------------
def rtp(seq: int, ts: int, ssrc: int, payload: bytes = b"\xff" * 160, *, pt: int = 0,
        marker: bool = False, csrcs: tuple[int, ...] = (), ext: bytes | None = None,
        padding: int = 0, first: int | None = None) -> bytes:
    b0 = 0x80 | (0x20 if padding else 0) | (0x10 if ext is not None else 0) | len(csrcs)
    out = struct.pack(">BBHII", b0 if first is None else first,
                      (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
    out += b"".join(struct.pack(">I", c) for c in csrcs)
    if ext is not None:
        out += struct.pack(">HH", 0xBEDE, len(ext) // 4) + ext
    pad = bytes(padding - 1) + bytes([padding]) if padding else b""
    return out + payload + pad


def rtp_stream(ssrc: int, count: int, *, start: float = 0.0) -> Iterator[tuple[float, bytes]]:
    """(time, packet) of ``count`` 20 ms G.711 packets (160 samples each)."""
    for i in range(count):
        yield start + i * 0.020, rtp(i + 1, i * 160, ssrc, marker=i == 0)


def rtcp_part(pt: int, count: int, body: bytes, *, length: int | None = None) -> bytes:
    body += bytes(-len(body) % 4)
    words = (len(body) + 4) // 4 - 1 if length is None else length
    return struct.pack(">BBH", 0x80 | count, pt, words) + body


def report_block(ssrc: int) -> bytes:
    return struct.pack(">IIIIII", ssrc, 0, 0, 160 * 50, 0, 0)


def sr(ssrc: int, *, blocks: tuple[int, ...] = (), count: int | None = None) -> bytes:
    info = struct.pack(">IIIIII", ssrc, 0xE8A5F3C0, 0, 160 * 50, 50, 8000)
    return rtcp_part(200, len(blocks) if count is None else count,
                     info + b"".join(map(report_block, blocks)))


def sdes(ssrc: int, cname: bytes = CNAME, *, item_length: int | None = None) -> bytes:
    item = bytes([1, len(cname) if item_length is None else item_length]) + cname
    chunk = struct.pack(">I", ssrc) + item + b"\x00"
    chunk += bytes(-len(chunk) % 4)
    return rtcp_part(202, 1, chunk)


def bye(ssrc: int, reason: bytes = b"", *, reason_length: int | None = None) -> bytes:
    body = struct.pack(">I", ssrc)
    if reason:
        body += bytes([len(reason) if reason_length is None else reason_length]) + reason
    return rtcp_part(203, 1, body)


def xr(ssrc: int, *, block_words: int | None = None) -> bytes:
    """XR with a Receiver Reference Time block (BT=4) and a DLRR block (BT=5)."""
    rrt = struct.pack(">BBHII", 4, 0, 2 if block_words is None else block_words, 0xE8A5F3C0, 0)
    dlrr = struct.pack(">BBHIII", 5, 0, 3, ssrc ^ 1, 0x1234, 0x10)
    return rtcp_part(207, 0, struct.pack(">I", ssrc) + rrt + dlrr)


def compound(ssrc: int) -> bytes:
    """The ordinary compound: SR with one report block + SDES CNAME."""
    return sr(ssrc, blocks=(ssrc ^ 0xFFFF,)) + sdes(ssrc)


SRTCP_KEY, SRTCP_AUTH = bytes(range(16)), bytes(range(20))


def srtcp(plain: bytes, index: int, *, tag_len: int = 10, encrypt: bool = True) -> bytes:
    """SRTCP: the first 8 bytes clear, the rest AES-CTR, then E|index and the HMAC tag."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    head, rest = plain[:8], plain[8:]
    if encrypt:
        iv = struct.pack(">IIII", 0, int.from_bytes(head[4:8], "big"), 0, index)
        enc = Cipher(algorithms.AES(SRTCP_KEY), modes.CTR(iv)).encryptor()
        rest = enc.update(rest) + enc.finalize()
    body = head + rest + struct.pack(">I", (0x80000000 if encrypt else 0) | index)
    return body + hmac.new(SRTCP_AUTH, body, hashlib.sha1).digest()[:tag_len]


# ---- STUN / TURN --------------------------------------------------------------------
def _attr(atype: int, value: bytes, *, length: int | None = None) -> bytes:
    return struct.pack(">HH", atype, len(value) if length is None else length) + value + \
        bytes(-len(value) % 4)


def stun(attrs: bytes, *, msg_type: int = 0x0001, txid: bytes = b"spywall-txid",
         key: bytes | None = b"test-password", fingerprint: bool = True,
         length: int | None = None, after: bytes = b"") -> bytes:
    """A STUN message; MESSAGE-INTEGRITY (HMAC-SHA1 with ``key``), then ``after`` (only
    for crafted samples), then FINGERPRINT."""
    def header(size: int) -> bytes:
        return struct.pack(">HHI12s", msg_type, size, 0x2112A442, txid)

    body = attrs
    if key is not None:
        mac = hmac.new(key, header(len(body) + 24) + body, hashlib.sha1).digest()
        body += _attr(0x0008, mac)
    body += after
    if fingerprint:
        crc = (zlib.crc32(header(len(body) + 8) + body) ^ 0x5354554E) & 0xFFFFFFFF
        body += _attr(0x8028, struct.pack(">I", crc))
    return header(len(body) if length is None else length) + body


def binding_request(user: bytes = b"callee:caller") -> bytes:
    return stun(_attr(0x0006, user) + _attr(0x0024, struct.pack(">I", 0x6E7F1EFF)))


def channel_data(channel: int, data: bytes, *, length: int | None = None,
                 pad: bool = True) -> bytes:
    out = struct.pack(">HH", channel, len(data) if length is None else length) + data
    return out + (bytes(-len(data) % 4) if pad else b"")


def channel_bind(channel: int = 0x4001) -> bytes:
    xor_peer = _attr(0x0012, struct.pack(">BBH4s", 0, 1, 49170 ^ 0x2112, bytes(4)))
    return stun(_attr(0x000C, struct.pack(">HH", channel, 0)) + xor_peer, msg_type=0x0009)


# ---- crafted anomalies --------------------------------------------------------------
class Crafted(msgspec.Struct, frozen=True):
    build: Callable[[], bytes]
    rule: str
    carrier: str   # rtcp, srtcp, rtp, stun, turn, sip
    note: str = ""


SSRC = 0x5A17C0DE
LONG_SIP = Dialog("long@x", "alice@atlanta.example", "b" * 3000 + "@biloxi.example",
                  ("192.0.2.10", 5060), ("198.51.100.20", 5060))
D = Dialog("crafted@atlanta.example", "alice@atlanta.example", "bob@biloxi.example",
           ("192.0.2.10", 5060), ("198.51.100.20", 5060))

CRAFTED: dict[str, Crafted] = {
    "rtcp-length-past-end": Crafted(lambda: sr(SSRC)[:-8] + b"", "voip-rtcp-length", "rtcp",
                                    "SR length field says 8 bytes more than received"),
    "rtcp-short-part": Crafted(lambda: rtcp_part(200, 0, sr(SSRC)[4:], length=5) + sdes(SSRC),
                               "voip-rtcp-length", "rtcp", "SR length 5 words, short of an SR"),
    "rtcp-compound-gap": Crafted(lambda: rtcp_part(201, 0, bytes(12), length=1) + sdes(SSRC),
                                 "voip-rtcp-length", "rtcp", "RR length lands mid-part"),
    "rtcp-trailing-bytes": Crafted(lambda: compound(SSRC) + b"\x00\x00", "voip-rtcp-length",
                                   "rtcp", "two bytes after the last part"),
    "rtcp-oversize": Crafted(lambda: sr(SSRC) + rtcp_part(204, 0, struct.pack(">I4s", SSRC,
                             b"WAPP") + bytes(1480)), "voip-rtcp-oversize", "rtcp",
                             "a well-formed 1,520-byte compound"),
    "rtcp-rr-count": Crafted(lambda: sr(SSRC, blocks=(1,), count=9), "voip-rtcp-report-count",
                             "rtcp", "RC=9 with one report block"),
    "rtcp-sdes-overrun": Crafted(lambda: sr(SSRC) + sdes(SSRC, item_length=200),
                                 "voip-rtcp-sdes-overrun", "rtcp", "CNAME length 200"),
    "rtcp-bye-reason": Crafted(lambda: sr(SSRC) + bye(SSRC, b"gone", reason_length=250),
                               "voip-rtcp-bye-reason", "rtcp", "reason length 250"),
    "rtcp-xr-block": Crafted(lambda: sr(SSRC) + xr(SSRC, block_words=40), "voip-rtcp-xr-block",
                             "rtcp", "RRT block length 40 words"),
    "srtcp-length": Crafted(lambda: srtcp(rtcp_part(200, 0, sr(SSRC)[4:], length=60), 7),
                            "voip-srtcp-length", "srtcp", "first header says 244 bytes"),
    "srtcp-ambiguous": Crafted(lambda: struct.pack(">BBHI", 0x80, 201, 1, SSRC) + b"\xff" * 8
                               + b"\x11" * 16 + struct.pack(">I", 0x80000007),
                               "voip-srtcp-ambiguous", "srtcp-unknown",
                               "an RR under a 16-byte AEAD tag with no keying known: the "
                               "default trailers do not hold it (tag 4 finds E clear, tag 10 "
                               "is misaligned), AEAD ones do"),
    "rtp-version": Crafted(lambda: rtp(1, 0, SSRC, first=0x40), "voip-rtp-header", "rtp-direct",
                           "not reachable by demux: first byte 0x40 is not RTP"),
    "rtp-csrc": Crafted(lambda: rtp(1, 0, SSRC, b"")[:12].replace(b"\x80", b"\x8f", 1),
                        "voip-rtp-header", "rtp", "CC=15 with no CSRC list"),
    "rtp-extension": Crafted(lambda: rtp(1, 0, SSRC, b"\x00" * 8, ext=b"")[:12] +
                             struct.pack(">HH", 0xBEDE, 900) + bytes(8),
                             "voip-rtp-header", "rtp", "extension of 900 words"),
    "rtp-padding": Crafted(lambda: bytes([0xA0]) + rtp(1, 0, SSRC, b"\x01" * 3 + b"\xc8")[1:],
                           "voip-rtp-header", "rtp", "padding count 200 with 4 bytes"),
    "stun-length": Crafted(lambda: stun(b"", key=None, fingerprint=False, length=64),
                           "voip-stun-length", "stun"),
    "stun-attribute": Crafted(lambda: stun(_attr(0x0006, b"abcd", length=400), key=None,
                                           fingerprint=False), "voip-stun-attribute", "stun"),
    "stun-fingerprint": Crafted(lambda: binding_request()[:-1] + b"\x00",
                                "voip-stun-fingerprint", "stun"),
    "stun-order": Crafted(lambda: stun(b"", after=_attr(0x8022, b"evil")), "voip-stun-order",
                          "stun", "SOFTWARE between MESSAGE-INTEGRITY and FINGERPRINT"),
    "turn-length": Crafted(lambda: channel_data(0x4001, compound(SSRC), length=900),
                           "voip-turn-channel", "turn"),
    "sip-content-length": Crafted(lambda: D.request("INVITE", body=sdp("192.0.2.10", 49170),
                                                    content_length=40),
                                  "voip-sip-content-length", "sip"),
    "sip-oversize": Crafted(lambda: LONG_SIP.request("OPTIONS"), "voip-sip-oversize", "sip"),
    "sdp-malformed": Crafted(lambda: D.request("INVITE", body=b"v=0\r\no=x\r\nc=IN IP4\r\n"
                                               b"m=audio port RTP/AVP\r\n"),
                             "voip-sdp-malformed", "sip"),
    "sdp-absurd": Crafted(lambda: D.request("INVITE", body=sdp("192.0.2.10", 49170, extra="".join(
        f"m=audio {30000 + 2 * i} RTP/AVP 0\r\n" for i in range(40)))), "voip-sdp-absurd", "sip"),
}


# ---- whole calls, as packet scripts ----------------------------------------------------
class Event(msgspec.Struct, frozen=True):
    """One packet: a UDP datagram, or a TCP segment (``flags`` 0 = ACK|PSH with data)."""

    ts: float
    transport: str
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes
    flags: int = 0


class Script(msgspec.Struct):
    """Packets in capture order; frame n is ``events[n - 1]``."""

    events: list[Event] = msgspec.field(default_factory=list)

    def udp(self, ts: float, a: tuple[str, int], b: tuple[str, int], payload: bytes) -> int:
        self.events.append(Event(ts, "udp", *a, *b, payload))
        return len(self.events)

    def tcp(self, ts: float, a: tuple[str, int], b: tuple[str, int], payload: bytes = b"",
            flags: int = 0) -> int:
        self.events.append(Event(ts, "tcp", *a, *b, payload, flags))
        return len(self.events)

    def handshake(self, ts: float, a: tuple[str, int], b: tuple[str, int]) -> None:
        self.tcp(ts, a, b, flags=0x02)
        self.tcp(ts, b, a, flags=0x12)
        self.tcp(ts, a, b, flags=0x10)

    def capture(self) -> Capture:
        cap = Capture()
        for e in self.events:
            if e.transport == "udp":
                cap.udp(e.ts, e.src, e.sport, e.dst, e.dport, e.payload)
            else:
                cap.tcp(e.ts, e.src, e.sport, e.dst, e.dport, e.payload, flags=e.flags or 0x18)
        return cap


def clean_call(s: Script, t0: float, d: Dialog, *, media: tuple[int, int] = (49170, 30000),
               secure: bool = False, tcp: bool = False, rtp_packets: int = 50) -> None:
    """INVITE/100/180/200/ACK, ICE-style STUN checks, RTP both ways at 20 ms, compound RTCP
    (SRTCP when ``secure``), BYE/200. SIP over TCP when ``tcp`` (one segment per message,
    the INVITE split in two to exercise the framing)."""
    a, b = d.caller_addr, d.callee_addr
    ma, mb = (a[0], media[0]), (b[0], media[1])

    def sip(ts: float, src: tuple[str, int], dst: tuple[str, int], msg: bytes) -> None:
        if not tcp:
            s.udp(ts, src, dst, msg)
        elif msg.startswith(b"INVITE"):
            s.tcp(ts, src, dst, msg[:100])
            s.tcp(ts, src, dst, msg[100:])
        else:
            s.tcp(ts, src, dst, msg)

    if tcp:
        s.handshake(t0, a, b)
    sip(t0, a, b, d.request("INVITE", body=sdp(ma[0], ma[1], secure=secure)))
    sip(t0 + 0.05, b, a, d.response(100, "Trying"))
    sip(t0 + 0.1, b, a, d.response(180, "Ringing"))
    sip(t0 + 2.0, b, a, d.response(200, "OK", body=sdp(mb[0], mb[1], secure=secure,
                                                        session=2)))
    sip(t0 + 2.05, a, b, d.request("ACK", to_tag=True))
    s.udp(t0 + 2.06, ma, mb, binding_request())
    s.udp(t0 + 2.07, mb, ma, stun(_attr(0x0020, struct.pack(">BBH4s", 0, 1, media[0] ^ 0x2112,
                                                            bytes(4))), msg_type=0x0101))
    for (ts, pa), (_, pb) in zip(rtp_stream(0x1111, rtp_packets, start=t0 + 2.1),
                                 rtp_stream(0x2222, rtp_packets, start=t0 + 2.11), strict=True):
        s.udp(ts, ma, mb, pa)
        s.udp(ts + 0.01, mb, ma, pb)
    end = t0 + 2.2 + rtp_packets * 0.02
    for i, (src, dst, ssrc) in enumerate(((ma, mb, 0x1111), (mb, ma, 0x2222))):
        ra, rb = (src[0], src[1] + 1), (dst[0], dst[1] + 1)
        pkt = compound(ssrc) + bye(ssrc, b"call ended") if not secure else \
            srtcp(compound(ssrc) + bye(ssrc, b"call ended"), 1)
        s.udp(end + i * 0.01, ra, rb, pkt)
    sip(end + 0.1, a, b, d.request("BYE", cseq=2, to_tag=True))
    sip(end + 0.15, b, a, d.response(200, "OK", method="BYE", cseq=2))


def zero_click_call(s: Script, t0: float, d: Dialog, *, port: int = 40000,
                    rtcp_packets: int = 3, sport: int = 49171) -> list[int]:
    """INVITE, 180 Ringing, a crafted RTCP series to the callee (first length field past
    the datagram, like CVE-2019-3568's trigger), CANCEL/200/487 with no 200 to the INVITE.
    Returns the frames of the crafted packets."""
    a, b = d.caller_addr, d.callee_addr
    s.udp(t0, a, b, d.request("INVITE", body=sdp(a[0], 49170)))
    s.udp(t0 + 0.1, b, a, d.response(180, "Ringing"))
    frames = [s.udp(t0 + 0.2 + i * 0.02, (a[0], sport), (b[0], port),
                    sr(0xBADC0DE)[:20] + bytes(1500)) for i in range(rtcp_packets)]
    s.udp(t0 + 1.0, a, b, d.request("CANCEL"))
    s.udp(t0 + 1.05, b, a, d.response(200, "OK", method="CANCEL"))
    s.udp(t0 + 1.1, b, a, d.response(487, "Request Terminated"))
    s.udp(t0 + 1.15, a, b, d.request("ACK"))
    return frames

