"""pcap / pcapng reading: formats, byte orders, sections, interfaces, damaged files."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spywall.errors import FormatError, SpywallError, TruncatedError
from spywall.net.capture import CaptureReader, Record
from spywall.samples.pcapwriter import (
    CUSTOM,
    ISB,
    NRB,
    Capture,
    PcapngWriter,
    PcapWriter,
)

TS = [1_700_000_000.123456, 1_700_000_000.5, 1_700_000_001.999999]
FRAMES = [b"\x01" * 60, b"\x02" * 1514, b"\x03" * 42]


def read_all(data: bytes) -> tuple[list[Record], list[tuple[int, str, str]], str]:
    errors: list[tuple[int, str, str]] = []
    reader = CaptureReader(io.BytesIO(data), lambda f, c, m: errors.append((f, c, m)))
    return list(reader), errors, reader.format


def pcap_bytes(nano: bool, big: bool, linktype: int = 1) -> bytes:
    buf = io.BytesIO()
    w = PcapWriter(buf, linktype, nano=nano, big_endian=big)
    for ts, fr in zip(TS, FRAMES, strict=True):
        w.write(ts, fr)
    return buf.getvalue()


@pytest.mark.parametrize("nano", [False, True])
@pytest.mark.parametrize("big", [False, True])
def test_pcap_both_resolutions_and_byte_orders(nano: bool, big: bool) -> None:
    recs, errors, fmt = read_all(pcap_bytes(nano, big, 113))
    assert fmt == "pcap"
    assert not errors
    assert [r[0] for r in recs] == [1, 2, 3]
    assert [r[3] for r in recs] == FRAMES
    assert all(r[2] == 113 for r in recs)
    for (_, ts, _, _, wire), want, fr in zip(recs, TS, FRAMES, strict=True):
        assert ts == pytest.approx(want, abs=1e-6)
        assert wire == len(fr)


def multi_section(big_first: bool) -> bytes:
    """Two sections (byte orders differ), three interfaces with different resolutions,
    EPB/SPB/OPB packets and NRB/ISB/custom blocks that must be skipped."""
    buf = io.BytesIO()
    w = PcapngWriter(buf, big_endian=big_first)
    w.interface(1)
    w.interface(113, tsresol=9)
    w.interface(101, tsresol=0x80 | 20)   # 2^-20 seconds
    w.write(TS[0], FRAMES[0], interface=0)
    w.block(NRB, struct.pack(w.bo + "HH", 0, 0))
    w.write(TS[1], FRAMES[1], interface=1)
    w.block(CUSTOM, b"\x00\x00\x7f\xff" + b"vendor data")
    w.write(TS[2], FRAMES[2], interface=2)
    w.block(ISB, struct.pack(w.bo + "III", 0, 0, 0))
    w.bo = "<" if big_first else ">"
    w.section()
    w.interface(276, snaplen=30)
    w.simple(FRAMES[1][:30], orig_len=len(FRAMES[1]))   # no more than the snaplen
    w.obsolete(TS[2], FRAMES[0])
    return buf.getvalue()


@pytest.mark.parametrize("big_first", [False, True])
def test_pcapng_sections_interfaces_and_block_kinds(big_first: bool) -> None:
    recs, errors, fmt = read_all(multi_section(big_first))
    assert fmt == "pcapng"
    assert not errors
    assert [r[0] for r in recs] == [1, 2, 4, 5, 6]   # the custom block is frame 3
    assert [r[2] for r in recs] == [1, 113, 101, 276, 276]
    assert recs[0][1] == pytest.approx(TS[0], abs=1e-6)
    assert recs[1][1] == pytest.approx(TS[1], abs=1e-9)
    assert recs[2][1] == pytest.approx(TS[2], abs=2e-6)
    assert recs[3][3] == FRAMES[1][:30]
    assert recs[3][4] == len(FRAMES[1])
    assert recs[4][3] == FRAMES[0]


def test_pcapng_if_tsoffset() -> None:
    buf = io.BytesIO()
    w = PcapngWriter(buf)
    opts = struct.pack("<HH", 14, 8) + struct.pack("<q", 1000) + b"\x00" * 4
    w.block(1, struct.pack("<HHI", 1, 0, 0) + opts)
    w.scales.append(1_000_000)
    w.write(5.25, b"x" * 20)
    recs, errors, _ = read_all(buf.getvalue())
    assert not errors
    assert recs[0][1] == pytest.approx(1005.25)


def test_truncated_pcap_yields_what_came_before() -> None:
    data = pcap_bytes(False, False)
    cut = data[:-10]
    errors: list[tuple[int, str, str]] = []
    reader = CaptureReader(io.BytesIO(cut), lambda f, c, m: errors.append((f, c, m)))
    got = []
    with pytest.raises(TruncatedError):
        got.extend(reader)
    assert [r[3] for r in got] == FRAMES[:2]


def test_bogus_caplen_resynchronises_on_the_next_plausible_record() -> None:
    data = bytearray(pcap_bytes(False, False))
    second = 24 + 16 + len(FRAMES[0])
    struct.pack_into("<I", data, second + 8, 0x7FFFFFFF)
    recs, errors, _ = read_all(bytes(data))
    assert [r[3] for r in recs] == [FRAMES[0], FRAMES[2]]
    assert recs[1][1] == pytest.approx(TS[2], abs=1e-6)
    assert errors[0][1] == "malformed"
    assert f"skipped {16 + len(FRAMES[1])} bytes" in errors[0][2]


def three_epbs(second: bytes) -> tuple[bytearray, int]:
    """A pcapng of three EPBs, and the offset of the second (to damage it)."""
    buf = io.BytesIO()
    w = PcapngWriter(buf)
    w.interface(1)
    w.write(TS[0], FRAMES[0])
    start = buf.tell()
    w.write(TS[1], second)
    w.write(TS[2], FRAMES[2])
    return bytearray(buf.getvalue()), start


def test_pcapng_bogus_block_length_resynchronises() -> None:
    data, start = three_epbs(FRAMES[1])
    struct.pack_into("<I", data, start + 4, 0x0FFFFFF1)
    recs, errors, _ = read_all(bytes(data))
    assert [r[3] for r in recs] == [FRAMES[0], FRAMES[2]]
    assert "skipped" in errors[0][2]


def test_bogus_caplen_in_the_first_record_loses_framing() -> None:
    data = bytearray(pcap_bytes(False, False))
    struct.pack_into("<I", data, 24 + 8, 0x7FFFFFFF)
    with pytest.raises(FormatError, match="framing lost"):
        read_all(bytes(data))


def test_garbage_with_no_plausible_record_loses_framing() -> None:
    data = pcap_bytes(False, False)[:24 + 16 + len(FRAMES[0])]
    data += struct.pack("<IIII", 5, 0, 0x7FFFFFFF, 0) + bytes(range(256)) * 8
    got: list[Record] = []
    with pytest.raises(FormatError, match="no plausible record"):
        got.extend(CaptureReader(io.BytesIO(data), lambda f, c, m: None))
    assert len(got) == 1


def test_epb_caplen_past_block_is_an_error_entry_and_reading_goes_on() -> None:
    data, start = three_epbs(FRAMES[2])
    struct.pack_into("<I", data, start + 20, 5000)
    recs, errors, _ = read_all(bytes(data))
    assert [r[0] for r in recs] == [1, 3]
    assert errors[0][0] == 2
    assert "runs past" in errors[0][2]


def test_unknown_interface_is_an_error_entry() -> None:
    buf = io.BytesIO()
    w = PcapngWriter(buf)
    w.interface(1)
    w.scales.append(1_000_000)
    w.write(TS[0], FRAMES[0], interface=1)
    recs, errors, _ = read_all(buf.getvalue())
    assert recs == []
    assert "interface 1" in errors[0][2]


def test_not_a_capture() -> None:
    with pytest.raises(FormatError):
        CaptureReader(io.BytesIO(b"GIF89a" + bytes(40)), lambda f, c, m: None)


def test_streams_in_chunks_larger_than_one_read() -> None:
    cap = Capture(framing="raw")
    big = b"\x45" + bytes(60_000)
    for i in range(40):
        cap.packets.append((1.0 + i, big))
    data = cap.pcap()
    seen: list[int] = []
    reader = CaptureReader(io.BytesIO(data), lambda f, c, m: None,
                           lambda chunk: seen.append(len(chunk)))
    assert sum(1 for _ in reader) == 40
    assert sum(seen) == len(data)
    assert max(seen) < len(data)


# ---- property tests ----------------------------------------------------------------
def _drain(data: bytes) -> None:
    try:
        for _ in CaptureReader(io.BytesIO(data), lambda f, c, m: None):
            pass
    except SpywallError:
        pass


SEEDS = [pcap_bytes(True, True), pcap_bytes(False, False), multi_section(True),
         multi_section(False)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                        max_size=12), st.integers(0, 10_000))
def test_mutated_captures_raise_only_spywall_errors(seed: bytes, edits: list[tuple[int, int]],
                                                    cut: int) -> None:
    data = bytearray(seed)
    for pos, val in edits:
        data[pos % len(data)] = val
    _drain(bytes(data[:max(4, len(data) - cut)]))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a"]),
       st.binary(max_size=600))
def test_random_bodies_raise_only_spywall_errors(magic: bytes, body: bytes) -> None:
    _drain(magic + body)


# ---- cross-check with tshark --------------------------------------------------------
TSHARK = shutil.which("tshark")


def tshark_frames(path: Path) -> list[tuple[int, float]]:
    out = subprocess.run([TSHARK or "tshark", "-r", str(path), "-T", "fields",
                          "-e", "frame.number", "-e", "frame.time_epoch"],
                         capture_output=True, text=True, check=True).stdout
    return [(int(a), float(b or 0)) for a, b in (ln.split("\t") for ln in out.splitlines()
                                                 if ln)]


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
@pytest.mark.parametrize("kind", ["pcap-us-le", "pcap-ns-be", "pcapng-le", "pcapng-be",
                                  "pcapng-sections"])
def test_frame_numbers_and_times_match_tshark(kind: str, tmp_path: Path) -> None:
    from spywall.samples.captures import ordinary_call

    cap = ordinary_call("eth")
    data = {
        "pcap-us-le": lambda: cap.pcap(),
        "pcap-ns-be": lambda: cap.pcap(nano=True, big_endian=True),
        "pcapng-le": lambda: cap.pcapng(tsresol=9),
        "pcapng-be": lambda: cap.pcapng(big_endian=True),
        "pcapng-sections": lambda: multi_section(True),
    }[kind]()
    path = tmp_path / "c.cap"
    path.write_bytes(data)
    reader = CaptureReader(io.BytesIO(data), lambda f, c, m: None)
    ours = [(r[0], r[1]) for r in reader]
    theirs = dict(tshark_frames(path))
    assert reader.frames == len(theirs) == max(theirs)
    assert len(ours) == len(theirs) - (kind == "pcapng-sections")   # + one custom block
    for n, ts in ours:
        if ts:   # a simple packet block has no time
            assert ts == pytest.approx(theirs[n], abs=2e-6)
