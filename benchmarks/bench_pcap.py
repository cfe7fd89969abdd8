"""``spywall pcap`` throughput against tshark, and peak memory at two capture sizes.

Generates a pcap of PACKETS packets (default 1,000,000): CALLS concurrent calls, each with
SIP INVITE/100/180/200/ACK and BYE/200, RTP both ways at 20 ms pacing, compound RTCP every
5 s per stream, STUN binding checks every 2 s, and DNS look-ups in between. Then times, from
the same run (spywall: the best of two runs, as the machine may be shared):

  spywall pcap FILE --no-iocs -q -f json            (and with the bundled indicators)
  tshark -r FILE -T fields -e frame.number  + RTP/RTCP/STUN heuristics enabled

and prints packets/s, the ratio, and the peak RSS of ``spywall pcap`` on the capture and on
one SCALE times larger (memory must stay flat: reassembly and call state are bounded).

Environment: PACKETS, CALLS, SCALE (default 3), KEEP=1 keeps the files in /tmp.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spywall.samples.captures import dns_query, dns_response
from spywall.samples.pcapwriter import PROTO_UDP, PcapWriter, frame, ipv4, udp
from spywall.samples.voip import Dialog, binding_request, compound, sdp

PAYLOAD = b"\xd5" * 160
RTP_HDR = struct.Struct(">BBHII")


def _udp_frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    return frame("eth", ipv4(src[0], dst[0], PROTO_UDP, udp(src[1], dst[1], payload)))


class Call:
    def __init__(self, i: int) -> None:
        self.a = (f"10.1.{i // 250}.{i % 250 + 1}", 5060)
        self.b = (f"10.2.{i // 250}.{i % 250 + 1}", 5060)
        self.ma, self.mb = (self.a[0], 20000 + 2 * i), (self.b[0], 30000 + 2 * i)
        self.dialog = Dialog(f"bench-{i}@pbx", f"u{i}@pbx.example", f"v{i}@pbx.example",
                             self.a, self.b)
        # one constant Ethernet/IPv4/UDP header per media direction (RTP size is fixed)
        self.rtp_hdr = [_udp_frame(s, d, bytes(172))[:-172]
                        for s, d in ((self.ma, self.mb), (self.mb, self.ma))]
        self.ssrc = (0x10000 + i, 0x20000 + i)

    def setup(self) -> list[bytes]:
        d, a, b = self.dialog, self.a, self.b
        return [_udp_frame(a, b, d.request("INVITE", body=sdp(*self.ma))),
                _udp_frame(b, a, d.response(100, "Trying")),
                _udp_frame(b, a, d.response(180, "Ringing")),
                _udp_frame(b, a, d.response(200, "OK", body=sdp(*self.mb, session=2))),
                _udp_frame(a, b, d.request("ACK", to_tag=True))]

    def teardown(self) -> list[bytes]:
        d, a, b = self.dialog, self.a, self.b
        return [_udp_frame(a, b, d.request("BYE", cseq=2, to_tag=True)),
                _udp_frame(b, a, d.response(200, "OK", method="BYE", cseq=2))]

    def rtcp(self) -> list[bytes]:
        return [_udp_frame((s[0], s[1] + 1), (t[0], t[1] + 1), compound(ssrc))
                for s, t, ssrc in ((self.ma, self.mb, self.ssrc[0]),
                                   (self.mb, self.ma, self.ssrc[1]))]

    def stun(self) -> list[bytes]:
        return [_udp_frame(self.ma, self.mb, binding_request())]


def generate(path: Path, packets: int, calls: int) -> int:
    """Write the capture; returns the number of packets written."""
    table = [Call(i) for i in range(calls)]
    dns = [_udp_frame(("10.9.0.2", 53000), ("10.9.0.1", 53), dns_query("pbx.example")),
           _udp_frame(("10.9.0.1", 53), ("10.9.0.2", 53000),
                      dns_response("pbx.example", ["10.2.0.1"]))]
    n, t, tick = 0, 1_700_000_000.0, 0
    with path.open("wb") as fh:
        w = PcapWriter(fh, 1)
        for c in table:
            for f in c.setup():
                w.write(t, f)
                n += 1
        pack = RTP_HDR.pack
        while n < packets - 2 * calls:
            tick += 1
            t += 0.020
            seq, ts = tick & 0xFFFF, (tick * 160) & 0xFFFFFFFF
            for c in table:
                w.write(t, c.rtp_hdr[0] + pack(0x80, 0, seq, ts, c.ssrc[0]) + PAYLOAD)
                w.write(t + 0.0005, c.rtp_hdr[1] + pack(0x80, 0, seq, ts, c.ssrc[1]) + PAYLOAD)
                n += 2
            extra: list[bytes] = []
            if tick % 250 == 0:
                extra = [f for c in table for f in c.rtcp()]
            elif tick % 100 == 0:
                extra = [f for c in table for f in c.stun()]
            elif tick % 50 == 0:
                extra = dns
            for f in extra:
                w.write(t + 0.001, f)
            n += len(extra)
        for c in table:
            for f in c.teardown():
                w.write(t + 0.1, f)
                n += 1
    return n


def timed(cmd: list[str]) -> tuple[float, int, bytes]:
    """(seconds, peak RSS KiB, stdout) of one child process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - start
        out.seek(0)
        return elapsed, usage.ru_maxrss, out.read()


def best_of(runs: int, cmd: list[str]) -> tuple[float, int, bytes]:
    """The quickest of ``runs`` runs (the machine may be shared); the largest peak RSS."""
    results = [timed(cmd) for _ in range(runs)]
    sec, _, out = min(results, key=lambda r: r[0])
    return sec, max(r[1] for r in results), out


def tshark_heuristic_args(tshark: str, sample: Path) -> list[str]:
    """Old tshark has rtp.heuristic_rtp-style preferences; 3.x/4.x enable heuristics by name."""
    prefs = ["-o", "rtp.heuristic_rtp:TRUE", "-o", "rtcp.heuristic_rtcp:TRUE",
             "-o", "stun.heuristic_stun:TRUE"]
    probe = subprocess.run([tshark, "-r", str(sample), "-c", "1", *prefs],
                           capture_output=True, text=True, check=False)
    if probe.returncode == 0 and "nvalid" not in probe.stderr and "nknown" not in probe.stderr:
        return prefs
    return ["--enable-heuristic", "rtp_udp", "--enable-heuristic", "rtcp_udp",
            "--enable-heuristic", "stun_udp"]


def main() -> int:
    packets = int(os.environ.get("PACKETS", "1000000"))
    calls = int(os.environ.get("CALLS", "64"))
    scale = int(os.environ.get("SCALE", "3"))
    spywall = [sys.executable, "-m", "spywall", "pcap", "-q", "-f", "json"]
    tmp = Path(tempfile.mkdtemp(prefix="bench_pcap_"))
    try:
        small, big = tmp / "calls.pcap", tmp / "calls-big.pcap"
        t0 = time.perf_counter()
        n = generate(small, packets, calls)
        gen = time.perf_counter() - t0
        size = small.stat().st_size
        print(f"capture: {n:,} packets, {size / 1e6:.1f} MB, {calls} calls "
              f"(generated in {gen:.1f}s)")

        sec, rss, out = best_of(2, [*spywall, "--no-iocs", str(small)])
        print(f"spywall pcap --no-iocs : {sec:6.2f}s  {n / sec:>10,.0f} packets/s  "
              f"{size / sec / 1e6:6.1f} MB/s  peak RSS {rss / 1024:.0f} MiB")
        if b'"calls"' not in out:
            print("  (unexpected output)", out[:200])
        else:   # every call is answered with media both ways: no finding is a false alarm
            summary = json.loads(out)["summary"]
            print(f"  findings on the capture: {summary['findings']} (expected 0)")
        sec_i, rss_i, _ = best_of(2, [*spywall, str(small)])
        print(f"spywall pcap (bundled IOCs): {sec_i:6.2f}s  {n / sec_i:>10,.0f} packets/s  "
              f"peak RSS {rss_i / 1024:.0f} MiB")

        tshark = shutil.which("tshark")
        if tshark:
            heur = tshark_heuristic_args(tshark, small)
            ts_sec, ts_rss, ts_out = timed([tshark, "-r", str(small), "-T", "fields",
                                            "-e", "frame.number", *heur])
            lines = ts_out.count(b"\n")
            print(f"tshark {' '.join(heur)}: {ts_sec:6.2f}s  {n / ts_sec:>10,.0f} packets/s  "
                  f"peak RSS {ts_rss / 1024:.0f} MiB ({lines:,} frames)")
            print(f"ratio: spywall pcap is {ts_sec / sec:.1f}x tshark's speed "
                  f"({ts_sec / sec_i:.1f}x with indicators)")
        else:
            print("tshark not installed: no comparison (apt-get install tshark)")

        nb = generate(big, packets * scale, calls)
        sec_b, rss_b, _ = timed([*spywall, "--no-iocs", str(big)])
        print(f"memory: peak RSS {rss / 1024:.0f} MiB at {n:,} packets, "
              f"{rss_b / 1024:.0f} MiB at {nb:,} packets ({nb / sec_b:,.0f} packets/s)")
    finally:
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
