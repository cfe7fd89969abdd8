"""Drive one capture: read records, decode, check indicators, feed the VoIP analyzer.

Indicator checks (each reported once per indicator and value, at the first frame seen):
IP addresses of either end of every IP packet (``ioc-ip``), DNS query and answer names and
answer addresses (``ioc-dns``), and the SNI of TLS ClientHellos (``ioc-tls-sni``). Errors
confined to a record become error entries (at most ``MAX_ERRORS`` listed, the rest counted)
and the capture goes on.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import BinaryIO, Protocol

import msgspec

from spywall.errors import SpywallError
from spywall.iocs import Indicator, IocIndex
from spywall.net import dns, tls
from spywall.net.capture import CaptureReader, ReadTap
from spywall.net.decode import Decoder
from spywall.net.packet import Datagram, location
from spywall.report import CallSummary, ErrorEntry, Finding, FindingKind, Location, Severity

MAX_ERRORS = 50
MAX_VALUES_PER_INDICATOR = 20   # distinct matched values listed per indicator and rule
MAX_TLS_PROBES = 4096
MAX_TLS_PREFIX = 1 << 16
MAX_SEEN = 1 << 18
DNS_PORTS = frozenset({53, 5353, 5355})
ANALYZER_MODULE = "spywall.net.voip.analyzer"

CAPTURE_RULES: dict[str, tuple[str, FindingKind, Severity, tuple[str, ...]]] = {
    "ip-fragment-overlap": (
        "Overlapping IP fragments with different data", FindingKind.HEURISTIC, Severity.MEDIUM,
        ("https://www.rfc-editor.org/rfc/rfc1858", "https://www.rfc-editor.org/rfc/rfc5722")),
}


class Analyzer(Protocol):
    def udp(self, d: Datagram) -> list[Finding]: ...
    def tcp(self, d: Datagram) -> list[Finding]: ...
    def finish(self) -> tuple[list[CallSummary], list[Finding]]: ...
    problems: list[str]   # framing problems since the last look (reported and cleared)


AnalyzerFactory = Callable[[IocIndex | None, str], Analyzer]


def voip_analyzer() -> AnalyzerFactory | None:
    """The VoIP analyzer class when that package is present, else None."""
    try:
        mod = importlib.import_module(ANALYZER_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name and ANALYZER_MODULE.startswith(exc.name):
            return None
        raise
    factory: AnalyzerFactory = mod.VoipAnalyzer
    return factory


class CaptureResult(msgspec.Struct):
    format: str | None = None
    frames: int = 0
    findings: list[Finding] = msgspec.field(default_factory=list)
    errors: list[ErrorEntry] = msgspec.field(default_factory=list)
    calls: list[CallSummary] = msgspec.field(default_factory=list)
    suppressed_errors: int = 0


class _Listed(msgspec.Struct):
    """The first finding for one indicator and rule, and how many values matched it."""

    first: Finding
    values: int = 1


class Pipeline:
    """One capture's run; make a new one per capture."""

    def __init__(self, path: str, iocs: IocIndex | None,
                 analyzer: AnalyzerFactory | None = None) -> None:
        self.path, self.iocs = path, iocs
        self.result = CaptureResult()
        self.analyzer = analyzer(iocs, path) if analyzer is not None else None
        self.decoder = Decoder(self._error, self._capture_finding,
                               self._addresses if iocs is not None else None)
        self.reported: set[tuple[str, str, str]] = set()
        self.per_indicator: dict[tuple[str, str], _Listed] = {}
        self.tls_probes: dict[tuple[str, int, str, int], bytes] = {}
        self.dns_tcp = dns.TcpFramer()  # DNS over TCP: messages cut by length prefixes
        self.tls_done: set[tuple[str, int, str, int]] = set()

    # ---- sinks ----------------------------------------------------------------------
    def _error(self, frame: int, code: str, message: str) -> None:
        if len(self.result.errors) >= MAX_ERRORS:
            self.result.suppressed_errors += 1
            return
        where = f"frame {frame}: " if frame else ""
        self.result.errors.append(ErrorEntry(path=self.path, code=code,
                                             message=where + message))

    def _capture_finding(self, rule: str, message: str, d: Datagram) -> None:
        title, kind, severity, refs = CAPTURE_RULES[rule]
        self.result.findings.append(Finding(
            rule=rule, title=title, kind=kind, severity=severity, message=message,
            path=self.path, references=list(refs), location=location(d)))

    def _indicators(self, rule: str, what: str, value: str, inds: Iterable[Indicator],
                    where: Location) -> None:
        assert self.iocs is not None
        for ind in inds:
            key = (rule, ind.value, value)
            if key in self.reported:
                continue
            self.reported.add(key)
            per = self.per_indicator.get((rule, ind.value))
            if per is not None and per.values >= MAX_VALUES_PER_INDICATOR:
                per.values += 1   # e.g. random subdomains of one domain: count, do not list
                per.first.detail["more_values"] = per.values - MAX_VALUES_PER_INDICATOR
                continue
            finding = self.iocs.finding(
                ind, value, path=self.path, rule=rule, title=f"Known spyware {what}",
                message=f"{what} {value} matches {ind.collection} indicator {ind.value}",
                location=where)
            self.result.findings.append(finding)
            if per is None:
                self.per_indicator[(rule, ind.value)] = _Listed(finding)
            else:
                per.values += 1

    # ---- checks ---------------------------------------------------------------------
    def _addresses(self, d: Datagram, fresh: list[str]) -> None:
        """Addresses the decoder saw for the first time (either end of an IP packet)."""
        assert self.iocs is not None
        for addr in fresh:
            inds = self.iocs.match_ip(addr)
            if inds:
                self._indicators("ioc-ip", "address", addr, inds, location(d))

    def _dns(self, d: Datagram, payload: bytes) -> None:
        try:
            msg = dns.parse(payload)
        except SpywallError as exc:
            self._error(d.frame, exc.code, f"DNS: {exc}")
            return
        if self.iocs is None:
            return
        for name in (*msg.questions, *msg.names):
            inds = self.iocs.match_domain(name)
            if inds:
                self._indicators("ioc-dns", "DNS name", name, inds, location(d, "dns"))
        for addr in msg.addresses:
            inds = self.iocs.match_ip(addr)
            if inds:
                self._indicators("ioc-dns", "DNS answer address", addr, inds,
                                 location(d, "dns"))

    def _tls(self, d: Datagram) -> None:
        key = (d.src, d.sport, d.dst, d.dport)
        if key in self.tls_done:
            return
        prefix = self.tls_probes.pop(key, b"") + d.payload
        if not tls.looks_like_tls(prefix) or len(prefix) > MAX_TLS_PREFIX:
            self._tls_close(key)
            return
        try:
            sni = tls.client_hello_sni(prefix)
        except SpywallError as exc:
            self._error(d.frame, exc.code, f"TLS: {exc}")
            self._tls_close(key)
            return
        if sni == tls.NEED_MORE:
            if len(self.tls_probes) < MAX_TLS_PROBES:
                self.tls_probes[key] = prefix
            return
        self._tls_close(key)
        if sni and self.iocs is not None:
            self._indicators("ioc-tls-sni", "TLS server name", sni,
                             self.iocs.match_domain(sni), location(d, "tls"))

    def _tls_close(self, key: tuple[str, int, str, int]) -> None:
        if len(self.tls_done) >= MAX_SEEN:
            self.tls_done.clear()
        self.tls_done.add(key)

    # ---- the loop -------------------------------------------------------------------
    def run(self, stream: BinaryIO, tap: ReadTap | None = None) -> CaptureResult:
        res = self.result
        try:
            reader = CaptureReader(stream, self._error, tap)
        except SpywallError as exc:
            self._error(0, exc.code, str(exc))
            return res
        res.format = reader.format
        try:
            self._loop(reader)
        except SpywallError as exc:
            self._error(0, exc.code, f"reading stopped after frame {reader.frames}: {exc}")
        res.frames = reader.frames
        if self.analyzer is not None:
            calls, findings = self.analyzer.finish()
            res.calls.extend(calls)
            res.findings.extend(findings)
        res.findings.sort(key=lambda f: f.location.frame or 0)
        if res.suppressed_errors:
            res.errors.append(ErrorEntry(
                path=self.path, code="limit",
                message=f"{res.suppressed_errors} more errors not listed"))
        return res

    def _loop(self, reader: CaptureReader) -> None:
        packet = self.decoder.packet
        findings = self.result.findings
        an = self.analyzer
        udp = an.udp if an is not None else None
        tcp = an.tcp if an is not None else None
        for frame, ts, link, data, wire in reader:
            d = packet(frame, ts, link, data, wire)
            if d is None:
                continue
            handler = udp
            if d.transport == "udp":
                if d.sport in DNS_PORTS or d.dport in DNS_PORTS:
                    self._dns(d, d.payload)
            else:
                handler = tcp
                if d.sport == 53 or d.dport == 53:
                    key = (d.src, d.sport, d.dst, d.dport)
                    if d.start:
                        self.dns_tcp.close(key)
                    msgs, problems = self.dns_tcp.feed(key, d.payload)
                    for problem in problems:
                        self._error(frame, "limit", f"DNS over TCP: {problem}")
                    for msg in msgs:
                        self._dns(d, msg)
                self._tls(d)
            if handler is not None:
                try:
                    out = handler(d)
                except SpywallError as exc:
                    self._error(frame, exc.code, f"VoIP: {exc}")
                    continue
                if out:
                    findings.extend(out)
                if handler is tcp and an is not None and an.problems:
                    for problem in an.problems:
                        self._error(frame, "malformed", f"VoIP: {problem}")
                    an.problems.clear()
