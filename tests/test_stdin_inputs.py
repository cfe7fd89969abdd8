"""``-`` is standard input wherever a file is read (#18): ``spywall pcap -`` streams a
pcap or pcapng capture from a pipe, bounded like a file, and ``--iocs -`` reads a STIX 2
bundle from one. Each is run as a real process with its input piped in, and compared with
the same run given the file; tshark reads the same capture file as the independent
count of its frames."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spywall.cli import main
from spywall.commands import pcap
from spywall.commands.stdin import CHUNK, CappedStream
from spywall.iocs import index as ioc_index
from spywall.samples.captures import write_all

TSHARK = shutil.which("tshark")
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {p.name: p for p in write_all(tmp_path_factory.mktemp("captures"))}


def _spywall(args: list[str], stdin: bytes) -> tuple[int, dict[str, Any], str]:
    """``python -m spywall ARGS -f json -q`` with ``stdin`` written to it through a pipe."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "spywall", *args, "-f", "json", "-q"],
                          input=stdin, capture_output=True, env=env, check=False,
                          timeout=120)
    report = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, report, proc.stderr.decode()


def _tshark_frames(path: Path) -> int:
    out = subprocess.run([TSHARK or "tshark", "-r", str(path), "-T", "fields",
                          "-e", "frame.number"], capture_output=True, check=True, timeout=120)
    return len(out.stdout.split())


def _story(report: dict[str, Any]) -> tuple[object, ...]:
    """What a run found, apart from the name it gives the capture."""
    (s,) = report["subjects"]
    findings = [(f["rule"], f["location"].get("frame"), f["message"]) for f in s["findings"]]
    calls = [(c["call_id"], c["first_frame"], c["last_frame"], c["packets"])
             for c in report["calls"]]
    return s["format"], s["objects"], s["size"], s["sha256"], findings, calls, s["errors"]


@pytest.mark.parametrize("name", ["campaign-zero-click.pcap",
                                  "campaign-zero-click-sll2.pcapng",
                                  "ordinary-call-tcp.pcapng", "tls-sni-campaign.pcap"])
def test_pcap_reads_a_capture_piped_in(captures: dict[str, Path], name: str) -> None:
    path, bundle = captures[name], str(captures["court-record-2019.stix2"])
    data = path.read_bytes()
    piped_rc, piped, _ = _spywall(["pcap", "-", "--iocs", bundle], data)
    file_rc, named, _ = _spywall(["pcap", str(path), "--iocs", bundle], b"")
    assert piped["subjects"][0]["path"] == "-"
    assert all(c["path"] == "-" for c in piped["calls"])
    assert _story(piped) == _story(named)
    assert piped_rc == file_rc
    (s,) = piped["subjects"]
    assert s["sha256"] == hashlib.sha256(data).hexdigest()
    assert s["size"] == len(data)
    if TSHARK is not None:  # an independent reader of the same bytes
        assert s["objects"] == _tshark_frames(path)


def test_iocs_reads_a_bundle_piped_in(captures: dict[str, Path]) -> None:
    bundle = captures["court-record-2019.stix2"]
    capture = str(captures["campaign-zero-click.pcap"])
    rc, piped, _ = _spywall(["pcap", capture, "--iocs", "-"], bundle.read_bytes())
    _, named, _ = _spywall(["pcap", capture, "--iocs", str(bundle)], b"")
    assert rc == 1
    (source,) = piped["ioc_sources"]
    assert source["path"] == "-"
    assert source["sha256"] == hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert source["indicators"] == named["ioc_sources"][0]["indicators"] > 0
    rules = [f["rule"] for f in piped["subjects"][0]["findings"]]
    assert rules == [f["rule"] for f in named["subjects"][0]["findings"]]
    assert "ioc-ip" in rules  # the piped indicators did match
    rc, listed, _ = _spywall(["iocs", "list", "--iocs", "-"], bundle.read_bytes())
    assert rc == 0
    assert [s["path"] for s in listed["ioc_sources"]] == ["-"]


@pytest.mark.parametrize(("args", "stdin", "words"), [
    (["pcap", "-", "-"], b"", "standard input can be read only once"),
    (["pcap", "-", "--iocs", "-"], b"", "both ask for standard input"),
    (["iocs", "stats", "--iocs", "-"], b"", "standard input is empty"),
    (["iocs", "stats", "--iocs", "-", "--iocs", "-"], b"{}", "only once"),
    (["iocs", "stats", "--iocs", "-"], b'{"type": "bundle", "objects": 7}', "--iocs -"),
])
def test_standard_input_misuse_is_a_usage_error(args: list[str], stdin: bytes,
                                                words: str) -> None:
    rc, _, err = _spywall(args, stdin)
    assert rc == 2
    assert words in err
    assert "spywall-iocs-" not in err  # the spool's name is not the user's business


def test_a_terminal_on_standard_input_is_refused() -> None:
    leader, follower = os.openpty()
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        proc = subprocess.run([sys.executable, "-m", "spywall", "pcap", "-", "-q"],
                              stdin=follower, capture_output=True, env=env, check=False,
                              timeout=120)
    finally:
        os.close(leader)
        os.close(follower)
    assert proc.returncode == 2
    assert b"standard input is a terminal" in proc.stderr


class _Pipe(io.BytesIO):
    """A pipe's reading end: records each read's size."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int] = []

    def read1(self, n: int = -1) -> bytes:
        self.asked.append(n)
        return super().read1(min(n, 4096) if n >= 0 else 4096)  # a pipe gives what it has

    def isatty(self) -> bool:
        return False


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> _Pipe:
    pipe = _Pipe(data)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(pipe))
    return pipe


def test_capture_over_the_cap_is_cut_and_marked_incomplete(
        captures: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Past the cap nothing more is read but one byte (to know there was more); the
    capture is then incomplete (exit 1), its hash that of the bytes examined; no read asks
    for more than a chunk, so memory does not grow with the input."""
    data = captures["ordinary-call.pcap"].read_bytes()
    cap = len(data) // 2
    monkeypatch.setattr(pcap, "STDIN_CAP", cap)
    pipe = _stdin(monkeypatch, data + b"\x00" * (4 * CHUNK))
    assert main(["pcap", "-", "--no-iocs", "-f", "json", "-q"]) == 1
    (s,) = json.loads(capsys.readouterr().out)["subjects"]
    assert s["size"] == cap
    assert s["sha256"] == hashlib.sha256(data[:cap]).hexdigest()
    assert any(e["code"] == "limit" and f"first {cap} bytes" in e["message"]
               for e in s["errors"])
    assert "incomplete-examination" in [f["rule"] for f in s["findings"]]
    assert pipe.tell() == cap + 1
    assert max(pipe.asked) <= CHUNK


def test_capped_stream_ends_at_the_cap() -> None:
    s = CappedStream(_Pipe(b"abcdef"), 4)
    assert (s.read(3), s.read(3), s.read(3)) == (b"abc", b"d", b"")
    assert s.over
    whole = CappedStream(_Pipe(b"abcd"), 4)
    assert (whole.read(10), whole.read(10)) == (b"abcd", b"")
    assert not whole.over


def test_indicator_bundle_over_the_loader_cap_is_refused(
        captures: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    bundle = captures["court-record-2019.stix2"].read_bytes()
    monkeypatch.setattr(ioc_index, "MAX_IOC_FILE", len(bundle) - 1)
    _stdin(monkeypatch, bundle)
    assert main(["iocs", "stats", "--iocs", "-", "-q"]) == 2
    assert f"more than {len(bundle) - 1} bytes" in capsys.readouterr().err


def _records(data: bytes) -> list[tuple[int, int]]:
    """(offset, captured length) of each record of a little-endian microsecond pcap."""
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    out, pos = [], 24
    while pos + 16 <= len(data):
        (incl,) = struct.unpack_from("<I", data, pos + 8)
        out.append((pos, incl))
        pos += 16 + incl
    return out


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
def test_a_capture_cut_short_names_the_frame_and_offset(captures: dict[str, Path],
                                                        tmp_path: Path) -> None:
    """Piped in and cut inside a packet: the error names the frame (as tshark counts the
    whole ones before it) and the offset of its data (from the record headers, read here
    with struct)."""
    data = captures["ordinary-call.pcap"].read_bytes()
    records = _records(data)
    k = len(records) // 2
    at, incl = records[k]
    cut = data[: at + 16 + incl // 2]
    _, report, _ = _spywall(["pcap", "-", "--no-iocs"], cut)
    (s,) = report["subjects"]
    message = f"the packet data of frame {k + 1} at offset {at + 16} is cut short " \
              f"({incl // 2} of {incl} bytes)"
    assert any(message in e["message"] for e in s["errors"]), s["errors"]
    (tmp_path / "cut.pcap").write_bytes(cut)
    proc = subprocess.run([TSHARK or "tshark", "-r", str(tmp_path / "cut.pcap"), "-T", "fields",
                           "-e", "frame.number"], capture_output=True, check=False, timeout=120)
    assert len(proc.stdout.split()) == k == s["objects"]
    assert b"cut short in the middle of a packet" in proc.stderr
