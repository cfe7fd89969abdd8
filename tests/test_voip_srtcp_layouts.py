"""SRTCP trailers of AEAD suites (RFC 7714) and with an MKI (RFC 3711): ``SrtcpLayout``.

Packets are protected for real (AES-GCM from ``cryptography``, the RFC 7714 9.1 layout:
the first 8 octets and the E flag + index are associated data, the tag ends the
ciphertext, the index and the MKI follow). A consistent packet fits its layout; a first
header claiming more than the datagram holds (the CVE-2019-3568 shape) is flagged with the
layout, and the test shows it can fit the blind default guesses.
"""

from __future__ import annotations

import os
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.net.voip import rtcp
from spywall.net.voip.rtcp import SrtcpLayout


def compound(words: int, claim: int | None = None) -> bytes:
    """An RR (sender SSRC, no blocks) then an APP part padding to ``words`` 32-bit words;
    the first header's length field says ``claim`` words-1 if given."""
    rr = struct.pack("!BBHI", 0x80, 201, (claim if claim is not None else 1), 0x1234)
    app_words = max(3, words - 2)
    app = struct.pack("!BBHI4s", 0x80, 204, app_words - 1, 0x1234, b"spyw") + bytes(
        4 * (app_words - 3))
    return rr + app


def protect_aead(plain: bytes, mki: int, index: int = 7) -> bytes:
    key, salt = os.urandom(16), os.urandom(12)
    e_index = struct.pack("!I", 0x80000000 | index)
    iv = bytes(a ^ b for a, b in zip(salt, b"\x00\x00" + plain[4:8] + b"\x00\x00"
                                     + struct.pack("!I", index), strict=True))
    sealed = AESGCM(key).encrypt(iv, plain[8:], plain[:8] + e_index)
    return plain[:8] + sealed + e_index + os.urandom(mki)


def protect_cm(plain: bytes, tag: int, mki: int, index: int = 7) -> bytes:
    """AES-CM/HMAC layout; the encrypted part is random (its content is not read)."""
    return (plain[:8] + os.urandom(len(plain) - 8) + struct.pack("!I", 0x80000000 | index)
            + os.urandom(mki) + os.urandom(tag))


@settings(max_examples=60, deadline=None)
@given(st.integers(3, 40), st.integers(0, 4), st.booleans())
def test_consistent_packets_fit_their_layout(words: int, mki: int, aead: bool) -> None:
    plain = compound(words)
    layout = SrtcpLayout(rtcp.AEAD_TAG, mki, True) if aead else SrtcpLayout(10, mki)
    p = protect_aead(plain, mki) if aead else protect_cm(plain, 10, mki)
    assert rtcp.fits_layout(p, layout)
    assert rtcp.check_srtcp(p, layout) == []


@settings(max_examples=60, deadline=None)
@given(st.integers(3, 40), st.integers(0, 4), st.integers(1, 8))
def test_overstated_first_header_is_flagged_with_the_layout(words: int, mki: int,
                                                            extra: int) -> None:
    """The first header claims ``extra`` words past the compound: flagged with the AEAD
    layout, whatever the default guesses make of it."""
    plain = compound(words)
    total = len(plain) // 4
    bad = compound(words, claim=total - 1 + extra)
    p = protect_aead(bad, mki)
    layout = SrtcpLayout(rtcp.AEAD_TAG, mki, True)
    assert not rtcp.fits_layout(p, layout)
    [anomaly] = rtcp.check_srtcp(p, layout)
    assert anomaly.rule == "voip-srtcp-length"


def test_blind_guesses_miss_an_aead_overstatement() -> None:
    """Why the layout matters: with 4 bytes of MKI, an AEAD packet whose first header runs
    into the tag fits the default 10-byte guess."""
    plain = compound(6)
    bad = compound(6, claim=len(plain) // 4 - 1 + 4)  # 16 bytes into the 16-byte tag
    for _ in range(64):  # the guess also needs the byte it takes as the E flag set
        p = protect_aead(bad, 4)
        if rtcp.srtcp_fits(p) is not None:
            break
    assert rtcp.srtcp_fits(p) is not None
    assert rtcp.check_srtcp(p) == []
    assert rtcp.check_srtcp(p, SrtcpLayout(rtcp.AEAD_TAG, 4, True))


def test_layouts_from_keying() -> None:
    assert rtcp.layout_from_crypto("1 AEAD_AES_128_GCM inline:a2V5a2V5a2V5|2^20|1:4") == \
        SrtcpLayout(16, 4, True)
    assert rtcp.layout_from_crypto("2 AES_CM_128_HMAC_SHA1_32 inline:a2V5") == \
        SrtcpLayout(10, 0, False)
    assert rtcp.layout_from_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:k|2:1") == \
        SrtcpLayout(10, 1, False)
    assert rtcp.layout_from_crypto("1 SOME_FUTURE_SUITE inline:k") is None
    assert rtcp.layout_from_crypto("bogus") is None
    assert rtcp.layout_from_dtls_profile(0x0007) == SrtcpLayout(16, 0, True)
    assert rtcp.layout_from_dtls_profile(0x0001, mki=2) == SrtcpLayout(10, 2, False)
    assert rtcp.layout_from_dtls_profile(0x9999) is None


@given(st.text(max_size=80))
def test_any_crypto_value_gives_a_layout_or_none(value: str) -> None:
    out = rtcp.layout_from_crypto(value)
    assert out is None or (out.tag in (10, 16) and 0 <= out.mki <= 128)
    out = rtcp.layout_from_crypto("1 AEAD_AES_128_GCM inline:k|2^20|1:" + value)
    assert out is None or 0 <= out.mki <= 128  # 0: the text ended the key's MKI field
    if value.isascii() and value.isdigit() and 1 <= int(value) <= 128:
        assert out is not None
        assert out.mki == int(value)
