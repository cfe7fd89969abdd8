"""The VoIP detector table: one row per rule id the analyzer can report.

Decoders (``sip``, ``sdp``, ``rtp``, ``rtcp``, ``stun``) return ``Anomaly`` values naming a
rule id from ``RULES``; the analyzer turns them into report findings with the row's
metadata. The ``description`` of each row is the exact condition that makes it fire.
"""

from __future__ import annotations

import msgspec

from spywall.report import FindingKind, Scalar, Severity

E, H, IND = FindingKind.EXPLOIT, FindingKind.HEURISTIC, FindingKind.INDICATOR
CVE_RTCP = ("CVE-2019-3568", "CVE-2021-24043")
R_RTP = "https://www.rfc-editor.org/rfc/rfc3550"
R_SRTP = "https://www.rfc-editor.org/rfc/rfc3711"
R_AEAD = "https://www.rfc-editor.org/rfc/rfc7714"
R_XR = "https://www.rfc-editor.org/rfc/rfc3611"
R_DEMUX = "https://www.rfc-editor.org/rfc/rfc7983"
R_STUN = "https://www.rfc-editor.org/rfc/rfc8489"
R_TURN = "https://www.rfc-editor.org/rfc/rfc8656"
R_SIP = "https://www.rfc-editor.org/rfc/rfc3261"
R_SDP = "https://www.rfc-editor.org/rfc/rfc8866"
R_WA = "https://www.whatsapp.com/security/advisories"
R_NVD = "https://nvd.nist.gov/vuln/detail/CVE-2019-3568"


class Rule(msgspec.Struct, frozen=True):
    id: str
    title: str
    description: str
    severity: Severity
    kind: FindingKind
    cves: tuple[str, ...] = ()
    references: tuple[str, ...] = ()


class Anomaly(msgspec.Struct, frozen=True):
    """One broken rule found by a decoder: the rule id, a message and the numbers."""

    rule: str
    message: str
    detail: dict[str, Scalar] = msgspec.field(default_factory=dict)


_ROWS: tuple[Rule, ...] = (
    Rule("voip-rtcp-length", "RTCP length field does not match the bytes received",
         "An RTCP part's length field ((words+1)*4) runs past the datagram, a part is shorter "
         "than its packet type's fixed header, a part inside a compound is not version 2 with "
         "a known RTCP packet type, or the compound walk does not end exactly on the datagram "
         "end (RFC 3550 6.1). The CVE-2019-3568 fix added this very check.",
         Severity.CRITICAL, E, CVE_RTCP, (R_RTP, R_WA, R_NVD)),
    Rule("voip-rtcp-oversize", "RTCP datagram larger than the CVE-2019-3568 fix limit",
         "An RTCP or SRTCP datagram longer than 1480 bytes (rtcp.MAX_RTCP_DATAGRAM), the size "
         "limit reported to have been added by the CVE-2019-3568 fix.",
         Severity.HIGH, E, ("CVE-2019-3568",), (R_WA, R_NVD)),
    Rule("voip-rtcp-report-count", "RTCP report/source count does not fit the packet",
         "SR/RR report blocks (RC*24 bytes), BYE SSRCs (SC*4), SDES chunks (SC) or IJ jitter "
         "values (RC*4) declared by the count field do not fit inside the part's length.",
         Severity.HIGH, E, CVE_RTCP, (R_RTP, "https://www.rfc-editor.org/rfc/rfc5450")),
    Rule("voip-rtcp-sdes-overrun", "RTCP SDES item runs past its chunk",
         "An SDES item's length (type, length, text) runs past the end of the SDES packet, or "
         "a chunk has no terminating null item before the end (RFC 3550 6.5).",
         Severity.HIGH, E, CVE_RTCP, (R_RTP,)),
    Rule("voip-rtcp-bye-reason", "RTCP BYE reason length runs past the packet",
         "A BYE packet's optional reason length octet declares more text than the part holds "
         "(RFC 3550 6.6).", Severity.HIGH, E, CVE_RTCP, (R_RTP,)),
    Rule("voip-rtcp-xr-block", "RTCP XR report block length runs past the packet",
         "An XR report block's length ((block length+1)*4 bytes including its 4-byte header) "
         "runs past the end of the XR packet, or a block of a fixed-size type has another "
         "length (RRT 2, DLRR a multiple of 3, Statistics Summary 9, VoIP Metrics 8; RFC 3611 "
         "4).",
         Severity.HIGH, E, CVE_RTCP, (R_XR,)),
    Rule("voip-srtcp-length", "SRTCP first header length inconsistent with the datagram",
         "For SRTCP the cleartext first header's length must fit the datagram minus the "
         "trailer, which leaves a 32-bit aligned compound that holds the first packet (for "
         "E=0 the whole compound must walk exactly to the trailer). The trailer is the "
         "flow's: from its SDP a=crypto suite and MKI length or its DTLS-SRTP profile "
         "(AES-CM/F8: E flag + 31-bit index, MKI, 10- or 4-byte HMAC tag, RFC 3711 3.4; AEAD: "
         "16-byte tag inside the encrypted part, then E flag + index, then MKI, RFC 7714 9.1), "
         "else the one the packets' climbing SRTCP index shows; when neither tells it, no "
         "candidate trailer (tags 10, 4 and AEAD 16, MKI 0-4 bytes) fits. detail.layout_from "
         "says which (sdp, dtls, shape or unknown).",
         Severity.CRITICAL, E, ("CVE-2019-3568",), (R_SRTP, R_WA, R_AEAD)),
    Rule("voip-srtcp-ambiguous", "SRTCP first header fits only some possible trailers",
         "An SRTCP packet on a flow whose trailer layout neither the capture's keying (SDP "
         "a=crypto, DTLS-SRTP use_srtp) nor the packets' SRTCP index told: its first header "
         "fits some candidate trailers (tags 10, 4 and AEAD 16, MKI 0-4 bytes) but not "
         "others, and none of the RFC 3711 default trailers without an MKI (tag 10 or 4) "
         "among those that fit. The packet could not be cleared (an AEAD or MKI trailer would "
         "hold it, the default ones would not).",
         Severity.MEDIUM, H, ("CVE-2019-3568",), (R_SRTP, R_AEAD, R_WA)),
    Rule("voip-rtp-header", "RTP header does not fit the datagram",
         "An RTP packet on a media flow that is not version 2, whose CSRC list (CC*4) or header "
         "extension (4 + length*4 bytes) runs past the datagram, or (on flows SDP declares plain "
         "RTP/AVP: in SRTP the last octet is the auth tag) whose padding count is zero or "
         "larger than the payload (RFC 3550 5.1).",
         Severity.HIGH, E, ("CVE-2018-6344",),
         (R_RTP, "https://nvd.nist.gov/vuln/detail/CVE-2018-6344")),
    Rule("voip-stun-length", "STUN message length does not match the datagram",
         "A STUN message (first two bits zero, magic cookie 0x2112A442) whose length field is "
         "not the datagram length minus 20 or not a multiple of 4 (RFC 8489 5).",
         Severity.MEDIUM, H, (), (R_STUN,)),
    Rule("voip-stun-attribute", "STUN attribute runs past the message",
         "A STUN attribute whose length (padded to 4) runs past the message, or a "
         "MESSAGE-INTEGRITY/FINGERPRINT attribute of the wrong size (20/32/4 bytes).",
         Severity.HIGH, H, (), (R_STUN,)),
    Rule("voip-stun-fingerprint", "STUN FINGERPRINT does not match the message",
         "FINGERPRINT is not CRC-32 of the message up to it XOR 0x5354554e (RFC 8489 14.7).",
         Severity.MEDIUM, H, (), (R_STUN,)),
    Rule("voip-stun-order", "STUN attribute after MESSAGE-INTEGRITY or FINGERPRINT",
         "An attribute other than MESSAGE-INTEGRITY-SHA256/FINGERPRINT follows "
         "MESSAGE-INTEGRITY, or any attribute follows FINGERPRINT (RFC 8489 14.5, 14.7).",
         Severity.MEDIUM, H, (), (R_STUN,)),
    Rule("voip-turn-channel", "TURN ChannelData header inconsistent",
         "A ChannelData message (first byte 64-127 on a flow that carries STUN/TURN) whose "
         "channel number is outside 0x4000-0x7FFF, or whose length runs past the datagram or "
         "leaves more than 3 bytes of padding (RFC 8656 12.4).",
         Severity.HIGH, H, (), (R_TURN, R_DEMUX)),
    Rule("voip-sip-content-length", "SIP Content-Length does not match the body",
         "A SIP message over UDP whose Content-Length differs from the body received, or a "
         "Content-Length that is not a number or is larger than the transport allows.",
         Severity.MEDIUM, H, (), (R_SIP,)),
    Rule("voip-sip-oversize", "SIP start line, header line or header count oversized",
         "A SIP start line over 2048 bytes, a header line over 8192 bytes, more than 256 "
         "header lines, or a TCP stream with no header end within 65536 bytes.",
         Severity.MEDIUM, H, (), (R_SIP,)),
    Rule("voip-sdp-malformed", "SDP body malformed",
         "An SDP body whose first line is not v=0, or whose o=, c= or m= line lacks its "
         "fields (o: 6, c: IN IP4|IP6 address, m: media port[/n] proto fmt) or has a port "
         "over 65535 (RFC 8866 5).", Severity.MEDIUM, H, (), (R_SDP,)),
    Rule("voip-sdp-absurd", "SDP body with absurd media sections",
         "An SDP body with more than 16 m= sections, a port count over 16, or a media port in "
         "1-1023 other than the placeholder 9 (RFC 8840).",
         Severity.MEDIUM, H, (), (R_SDP,)),
    Rule("voip-zero-click-media", "Media or RTCP sent to a callee who never answered",
         "RTP, RTCP or SRTCP sent, while a SIP call was offered or ringing (and within 300 s "
         "of its last SIP message, calls.RING_TIMEOUT), to an address of "
         "its callee side (a media endpoint or ICE candidate only the callee side's SDP "
         "announced, or an address that signalled only as the callee; sides come from the "
         "dialog's tags, so proxies, B2BUAs and SBCs are placed by what they did) from "
         "anything not on the callee side, in a call that never got a 2xx to an INVITE and "
         "whose callee side sent no RTP of its own before an answer (early media): the "
         "network shape of the 2019 zero-click attack. detail.signalling is sip.",
         Severity.HIGH, H, ("CVE-2019-3568",), (R_WA, R_NVD, R_SIP)),
    Rule("voip-zero-click-campaign", "One source sent pre-answer media to many callees",
         "One source address did voip-zero-click-media to at least 3 distinct callees within "
         "3600 seconds (zeroclick.CAMPAIGN_MIN_CALLEES, zeroclick.CAMPAIGN_WINDOW).",
         Severity.CRITICAL, H, ("CVE-2019-3568",), (R_WA, R_NVD)),
    Rule("voip-rtcp-unsolicited", "A burst of RTCP/SRTCP that no media or signalling explains",
         "On a confirmed flow that no SIP call explains: at least 3 RTCP or SRTCP compounds "
         "within 2 s (zeroclick.BURST_MIN, BURST_WINDOW), all sent before the source sent any "
         "RTP (on the flow or the RTP port below it) and before the destination sent RTP "
         "back, to a destination that never sent RTP to the source in the whole capture "
         "(RFC 3550 6.2-6.3 timers never send such a burst). Media-only evidence: "
         "detail.signalling is none.",
         Severity.HIGH, H, ("CVE-2019-3568",), (R_RTP, R_WA, R_NVD)),
    Rule("voip-unsolicited-campaign", "One source sent unsolicited RTCP to many endpoints",
         "One source address sent RTCP/SRTCP before any media either way (as for "
         "voip-rtcp-unsolicited, one compound is enough) to at least 3 distinct destinations "
         "that never sent RTP back, within 3600 seconds, on flows no SIP call explains. "
         "Media-only evidence: detail.signalling is none.",
         Severity.CRITICAL, H, ("CVE-2019-3568",), (R_RTP, R_WA, R_NVD)),
    Rule("voip-ioc-host", "SIP/SDP host matches a published indicator",
         "A host in a SIP Request-URI, From, To, Contact or Via, or an SDP c= address, matches "
         "a loaded indicator (domains on label boundaries, IP addresses and ranges).",
         Severity.HIGH, IND, (), (R_SIP, R_SDP)),
)

RULES: dict[str, Rule] = {r.id: r for r in _ROWS}
