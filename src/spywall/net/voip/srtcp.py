"""Which SRTCP trailer a flow uses, and judging its packets with it.

The trailer (``rtcp.SrtcpLayout``) decides where the RTCP compound ends, so a first header
that overstates its length can only be caught with the right one. A flow learns it from its
keying when the capture holds it: the SDP ``a=crypto`` suite and MKI length (RFC 4568,
RFC 7714) or the DTLS-SRTP protection profile and MKI of the ServerHello's ``use_srtp``
extension (RFC 5764, ``dtls.srtp_profile``). Otherwise it is told from the packets
themselves (``Shape``): in the right layout the four bytes before the MKI and tag (after
the tag for AEAD) hold the E flag and a 31-bit SRTCP index that goes up by one per packet of
one sender, so over two packets of one SSRC every wrong candidate falls away (random bytes
or a tag keep a climbing index with odds of about 2^-24). Until then packets are held (at
most ``MAX_HELD``); packets judged without a settled layout say so: with no candidate left
that fits, ``voip-srtcp-length``; fitting some candidates but not others,
``voip-srtcp-ambiguous`` (the layout could not be told, so the packet could not be
cleared) when the candidates left all showed a climbing index or none of the RFC 3711
default layouts among them fits. A lone packet that fits a default layout is not flagged: one
packet cannot tell an AEAD or MKI trailer from the default one (the blind spot that stays).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from spywall.net.voip import rtcp
from spywall.net.voip.rtcp import SrtcpLayout
from spywall.net.voip.rules import Anomaly
from spywall.report import Scalar

if TYPE_CHECKING:
    from spywall.net.packet import Datagram

GUESS_MKI = 4
"""Longest MKI tried when the keying is not in the capture (RFC 4568 allows up to 128
bytes; deployments that use an MKI at all use one to four)."""
CANDIDATES: tuple[SrtcpLayout, ...] = tuple(
    SrtcpLayout(tag, mki, aead)
    for tag, aead in ((10, False), (4, False), (rtcp.AEAD_TAG, True))
    for mki in range(GUESS_MKI + 1)
)
"""Trailers tried from the packet shape: HMAC-SHA1-80 and -32 tags and the 16-byte AEAD
tag, each with an MKI of 0..GUESS_MKI bytes."""
DEFAULTS = (SrtcpLayout(10), SrtcpLayout(4))
"""The RFC 3711 layouts without an MKI (what ``rtcp.check_srtcp`` tries blind)."""
MAX_HELD = 4
"""Packets of one flow held while its layout is being told; beyond, they are judged."""
MAX_HELD_BYTES = 16 << 20
"""Bytes held by all flows of a capture; beyond, packets are judged at once (unsettled)."""
MAX_INDEX_STEP = 128
"""Largest step of the SRTCP index between two packets of one sender that keeps a candidate
(at one compound every few seconds, 128 lost compounds are minutes of RTCP). It must stay
under 256: a candidate one byte off the right one reads the index shifted by a byte, which
climbs by 256 a packet."""
CLOSE_STEP = 2
"""Index steps that count as climbing (the next compound, or one lost between): a candidate
a byte off the right one reads the index shifted and, with a random byte below, can stay
within ``MAX_INDEX_STEP`` now and then, but almost never steps by one or two."""
MAX_SENDERS = 16
"""SSRCs followed per candidate and flow (bounded memory against spoofed senders)."""


def index_at(p: bytes, layout: SrtcpLayout) -> int | None:
    """The E flag + index word of ``p`` in ``layout`` (None if the packet is too short)."""
    at = layout.e_flag_at(len(p))
    if at < 8 or layout.body_end(len(p)) < 8:
        return None
    return int.from_bytes(p[at : at + 4], "big")


def describe(layouts: tuple[SrtcpLayout, ...] | list[SrtcpLayout]) -> str:
    return ", ".join(f"{'AEAD ' if c.aead else ''}tag {c.tag} MKI {c.mki}" for c in layouts)


class Shape(msgspec.Struct):
    """Candidates for one flow's trailer, narrowed by the SRTCP index of each packet."""

    alive: list[SrtcpLayout]
    last: dict[tuple[SrtcpLayout, bytes], int] = msgspec.field(default_factory=dict)
    climbed: set[SrtcpLayout] = msgspec.field(default_factory=set)
    held: list[tuple[Datagram, bytes]] = msgspec.field(default_factory=list)
    maybe: bool = False  # the flow is only perhaps SRTCP: unsettled packets are plain RTCP
    packets: int = 0  # packets observed

    def observe(self, p: bytes) -> None:
        """Drop the candidates this packet contradicts (unless it contradicts them all: then
        the packet is the odd one and the candidates stay)."""
        self.packets += 1
        ssrc = p[4:8]
        keep: list[SrtcpLayout] = []
        updates: list[tuple[SrtcpLayout, int]] = []
        for c in self.alive:
            word = index_at(p, c)
            if word is None or not word >> 31:
                continue
            index = word & 0x7FFFFFFF
            last = self.last.get((c, ssrc))
            if (
                last is not None
                and index != last
                and not 0 < (index - last) & 0x7FFFFFFF <= MAX_INDEX_STEP
            ):
                continue
            keep.append(c)
            updates.append((c, index))
        if not keep:
            return
        self.alive = keep
        for c, index in updates:
            last = self.last.get((c, ssrc))
            if last is not None and 0 < (index - last) & 0x7FFFFFFF <= CLOSE_STEP:
                self.climbed.add(c)
            if last is not None or sum(1 for k in self.last if k[0] == c) < MAX_SENDERS:
                self.last[(c, ssrc)] = index

    def likely(self) -> list[SrtcpLayout]:
        """The candidates left whose index was seen climbing by one or two, else all left."""
        return [c for c in self.alive if c in self.climbed] or list(self.alive)

    def narrowed(self) -> bool:
        """Some candidate climbed, so ``likely`` holds only real possibilities (AEAD with a
        4-byte MKI and HMAC-SHA1-32 without one read the same index)."""
        return any(c in self.climbed for c in self.alive)

    def settled(self) -> SrtcpLayout | None:
        """The layout, once exactly one candidate left was seen climbing by one or two."""
        likely = self.likely()
        return likely[0] if len(likely) == 1 and likely[0] in self.climbed else None


def judge(p: bytes, layout: SrtcpLayout, source: str) -> list[Anomaly]:
    """``rtcp.check_srtcp`` with a known layout; the anomaly says where it came from."""
    found = rtcp.check_srtcp(p, layout)
    return [
        Anomaly(a.rule, a.message + f" (layout from {source})", {**a.detail, "layout_from": source})
        if a.rule == "voip-srtcp-length"
        else a
        for a in found
    ]


def judge_unsettled(
    p: bytes, candidates: list[SrtcpLayout], *, narrowed: bool = False
) -> list[Anomaly]:
    """Judge ``p`` when the flow's layout could not be told to one (see the module
    docstring). ``narrowed``: every candidate left showed a climbing index, so each is a
    real possibility (AEAD with a 4-byte MKI and HMAC-SHA1-32 without one put the index at
    the same place), and fitting only some of them is ambiguous even if a default fits."""
    if len(p) < 8 or p[0] >> 6 != 2 or p[1] not in rtcp.RTCP_TYPES:
        return rtcp.check_srtcp(p, DEFAULTS[0])  # no valid first header at all
    out = rtcp.oversize(p)
    tried = candidates or list(CANDIDATES)
    fitting = [c for c in tried if rtcp.fits_layout(p, c)]
    first = (((p[2] << 8) | p[3]) + 1) * 4
    detail: dict[str, Scalar] = {
        "declared": first,
        "actual": len(p),
        "layout_from": "unknown",
        "layouts_tried": describe(tried),
        "layouts_fitting": describe(fitting),
    }
    if not fitting:
        out.append(
            Anomaly(
                "voip-srtcp-length",
                f"first header says {first} bytes; no SRTCP "
                f"trailer layout the flow may use ({describe(tried)}) leaves room "
                f"for it in the {len(p)}-byte datagram",
                detail,
            )
        )
    elif len(fitting) < len(tried) and (narrowed or not any(c in fitting for c in DEFAULTS)):
        out.append(
            Anomaly(
                "voip-srtcp-ambiguous",
                f"first header says {first} bytes; in the "
                f"{len(p)}-byte datagram only {describe(fitting)} of the trailer "
                f"layouts {describe(tried)} hold it, and neither the capture's "
                "keying nor the packets' SRTCP index told which one the flow uses",
                detail,
            )
        )
    return out
