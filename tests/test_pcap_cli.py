"""``spywall pcap`` end to end: sample captures, indicators, damaged files, error caps."""

from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spywall.cli import main
from spywall.iocs import IocIndex
from spywall.net import pipeline
from spywall.net.pipeline import Pipeline, voip_analyzer
from spywall.report import Report, load_report
from spywall.samples.captures import (
    CaptureSample,
    capture_samples,
    court_record_bundle,
    ordinary_call,
)
from spywall.samples.pcapwriter import PROTO_UDP, Capture, PcapWriter, ipv4, udp

Cap = pytest.CaptureFixture[str]
SAMPLES = list(capture_samples())


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("iocs") / "court-record-2019.stix2"
    path.write_bytes(court_record_bundle())
    return path


def write(sample: CaptureSample, folder: Path) -> Path:
    path = folder / sample.name
    path.write_bytes(sample.capture.pcapng() if sample.name.endswith("ng")
                     else sample.capture.pcap())
    return path


def pcap_report(capsys: Cap, *argv: str) -> tuple[int, Report]:
    code = main(["pcap", *argv, "-f", "json", "-q"])
    return code, load_report(capsys.readouterr().out)


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_sample_capture_gives_expected_rules(sample: CaptureSample, bundle: Path,
                                             tmp_path: Path, capsys: Cap) -> None:
    path = write(sample, tmp_path)
    code, report = pcap_report(capsys, str(path), "--iocs", str(bundle))
    (subject,) = report.subjects
    assert {f.rule for f in subject.findings} == set(sample.expected), sample.note
    assert code == (1 if sample.expected else 0)
    assert subject.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert subject.format == ("pcapng" if sample.name.endswith("ng") else "pcap")
    assert not subject.errors
    assert [s.path for s in report.ioc_sources] == [str(bundle)]
    for f in subject.findings:
        loc = f.location
        assert loc.frame
        assert loc.timestamp
        assert loc.timestamp.startswith("2019-05")
        assert loc.src
        assert loc.dst
        assert loc.protocol
        assert f.rule


def test_indicator_findings_point_at_their_first_frames(bundle: Path, tmp_path: Path,
                                                       capsys: Cap) -> None:
    """Frame 1 asks for the campaign SIP host, frame 2 answers with 54.93.81.200, frame 3
    is the INVITE from 104.223.76.220 (an address seen nowhere before)."""
    path = write(SAMPLES[0], tmp_path)
    _, report = pcap_report(capsys, str(path), "--iocs", str(bundle))
    got = sorted((f.rule, f.location.frame, f.indicator.matched)
                 for f in report.subjects[0].findings if f.indicator and f.rule.startswith("ioc"))
    assert got == [("ioc-dns", 1, "sip.nsogroup.com"), ("ioc-dns", 2, "54.93.81.200"),
                   ("ioc-ip", 3, "104.223.76.220")]
    (ip,) = [f.location for f in report.subjects[0].findings if f.rule == "ioc-ip"]
    assert (ip.src, ip.sport, ip.dport, ip.protocol) == ("104.223.76.220", 5060, 5060, "udp")
    assert report.calls


def test_calls_reported(tmp_path: Path, capsys: Cap) -> None:
    path = tmp_path / "call.pcap"
    path.write_bytes(ordinary_call("eth").pcap())
    code, report = pcap_report(capsys, str(path), "--no-iocs")
    assert code == 0
    if voip_analyzer() is not None:
        assert len(report.calls) == 1
        assert report.calls[0].state == "ended"


def test_damaged_capture_keeps_going_and_counts(tmp_path: Path, capsys: Cap) -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf, 101)
    good = ipv4("192.0.2.1", "192.0.2.2", PROTO_UDP, udp(1, 2, b"x" * 100))
    for i in range(pipeline.MAX_ERRORS + 30):
        w.write(1.0 + i, good[:30], orig_len=len(good) + 100)   # snaplen-cut
    w.write(500.0, good)
    data = buf.getvalue() + b"\x00" * 7                           # a cut record header
    path = tmp_path / "damaged.pcap"
    path.write_bytes(data)
    code, report = pcap_report(capsys, str(path), "--no-iocs")
    (subject,) = report.subjects
    assert code == 0
    assert subject.objects == pipeline.MAX_ERRORS + 31
    assert len(subject.errors) == pipeline.MAX_ERRORS + 1
    assert subject.errors[0].code == "truncated"
    assert "frame 1:" in subject.errors[0].message
    assert subject.errors[-1].message == "31 more errors not listed"
    assert subject.sha256 == hashlib.sha256(data).hexdigest()


def test_not_a_capture_and_missing_file(tmp_path: Path, capsys: Cap) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all" * 10)
    code, report = pcap_report(capsys, str(junk), str(tmp_path / "missing.pcap"), "--no-iocs")
    assert code == 2
    assert report.subjects[0].errors[0].code == "input"  # not a capture at all
    assert report.subjects[1].errors[0].code == "io"
    code, _ = pcap_report(capsys, str(junk), "--no-iocs")
    assert code == 2  # on its own, too


def test_dns_over_tcp_and_answer_address(bundle: Path) -> None:
    from spywall.samples.captures import dns_response

    cap = Capture()
    msg = dns_response("cdn.example.net", ["54.93.81.200"])
    cap.tcp_handshake(1.0, ("10.0.0.2", 40000), ("10.0.0.53", 53))
    cap.tcp(1.1, "10.0.0.53", 53, "10.0.0.2", 40000, struct.pack("!H", len(msg)) + msg)
    res = Pipeline("x", IocIndex.load([bundle])).run(io.BytesIO(cap.pcap()))
    assert [(f.rule, f.indicator.matched if f.indicator else None) for f in res.findings] == [
        ("ioc-dns", "54.93.81.200")]


def test_json_output_is_valid(tmp_path: Path, capsys: Cap) -> None:
    path = tmp_path / "c.pcapng"
    path.write_bytes(ordinary_call("sll2").pcapng())
    main(["pcap", str(path), "-f", "json", "-q", "--no-iocs"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["command"] == "pcap"
    assert doc["subjects"][0]["objects"] == 113


def test_two_captures_two_subjects(bundle: Path, tmp_path: Path, capsys: Cap) -> None:
    a, b = write(SAMPLES[0], tmp_path), write(SAMPLES[2], tmp_path)
    code, report = pcap_report(capsys, str(a), str(b), "--iocs", str(bundle))
    assert code == 1
    assert [s.path for s in report.subjects] == [str(a), str(b)]
    assert report.subjects[0].findings
    assert not report.subjects[1].findings
    assert len(report.calls) == (2 if voip_analyzer() is not None else 0)


SEEDS = [s.capture.pcap() for s in SAMPLES[:3]] + [SAMPLES[3].capture.pcapng()]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)),
                                        max_size=16), st.integers(0, 400))
def test_pipeline_never_raises_on_mutated_captures(seed: bytes, edits: list[tuple[int, int]],
                                                  cut: int) -> None:
    data = bytearray(seed)
    for pos, val in edits:
        data[pos % len(data)] = val
    res = Pipeline("m", None, voip_analyzer()).run(io.BytesIO(bytes(data[:len(data) - cut])))
    assert len(res.errors) <= pipeline.MAX_ERRORS + 1


def test_many_values_of_one_indicator_are_counted_not_listed(bundle: Path) -> None:
    from spywall.samples.captures import dns_query

    cap = Capture()
    extra = 15
    for i in range(pipeline.MAX_VALUES_PER_INDICATOR + extra):
        cap.udp(1.0 + i, "10.0.0.2", 40000 + i, "10.0.0.53", 53,
                dns_query(f"x{i}.sip.2access.xyz"))
    res = Pipeline("x", IocIndex.load([bundle])).run(io.BytesIO(cap.pcap()))
    assert len(res.findings) == pipeline.MAX_VALUES_PER_INDICATOR
    assert res.findings[0].detail["more_values"] == extra
    assert [f.location.frame for f in res.findings] == sorted(f.location.frame or 0
                                                              for f in res.findings)

