"""`spywall pcap` on SRTCP whose trailer is AEAD (RFC 7714) or carries an MKI (#14).

The CVE-2019-3568 trigger (a first header claiming more than the compound) is protected
for real and sent in an answered SRTP call; the flow's trailer comes from SDP a=crypto,
from a DTLS 1.2 ServerHello's use_srtp, or from nothing in the capture (told from the
packets' climbing SRTCP index). Oracles: AES-GCM itself (it opens each AEAD packet only
with the right layout, and the opened compound shows the overrun) and tshark, which reads
the HMAC trailer with the MKI length its own SDP parser learns.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.net.pipeline import CaptureResult, Pipeline
from spywall.net.voip import rtcp, srtcp
from spywall.net.voip.analyzer import VoipAnalyzer
from spywall.samples import hidden_media as h
from spywall.samples.pcapwriter import Capture

TSHARK = shutil.which("tshark")
SOURCES = {"sdp": "sdp", "dtls": "dtls", "none": "shape", "nosip": "shape"}


def run(cap: Capture) -> CaptureResult:
    return Pipeline("srtcp.pcap", None, VoipAnalyzer).run(io.BytesIO(cap.pcap()))


def call(
    keying: h.Keying, *, at: int = 2, over: int = 1, crafted: bool = True
) -> tuple[Capture, list[int]]:
    cap = Capture()
    frames = h.srtcp_call(cap, 1_557_000_000.0, keying, at=at, over=over, crafted=crafted)
    return cap, frames


def expected_rule(keying: h.Keying) -> str:
    """AEAD with a 4-byte MKI puts the index where HMAC-SHA1-32 without an MKI puts it: with
    no keying in the capture the two stay possible, and the packet is reported as such."""
    if keying.source in ("none", "nosip") and keying.aead and keying.mki == 4:
        return "voip-srtcp-ambiguous"
    return "voip-srtcp-length"


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize(("aead", "mki"), [(True, 0), (True, 4), (True, 2), (False, 3)])
def test_trigger_and_clean_twin(source: str, aead: bool, mki: int) -> None:
    keying = h.Keying(source, aead, mki)
    cap, frames = call(keying)
    res = run(cap)
    assert res.errors == []
    [f] = res.findings
    assert (f.rule, f.location.frame, f.location.protocol) == (
        expected_rule(keying),
        frames[2],
        "srtcp",
    )
    assert "CVE-2019-3568" in f.cves
    assert f.detail["layout_from"] == (
        SOURCES[source] if f.rule == "voip-srtcp-length" else "unknown"
    )
    twin, _ = call(keying, crafted=False)
    assert run(twin).findings == []


def test_held_packets_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the capture-wide budget for packets held while trailers are told, packets are
    judged at once; nothing stays held after the capture."""
    monkeypatch.setattr(srtcp, "MAX_HELD_BYTES", 10)
    cap, frames = call(h.Keying("none", True, 2))
    pipeline = Pipeline("srtcp.pcap", None, VoipAnalyzer)
    res = pipeline.run(io.BytesIO(cap.pcap()))
    assert [(f.rule, f.location.frame) for f in res.findings] == [("voip-srtcp-length", frames[2])]
    assert isinstance(pipeline.analyzer, VoipAnalyzer)
    assert pipeline.analyzer.held_bytes == 0


def test_the_default_guesses_miss_it() -> None:
    """Why the wiring matters: with a 4-byte MKI the AEAD trigger fits the blind HMAC-SHA1-32
    guess, so checking without the flow's layout calls it clean."""
    plain = h.trigger(h.SSRC_A, over=4)
    p = h.srtcp_aead(plain, 3, bytes(4))
    assert rtcp.check_srtcp(p) == []
    assert [a.rule for a in rtcp.check_srtcp(p, rtcp.SrtcpLayout(16, 4, True))] == [
        "voip-srtcp-length"
    ]


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(sorted(SOURCES)),
    st.booleans(),
    st.integers(0, 4),
    st.integers(0, 4),
    st.integers(1, 4),
    st.booleans(),
)
def test_any_place_and_size(
    source: str, aead: bool, mki: int, at: int, over: int, crafted: bool
) -> None:
    keying = h.Keying(source, aead, mki)
    cap, frames = call(keying, at=at, over=over, crafted=crafted)
    res = run(cap)
    assert res.errors == []
    got = [(f.rule, f.location.frame) for f in res.findings]
    if crafted and at == 0 and source == "nosip" and got[:1] == [("voip-rtcp-length", frames[0])]:
        # Nothing says the flow is secure and no SRTCP came before: a first header too long
        # for any trailer is too long as plain RTCP as well, and is reported so.
        got = [(expected_rule(keying), frames[0])]
    assert got == ([(expected_rule(keying), frames[at])] if crafted else [])
    if aead:  # the oracle: AES-GCM opens every packet at the layout's places
        for frame in frames:
            packet = _payload(cap, frame)
            compound = h.open_aead(packet, mki)
            claim = (int.from_bytes(packet[2:4], "big") + 1) * 4
            assert (claim > len(compound)) == (crafted and frame == frames[at])


@pytest.mark.parametrize("at", [0, 1, 3])
def test_overstated_by_exactly_the_trailer(at: int) -> None:
    """No keying in the capture, HMAC-SHA1-80 with a 2-byte MKI, and a crafted first header
    that overstates by exactly the 16-byte trailer: the crafted packet reads as a complete
    plain RTCP compound. Once the flow's later packets show a climbing SRTCP index, it is
    judged again as SRTCP and reported, alone, at its own frame (it used to hide, and the
    flow's genuine packets were reported as broken RTCP instead)."""
    keying = h.Keying("nosip", False, 2)
    cap, frames = call(keying, at=at, over=4, crafted=True)
    res = run(cap)
    assert res.errors == []
    assert [(f.rule, f.location.frame) for f in res.findings] == [
        ("voip-srtcp-length", frames[at])]
    twin, _ = call(keying, at=at, over=4, crafted=False)
    assert run(twin).findings == []


def _payload(cap: Capture, frame: int) -> bytes:
    """The UDP payload of an Ethernet/IPv4 frame the builders wrote."""
    data = cap.packets[frame - 1][1]
    return data[14 + 20 + 8 :]


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed (apt-get install tshark)")
@pytest.mark.parametrize("mki", [1, 4])
def test_tshark_reads_the_same_trailer(tmp_path: Path, mki: int) -> None:
    """tshark learns the HMAC suite and MKI length from the SDP itself; where its reading
    of each SRTCP packet (index, MKI, tag) leaves less room than the first header claims is
    exactly where spywall reports, and its index climbs as spywall's layout says."""
    keying = h.Keying("sdp", False, mki)
    cap, frames = call(keying, at=3, over=2)
    path = tmp_path / "srtcp.pcap"
    path.write_bytes(cap.pcap())
    fields = (
        "frame.number",
        "srtcp.index",
        "srtcp.mki",
        "srtcp.auth_tag",
        "rtcp.length",
        "udp.length",
    )
    cmd = [TSHARK or "tshark", "-r", str(path), "-Y", "srtcp.index", "-T", "fields"]
    cmd += [*(arg for f in fields for arg in ("-e", f)), "-E", "occurrence=f"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    rows = [line.split("\t") for line in proc.stdout.splitlines() if line]
    assert [int(r[0]) for r in rows] == frames
    assert [int(r[1]) for r in rows] == list(range(1, len(frames) + 1))
    overruns = set()
    for frame, _index, mki_hex, tag_hex, words, udp_len in rows:
        assert len(mki_hex) // 2 == mki
        body = int(udp_len) - 8 - 4 - mki - len(tag_hex) // 2
        if (int(words) + 1) * 4 > body:
            overruns.add(int(frame))
    ours = {f.location.frame for f in run(cap).findings if f.rule == "voip-srtcp-length"}
    assert overruns == ours == {frames[3]}
