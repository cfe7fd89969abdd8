"""Calls that hide a CVE-2019-3568-shaped RTCP trigger in the encodings of issue #14.

Each builder lays out a whole exchange and puts the trigger at a chosen
place; with ``crafted=False`` the same exchange carries an ordinary compound there (the
clean twin). The encodings:

- SRTCP under an AEAD trailer (RFC 7714 9.1: AES-GCM for real, the 16-byte tag ending the
  ciphertext, then E flag + index, then the MKI) or an HMAC trailer with an MKI (RFC 3711
  3.4), keyed by SDP ``a=crypto``, by a DTLS 1.2 ServerHello's ``use_srtp``, or by nothing
  the capture holds. The trigger's first header claims up to ``over`` words past the
  compound: with a 4-byte MKI that still fits the default blind guesses.
- RTP and RTCP over TCP, each packet after a 2-byte length (RFC 4571), the stream cut,
  reordered and partly retransmitted at will.
- RTCP in TURN ChannelData (RFC 8656 12) relayed to the callee over UDP (padding optional)
  and over TCP (padded to 4 bytes), after an Allocate and a ChannelBind.

Builders write into a ``Capture`` (``samples.pcapwriter``) in capture order. The trigger is
the length-past-the-end SR of the 2019 advisories (RFC 3550 6.4.1: a length in words minus
one that says more than was received).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence

import msgspec

from spywall.samples.pcapwriter import TCP_ACK, TCP_SYN, Capture
from spywall.samples.voip import (
    Dialog,
    _attr,
    channel_bind,
    channel_data,
    rtcp_part,
    rtp,
    sdes,
    sr,
    stun,
)

CALLER, CALLEE = ("192.0.2.10", 5060), ("198.51.100.20", 5060)
MEDIA_A, MEDIA_B = ("192.0.2.10", 49170), ("198.51.100.20", 30000)
TURN_SERVER = ("203.0.113.5", 3478)
SSRC_A, SSRC_B = 0x1111AAAA, 0x2222BBBB
AEAD_KEY, AEAD_SALT = bytes(range(16, 32)), bytes(range(100, 112))
HMAC_KEY = bytes(range(20))
CRYPTO_KEY = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
CHANNEL = 0x4001


def trigger(ssrc: int, *, over: int = 1) -> bytes:
    """The CVE-2019-3568 shape: an SR whose length field runs ``over`` words past the
    compound it leads (SR + SDES)."""
    body = sr(ssrc)[4:]
    tail = sdes(ssrc)
    words = (4 + len(body) + len(tail)) // 4 - 1 + over
    return rtcp_part(200, 0, body, length=words) + tail


def benign(ssrc: int) -> bytes:
    """The twin of ``trigger``: SR + SDES, every length right."""
    return sr(ssrc) + sdes(ssrc)


# ---- SRTCP trailers -------------------------------------------------------------------
def aead_iv(ssrc: bytes, index: int) -> bytes:
    """RFC 7714 9.1: salt XOR (2 zero octets, SSRC, 2 zero octets, 31-bit SRTCP index)."""
    block = b"\x00\x00" + ssrc + b"\x00\x00" + struct.pack(">I", index)
    return bytes(x ^ y for x, y in zip(AEAD_SALT, block, strict=True))


def srtcp_aead(plain: bytes, index: int, mki: bytes = b"") -> bytes:
    """RFC 7714 9.1 and 9.2: AES-128-GCM over everything after the first 8 octets, with
    those octets and E flag + index as associated data; IV = salt XOR (0, SSRC, 0, index)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    e_index = struct.pack(">I", 0x80000000 | index)
    iv = aead_iv(plain[4:8], index)
    sealed = AESGCM(AEAD_KEY).encrypt(iv, plain[8:], plain[:8] + e_index)
    return plain[:8] + sealed + e_index + mki


def open_aead(packet: bytes, mki: int) -> bytes:
    """The plaintext compound of ``srtcp_aead`` output (the independent check: AES-GCM
    accepts the tag only where the layout says it is)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    end = len(packet) - mki
    e_index = packet[end - 4 : end]
    index = int.from_bytes(e_index, "big") & 0x7FFFFFFF
    iv = aead_iv(packet[4:8], index)
    return packet[:8] + AESGCM(AEAD_KEY).decrypt(iv, packet[8 : end - 4], packet[:8] + e_index)


def srtcp_hmac(plain: bytes, index: int, mki: bytes = b"", tag: int = 10) -> bytes:
    """RFC 3711 3.4 with an MKI: encrypted part (content not read: a keyed stream), E flag
    + index, MKI, HMAC-SHA1 tag over the part before the MKI."""
    stream = hashlib.sha256(struct.pack(">I", index)).digest() * (len(plain) // 32 + 1)
    body = plain[:8] + bytes(a ^ b for a, b in zip(plain[8:], stream, strict=False))
    body += struct.pack(">I", 0x80000000 | index)
    return body + mki + hmac.new(HMAC_KEY, body, hashlib.sha1).digest()[:tag]


class Keying(msgspec.Struct, frozen=True):
    """How the capture tells the SRTCP trailer: ``sdp`` (a=crypto), ``dtls`` (ServerHello
    use_srtp), ``none`` (only a=fingerprint; the handshake is not in the capture) or
    ``nosip`` (media only, no signalling at all, as in WhatsApp captures)."""

    source: str
    aead: bool = True
    mki: int = 4

    def crypto_line(self) -> str:
        suite = "AEAD_AES_128_GCM" if self.aead else "AES_CM_128_HMAC_SHA1_80"
        mki = f"|1:{self.mki}" if self.mki else ""
        return f"a=crypto:1 {suite} inline:{CRYPTO_KEY}|2^20{mki}"

    def protect(self, plain: bytes, index: int) -> bytes:
        mki = bytes(range(1, self.mki + 1))
        return srtcp_aead(plain, index, mki) if self.aead else srtcp_hmac(plain, index, mki)


def media_sdp(ip: str, port: int, proto: str, lines: Sequence[str], session: int) -> bytes:
    family = "IP6" if ":" in ip else "IP4"
    return (
        "\r\n".join(
            [
                "v=0",
                f"o=- {session} 1 IN {family} {ip}",
                "s=-",
                f"c=IN {family} {ip}",
                "t=0 0",
                f"m=audio {port} {proto} 0",
                "a=rtpmap:0 PCMU/8000",
                *lines,
            ]
        )
        + "\r\n"
    ).encode()


def server_hello(profile: int, mki: int) -> bytes:
    """A DTLS 1.2 record with an unfragmented ServerHello choosing ``profile`` (RFC 5764
    4.1.1 use_srtp: profile list of one, then the MKI)."""
    use_srtp = struct.pack(">HH", 2, profile) + bytes([mki]) + bytes(range(mki))
    exts = (
        struct.pack(">HH", 0xFF01, 1) + b"\x00" + struct.pack(">HH", 14, len(use_srtp)) + use_srtp
    )
    hello = (
        b"\xfe\xfd"
        + bytes(32)
        + b"\x00"
        + struct.pack(">HB", 0xC02B, 0)
        + struct.pack(">H", len(exts))
        + exts
    )
    hs = (
        struct.pack(">B", 2)
        + len(hello).to_bytes(3, "big")
        + struct.pack(">H", 0)
        + (0).to_bytes(3, "big")
        + len(hello).to_bytes(3, "big")
        + hello
    )
    return (
        struct.pack(">BHH", 22, 0xFEFD, 0)
        + (0).to_bytes(6, "big")
        + struct.pack(">H", len(hs))
        + hs
    )


DTLS_PROFILES = {(True, 16): 0x0007, (False, 10): 0x0001}  # (aead, tag) -> profile


def udp(cap: Capture, ts: float, a: tuple[str, int], b: tuple[str, int], payload: bytes) -> int:
    cap.udp(ts, *a, *b, payload)
    return len(cap.packets)


def handshake(cap: Capture, ts: float, a: tuple[str, int], b: tuple[str, int]) -> None:
    cap.tcp(ts, *a, *b, flags=TCP_SYN)
    cap.tcp(ts, *b, *a, flags=TCP_SYN | TCP_ACK)
    cap.tcp(ts, *a, *b, flags=TCP_ACK)


def srtcp_call(
    s: Capture,
    t0: float,
    keying: Keying,
    *,
    packets: int = 5,
    at: int = 2,
    over: int = 1,
    crafted: bool = True,
) -> list[int]:
    """An answered SRTP call (rtcp-mux) whose caller sends ``packets`` SRTCP compounds to
    the callee; the one at ``at`` is the trigger unless not ``crafted``. The frames of the
    SRTCP packets."""
    d = Dialog("srtcp@hidden", "alice@atlanta.example", "bob@biloxi.example", CALLER, CALLEE)
    line = (
        keying.crypto_line()
        if keying.source == "sdp"
        else "a=fingerprint:sha-256 " + ":".join(["AB"] * 32)
    )
    sdp_a = media_sdp(*MEDIA_A, "RTP/SAVP", [line, "a=rtcp-mux"], 1)
    sdp_b = media_sdp(*MEDIA_B, "RTP/SAVP", [line, "a=rtcp-mux"], 2)
    sip = keying.source != "nosip"
    if sip:
        udp(s, t0, CALLER, CALLEE, d.request("INVITE", body=sdp_a))
        udp(s, t0 + 0.1, CALLEE, CALLER, d.response(180, "Ringing"))
        udp(s, t0 + 1.0, CALLEE, CALLER, d.response(200, "OK", body=sdp_b))
        udp(s, t0 + 1.05, CALLER, CALLEE, d.request("ACK", to_tag=True))
    if keying.source == "dtls":
        tag = 16 if keying.aead else 10
        udp(
            s,
            t0 + 1.1,
            MEDIA_B,
            MEDIA_A,
            server_hello(DTLS_PROFILES[(keying.aead, tag)], keying.mki),
        )
    frames: list[int] = []
    for i in range(max(packets, 1) * 4):
        ts = t0 + 1.2 + i * 0.02
        udp(s, ts, MEDIA_A, MEDIA_B, rtp(i + 1, i * 160, SSRC_A, bytes(range(160))))
        udp(s, ts + 0.005, MEDIA_B, MEDIA_A, rtp(i + 7, i * 160, SSRC_B, bytes(range(160))))
        if i % 4 == 3:
            n = len(frames)
            plain = trigger(SSRC_A, over=over) if crafted and n == at else benign(SSRC_A)
            frames.append(udp(s, ts + 0.01, MEDIA_A, MEDIA_B, keying.protect(plain, n + 1)))
    end = t0 + 1.3 + packets * 0.08
    if sip:
        udp(s, end, CALLER, CALLEE, d.request("BYE", cseq=2, to_tag=True))
        udp(s, end + 0.05, CALLEE, CALLER, d.response(200, "OK", method="BYE", cseq=2))
    return frames


# ---- RTP/RTCP over TCP (RFC 4571) -----------------------------------------------------
def rfc4571(packets: Sequence[bytes]) -> bytes:
    return b"".join(struct.pack(">H", len(p)) + p for p in packets)


def media_packets(
    ssrc: int,
    count: int,
    *,
    at: int,
    crafted: bool,
    rtcp_every: int = 3,
    seq0: int = 1,
    bad: bytes | None = None,
) -> tuple[list[bytes], int]:
    """RTP packets with a compound after every ``rtcp_every``; the compound number ``at``
    is the trigger (or ``bad``, any crafted packet) unless not ``crafted``. (packets, index
    of that compound in them)."""
    out: list[bytes] = []
    where, n = -1, 0
    for i in range(count):
        out.append(rtp(seq0 + i, i * 160, ssrc, bytes(range(157 + i % 4))))  # odd sizes: padding
        if i % rtcp_every == rtcp_every - 1:
            if n == at:
                where = len(out)
            crafted_here = crafted and n == at
            out.append((trigger(ssrc) if bad is None else bad) if crafted_here else benign(ssrc))
            n += 1
    return out, where


def tcp_call(
    s: Capture,
    t0: float,
    *,
    cuts: Sequence[int] = (),
    order: Sequence[int] | None = None,
    again: Sequence[int] = (),
    at: int = 1,
    crafted: bool = True,
    answered: bool = True,
    bad: bytes | None = None,
) -> None:
    """A call whose media runs over one TCP connection (SDP TCP/RTP/AVP, a=setup, RFC 4571
    framing, RTCP multiplexed). The caller's direction is cut at ``cuts``, sent in
    ``order`` with ``again`` repeated. Unanswered: INVITE, 180, the media, CANCEL (the 2019
    shape: media to a callee who never answered)."""
    d = Dialog("tcp@hidden", "alice@atlanta.example", "bob@biloxi.example", CALLER, CALLEE)
    sdp_a = media_sdp(
        *MEDIA_A, "TCP/RTP/AVP", ["a=setup:active", "a=connection:new", "a=rtcp-mux"], 1
    )
    sdp_b = media_sdp(
        *MEDIA_B, "TCP/RTP/AVP", ["a=setup:passive", "a=connection:new", "a=rtcp-mux"], 2
    )
    udp(s, t0, CALLER, CALLEE, d.request("INVITE", body=sdp_a))
    udp(s, t0 + 0.1, CALLEE, CALLER, d.response(183, "Session Progress", body=sdp_b))
    if answered:
        udp(s, t0 + 1.0, CALLEE, CALLER, d.response(200, "OK", body=sdp_b))
        udp(s, t0 + 1.05, CALLER, CALLEE, d.request("ACK", to_tag=True))
    client = (MEDIA_A[0], 49500)
    handshake(s, t0 + 1.1, client, MEDIA_B)
    ours, _ = media_packets(SSRC_A, 12, at=at, crafted=crafted, bad=bad)
    if answered:
        theirs, _ = media_packets(SSRC_B, 6, at=-1, crafted=False, seq0=90)
        s.tcp(t0 + 1.15, *MEDIA_B, *client, rfc4571(theirs))
    s.tcp_stream(t0 + 1.2, client, MEDIA_B, rfc4571(ours), cuts, order=order, again=again)
    end = t0 + 3.0
    if answered:
        udp(s, end, CALLER, CALLEE, d.request("BYE", cseq=2, to_tag=True))
        udp(s, end + 0.05, CALLEE, CALLER, d.response(200, "OK", method="BYE", cseq=2))
    else:
        udp(s, end, CALLER, CALLEE, d.request("CANCEL"))
        udp(s, end + 0.05, CALLEE, CALLER, d.response(487, "Request Terminated"))


# ---- TURN ChannelData -----------------------------------------------------------------
def allocate(success: bool) -> bytes:
    lifetime = _attr(0x000D, struct.pack(">I", 600))
    return stun(lifetime, msg_type=0x0103 if success else 0x0003, key=None)


def turn_call(
    s: Capture,
    t0: float,
    *,
    tcp: bool,
    pads: Sequence[bool] = (),
    at: int = 1,
    crafted: bool = True,
    cuts: Sequence[int] = (),
    server: tuple[str, int] = TURN_SERVER,
    allocate_seen: bool = True,
    bad: bytes | None = None,
) -> None:
    """The callee behind a TURN ``server``: Allocate and ChannelBind, then the caller's
    media relayed to the callee in ChannelData (``pads[i]``: pad message i to 4 bytes over
    UDP; always padded over TCP, cut at ``cuts``), the callee's own RTP relayed back. Not
    ``allocate_seen``: the capture starts after the Allocate and ChannelBind (UDP only)."""
    client = MEDIA_B
    ours, _ = media_packets(SSRC_A, 12, at=at, crafted=crafted, bad=bad)
    theirs, _ = media_packets(SSRC_B, 6, at=-1, crafted=False, seq0=90)
    up = [allocate(False), channel_bind(CHANNEL)]
    down = [allocate(True), stun(b"", msg_type=0x0109, key=None)]
    relayed = [
        channel_data(CHANNEL, p, pad=tcp or (pads[i % len(pads)] if pads else True))
        for i, p in enumerate(ours)
    ]
    sent = [channel_data(CHANNEL, p) for p in theirs]
    if tcp:
        handshake(s, t0, client, server)
        s.tcp(t0 + 0.01, *client, *server, b"".join(up))
        s.tcp(t0 + 0.02, *server, *client, b"".join(down))
        s.tcp(t0 + 0.03, *client, *server, b"".join(sent))
        s.tcp_stream(t0 + 0.1, server, client, b"".join(relayed), cuts)
        return
    if allocate_seen:
        for i, (a, b) in enumerate(zip(up, down, strict=True)):
            udp(s, t0 + i * 0.01, client, server, a)
            udp(s, t0 + i * 0.01 + 0.005, server, client, b)
    for i, m in enumerate(sent):
        udp(s, t0 + 0.05 + i * 0.02, client, server, m)
    for i, m in enumerate(relayed):
        udp(s, t0 + 0.06 + i * 0.02, server, client, m)
