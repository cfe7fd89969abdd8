"""RTP fixed header checks (RFC 3550 5.1), written for the hot path.

``check_rtp`` costs a few index operations for an ordinary packet and allocates nothing
unless the header is broken.
"""

from __future__ import annotations

from spywall.net.voip.rules import Anomaly

RULE = "voip-rtp-header"
HEADER = 12


def check_rtp(p: bytes, *, padding: bool = True) -> Anomaly | None:
    """The first way ``p`` breaks the RTP header rules, or None.

    Version must be 2; the CSRC list (CC*4 bytes) and the header extension (4-byte header
    plus length*4 bytes) must fit; with the P bit and ``padding`` the last octet (padding
    count, which counts itself) must be 1..payload length. In SRTP the padding sits inside
    the encrypted payload and the last octet belongs to the authentication tag, so callers
    pass ``padding=False`` unless the flow is known to be plain RTP.
    """
    n = len(p)
    if n < HEADER:
        return Anomaly(RULE, f"RTP packet of {n} bytes is shorter than the 12-byte header",
                       {"length": n})
    b0 = p[0]
    if b0 >> 6 != 2:
        return Anomaly(RULE, f"RTP version {b0 >> 6}, not 2", {"version": b0 >> 6})
    off = HEADER + (b0 & 0x0F) * 4
    if off > n:
        return Anomaly(RULE, f"CSRC count {b0 & 0x0F} needs {off} bytes, datagram has {n}",
                       {"csrc_count": b0 & 0x0F, "needed": off, "actual": n})
    if b0 & 0x10:
        if off + 4 > n:
            return Anomaly(RULE, f"extension header at {off} runs past the {n}-byte datagram",
                           {"needed": off + 4, "actual": n})
        words = (p[off + 2] << 8) | p[off + 3]
        off += 4 + words * 4
        if off > n:
            return Anomaly(RULE, f"header extension of {words} words needs {off} bytes, "
                           f"datagram has {n}",
                           {"extension_words": words, "needed": off, "actual": n})
    if b0 & 0x20 and padding:
        pad = p[-1]
        if pad == 0 or pad > n - off:
            return Anomaly(RULE, f"padding count {pad} with {n - off} bytes after the header",
                           {"padding": pad, "payload": n - off})
    return None


def ssrc_seq(p: bytes) -> tuple[int, int]:
    """(SSRC, sequence number) of a packet of at least 12 bytes."""
    return int.from_bytes(p[8:12], "big"), (p[2] << 8) | p[3]
