"""RTCP compound packets (RFC 3550 6), RTCP XR (RFC 3611) and the SRTCP trailer (RFC 3711).

``check_rtcp`` walks a compound datagram part by part: every part must be version 2 with a
known packet type, its length field ((length+1)*4 bytes) must land exactly on the next part
and the last one on the datagram end, and the counted structures inside SR, RR, IJ, SDES,
BYE and XR must fit their part. ``check_srtcp`` applies what can still be checked when
everything after the first 8 bytes is encrypted.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from spywall.net.voip.rules import Anomaly

MAX_RTCP_DATAGRAM = 1480
"""Size limit on incoming RTCP reported for the CVE-2019-3568 fix (an Ethernet MTU of 1500
minus the IPv4 and UDP headers is 1472; legitimate compound RTCP stays under one MTU)."""

SRTCP_TAG_LENGTHS = (10, 4)
"""Authentication tag lengths tried for SRTCP when the flow's suite is unknown: HMAC-SHA1-80
(10 bytes, the RFC 3711 default) and HMAC-SHA1-32 (4 bytes). The trailer is the 4-byte E
flag + 31-bit index plus the tag. AEAD suites (RFC 7714) and MKIs change the trailer
(``SrtcpLayout``); trying them blind would let a bad first header fit some layout, so they
are used only when the flow's keying says so (``layout_from_crypto``,
``layout_from_dtls_profile``)."""

SRTCP_INDEX = 4
AEAD_TAG = 16  # AEAD_AES_128_GCM / AEAD_AES_256_GCM (RFC 7714 14.1): 16-octet tags


class SrtcpLayout(msgspec.Struct, frozen=True):
    """The SRTCP trailer of a flow's suite. AES-CM/F8 with HMAC (RFC 3711 3.4): encrypted
    part, E flag + index, MKI, tag. AEAD (RFC 7714 9.1): encrypted part whose last ``tag``
    bytes are the AEAD tag, then E flag + index, then MKI."""

    tag: int = 10
    mki: int = 0
    aead: bool = False

    def body_end(self, n: int) -> int:
        """Where the RTCP compound (encrypted or not) ends in an ``n``-byte datagram."""
        return n - SRTCP_INDEX - self.mki - self.tag

    def e_flag_at(self, n: int) -> int:
        return n - SRTCP_INDEX - self.mki if self.aead else self.body_end(n)


# SDES suites (RFC 4568 6.2, RFC 6188, RFC 7714 14.2): SRTCP tag bytes, AEAD or not. The
# _32 suites keep an 80-bit tag for SRTCP.
CRYPTO_SUITES: dict[str, tuple[int, bool]] = {
    "AES_CM_128_HMAC_SHA1_80": (10, False), "AES_CM_128_HMAC_SHA1_32": (10, False),
    "F8_128_HMAC_SHA1_80": (10, False), "AES_192_CM_HMAC_SHA1_80": (10, False),
    "AES_192_CM_HMAC_SHA1_32": (10, False), "AES_256_CM_HMAC_SHA1_80": (10, False),
    "AES_256_CM_HMAC_SHA1_32": (10, False),
    "AEAD_AES_128_GCM": (AEAD_TAG, True), "AEAD_AES_256_GCM": (AEAD_TAG, True),
}
# DTLS-SRTP protection profiles (RFC 5764 4.1.2, RFC 7714 14.2).
DTLS_PROFILES: dict[int, tuple[int, bool]] = {
    0x0001: (10, False), 0x0002: (10, False), 0x0007: (AEAD_TAG, True),
    0x0008: (AEAD_TAG, True),
}


def layout_from_crypto(value: str) -> SrtcpLayout | None:
    """The layout an SDP ``a=crypto`` value gives ("1 AEAD_AES_128_GCM inline:KEY|2^20|1:4":
    tag, suite and the MKI length of its first key), None for a suite not listed or an
    MKI length outside 1..128 (RFC 4568 9.1)."""
    parts = value.split()
    if len(parts) < 3 or parts[1] not in CRYPTO_SUITES:
        return None
    tag, aead = CRYPTO_SUITES[parts[1]]
    key = parts[2].split(";")[0]
    mki = 0
    fields = key.split("|")[1:]
    if fields and ":" in fields[-1]:
        length = fields[-1].split(":", 1)[1]
        if not (length.isascii() and length.isdigit() and 1 <= int(length[:4]) <= 128):
            return None  # an MKI length that makes no sense: the layout is unknown
        mki = int(length)
    return SrtcpLayout(tag, mki, aead)


def layout_from_dtls_profile(profile: int, mki: int = 0) -> SrtcpLayout | None:
    found = DTLS_PROFILES.get(profile)
    return None if found is None else SrtcpLayout(found[0], mki, found[1])

# Packet type -> (name, minimum part length in bytes: header plus fixed fields).
RTCP_TYPES: dict[int, tuple[str, int]] = {
    192: ("FIR", 8), 193: ("NACK", 12), 194: ("SMPTETC", 8), 195: ("IJ", 4),
    200: ("SR", 28), 201: ("RR", 8), 202: ("SDES", 4), 203: ("BYE", 4), 204: ("APP", 12),
    205: ("RTPFB", 12), 206: ("PSFB", 12), 207: ("XR", 8), 208: ("AVB", 8),
    209: ("RSI", 20), 210: ("TOKEN", 8), 211: ("IDMS", 8), 212: ("RGRS", 8),
    213: ("SNM", 8),
}

LENGTH = "voip-rtcp-length"
COUNT = "voip-rtcp-report-count"


def _report_blocks(fixed: int, size: int) -> Callable[[bytes, int, int], list[Anomaly]]:
    def check(p: bytes, pos: int, end: int) -> list[Anomaly]:
        count = p[pos] & 0x1F
        need = fixed + count * size
        if need > end - pos:
            return [Anomaly(COUNT, f"{RTCP_TYPES[p[pos + 1]][0]} count {count} needs {need} "
                            f"bytes, the part has {end - pos}",
                            {"offset": pos, "count": count, "needed": need,
                             "actual": end - pos})]
        return []
    return check


def _sdes(p: bytes, pos: int, end: int) -> list[Anomaly]:
    chunks, off = p[pos] & 0x1F, pos + 4
    for i in range(chunks):
        if off + 4 > end:
            return [Anomaly(COUNT, f"SDES source count {chunks}, chunk {i} starts past the part",
                            {"offset": pos, "count": chunks, "chunk": i})]
        off += 4
        while True:
            if off >= end:
                return [Anomaly("voip-rtcp-sdes-overrun", f"SDES chunk {i} has no null item "
                                "before the end of the part", {"offset": off, "chunk": i})]
            if p[off] == 0:
                off = pos + ((off - pos) // 4 + 1) * 4
                break
            if off + 2 > end or off + 2 + p[off + 1] > end:
                length = p[off + 1] if off + 1 < end else None
                return [Anomaly("voip-rtcp-sdes-overrun", f"SDES item type {p[off]} of length "
                                f"{length} at {off} runs past the part end at {end}",
                                {"offset": off, "item_type": p[off], "item_length": length,
                                 "part_end": end})]
            off += 2 + p[off + 1]
    return []


def _bye(p: bytes, pos: int, end: int) -> list[Anomaly]:
    out = _report_blocks(4, 4)(p, pos, end)
    if out:
        return out
    off = pos + 4 + (p[pos] & 0x1F) * 4
    if off < end and off + 1 + p[off] > end:
        return [Anomaly("voip-rtcp-bye-reason", f"BYE reason length {p[off]} at {off} runs past "
                        f"the part end at {end}",
                        {"offset": off, "reason_length": p[off], "available": end - off - 1})]
    return []


XR_BLOCK_WORDS: dict[int, Callable[[int], bool]] = {
    4: lambda words: words == 2,                     # Receiver Reference Time
    5: lambda words: words % 3 == 0,                 # DLRR: 3 words per sub-block
    6: lambda words: words == 9,                     # Statistics Summary
    7: lambda words: words == 8,                     # VoIP Metrics
}
"""RFC 3611 block types whose block length field is fixed (or a multiple)."""


def _xr(p: bytes, pos: int, end: int) -> list[Anomaly]:
    off = pos + 8
    while off < end:
        if off + 4 > end:
            return [Anomaly("voip-rtcp-xr-block", f"XR block header at {off} runs past the "
                            f"part end at {end}", {"offset": off, "part_end": end})]
        size = (((p[off + 2] << 8) | p[off + 3]) + 1) * 4
        if off + size > end:
            return [Anomaly("voip-rtcp-xr-block", f"XR block type {p[off]} of {size} bytes at "
                            f"{off} runs past the part end at {end}",
                            {"offset": off, "block_type": p[off], "block_bytes": size,
                             "available": end - off})]
        fits = XR_BLOCK_WORDS.get(p[off])
        if fits is not None and not fits(size // 4 - 1):
            return [Anomaly("voip-rtcp-xr-block", f"XR block type {p[off]} has block length "
                            f"{size // 4 - 1}, not what RFC 3611 fixes for it",
                            {"offset": off, "block_type": p[off], "block_length": size // 4 - 1})]
        off += size
    return []


BODY_CHECKS: dict[int, Callable[[bytes, int, int], list[Anomaly]]] = {
    200: _report_blocks(28, 24), 201: _report_blocks(8, 24), 195: _report_blocks(4, 4),
    202: _sdes, 203: _bye, 207: _xr,
}


def walk(p: bytes, end: int, *, deep: bool = True) -> list[Anomaly]:
    """Walk the compound ``p[:end]``; the anomalies found (empty when it is well formed)."""
    pos, index = 0, 0
    while pos < end:
        if end - pos < 4:
            return [Anomaly(LENGTH, f"{end - pos} bytes left after part {index}, no room for a "
                            "header", {"offset": pos, "left": end - pos, "parts": index})]
        b0, pt = p[pos], p[pos + 1]
        info = RTCP_TYPES.get(pt)
        if b0 >> 6 != 2 or info is None:
            return [Anomaly(LENGTH, f"part {index} at offset {pos} is not an RTCP header "
                            f"(version {b0 >> 6}, type {pt}): the previous length is wrong",
                            {"offset": pos, "part": index, "version": b0 >> 6,
                             "packet_type": pt})]
        size = (((p[pos + 2] << 8) | p[pos + 3]) + 1) * 4
        if pos + size > end:
            return [Anomaly(LENGTH, f"{info[0]} length field says {size} bytes at offset {pos}, "
                            f"only {end - pos} received",
                            {"offset": pos, "part": index, "packet_type": pt,
                             "declared": size, "actual": end - pos})]
        if size < info[1]:
            return [Anomaly(LENGTH, f"{info[0]} part of {size} bytes is shorter than its "
                            f"{info[1]}-byte fixed part",
                            {"offset": pos, "packet_type": pt, "declared": size,
                             "minimum": info[1]})]
        if b0 & 0x20 and not 0 < p[pos + size - 1] <= size - 4:
            return [Anomaly(LENGTH, f"{info[0]} padding count {p[pos + size - 1]} in a "
                            f"{size}-byte part", {"offset": pos, "padding": p[pos + size - 1],
                                                  "declared": size})]
        if deep:
            check = BODY_CHECKS.get(pt)
            if check is not None:
                found = check(p, pos, pos + size)
                if found:
                    return found
        pos += size
        index += 1
    return []


def check_rtcp(p: bytes) -> list[Anomaly]:
    """Anomalies of a plain (unencrypted) RTCP datagram, the size limit included."""
    return oversize(p) + walk(p, len(p))


def oversize(p: bytes) -> list[Anomaly]:
    if len(p) > MAX_RTCP_DATAGRAM:
        return [Anomaly("voip-rtcp-oversize", f"RTCP datagram of {len(p)} bytes, over the "
                        f"{MAX_RTCP_DATAGRAM}-byte limit",
                        {"length": len(p), "limit": MAX_RTCP_DATAGRAM})]
    return []


def srtcp_fits(p: bytes) -> int | None:
    """The tag length (of ``SRTCP_TAG_LENGTHS``, no MKI) for which ``p`` is a consistent
    SRTCP datagram (``fits_layout``), or None."""
    for tag in SRTCP_TAG_LENGTHS:
        if fits_layout(p, SrtcpLayout(tag)):
            return tag
    return None


def fits_layout(p: bytes, layout: SrtcpLayout) -> bool:
    """Is ``p`` a consistent SRTCP datagram with this trailer layout? The compound before
    the trailer is 32-bit aligned and holds the first packet; when the E flag is clear it
    is cleartext and must walk exactly to its end."""
    n = len(p)
    body = layout.body_end(n)
    if n < 8 or body < 8 or body % 4:
        return False
    first = (((p[2] << 8) | p[3]) + 1) * 4
    if first > body:
        return False
    return bool(p[layout.e_flag_at(n)] & 0x80) or not walk(p, body, deep=True)


def check_srtcp(p: bytes, layout: SrtcpLayout | None = None) -> list[Anomaly]:
    """Anomalies of a datagram taken as SRTCP (size limit and first-header consistency),
    with the flow's trailer ``layout`` when its keying is known, else the default tags."""
    out = oversize(p)
    if len(p) < 8 or p[0] >> 6 != 2 or p[1] not in RTCP_TYPES:
        return [*out, Anomaly("voip-srtcp-length", f"SRTCP datagram of {len(p)} bytes has no "
                              "valid first RTCP header", {"length": len(p)})]
    if layout is not None:
        if not fits_layout(p, layout):
            first = (((p[2] << 8) | p[3]) + 1) * 4
            out.append(Anomaly("voip-srtcp-length", f"first header says {first} bytes; the "
                               f"{len(p)}-byte datagram's {'AEAD ' if layout.aead else ''}"
                               f"trailer (tag {layout.tag}, MKI {layout.mki}) leaves "
                               f"{layout.body_end(len(p))}",
                               {"declared": first, "actual": len(p), "tag": layout.tag,
                                "mki": layout.mki, "aead": layout.aead}))
        return out
    if srtcp_fits(p) is None:
        first = (((p[2] << 8) | p[3]) + 1) * 4
        out.append(Anomaly("voip-srtcp-length", f"first header says {first} bytes; with a "
                           f"{SRTCP_INDEX}-byte index and a tag of {SRTCP_TAG_LENGTHS} bytes the "
                           f"{len(p)}-byte datagram does not hold it",
                           {"declared": first, "actual": len(p),
                            "tags_tried": ",".join(map(str, SRTCP_TAG_LENGTHS))}))
    return out


def sender_ssrc(p: bytes) -> int | None:
    """SSRC of the first part's sender (bytes 4-7), if present."""
    return int.from_bytes(p[4:8], "big") if len(p) >= 8 else None
