"""Payloads through spywall's engines, as libraries: attachments through the ``scan``
engine, call captures through the ``pcap`` pipeline. What comes back is the platform's
summary of a payload (by content hash): does it carry an exploit, was it examined
completely, which detectors, which infrastructure it names.

A payload is judged once per content hash: the same attachment forwarded a million
times is parsed once (``PayloadCache``), and the verdict is stored in the ``payloads``
table so every process and every later run agree.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import stat
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import msgspec

from spywall.limits import Limits
from spywall.report import Finding, FindingKind

MAX_ATTACHMENT_BYTES = 64 << 20
MAX_CAPTURE_BYTES = 2 << 30
MAX_FINDINGS_KEPT = 50
PLATFORM_LIMITS = Limits(seconds=30.0)


class PayloadVerdict(msgspec.Struct, frozen=True):
    sha256: str
    malicious: bool                      # an exploit finding
    complete: bool                       # examined completely (no limit, no error)
    detectors: list[str]                 # rule ids of exploit findings
    infrastructure: list[str]            # addresses and hosts the payload names
    findings: list[dict[str, object]]    # compact: rule, kind, severity, path, message
    reason: str = ""                     # why it was not examined completely


def _summary(f: Finding) -> dict[str, object]:
    out: dict[str, object] = {"rule": f.rule, "kind": str(f.kind),
                              "severity": str(f.severity), "path": f.path,
                              "message": f.message[:500]}
    if f.cves:
        out["cves"] = list(f.cves)
    if f.location.frame is not None:
        out["frame"] = f.location.frame
    return out


def _verdict(digest: str, findings: list[Finding], problems: list[str]) -> PayloadVerdict:
    exploits = [f for f in findings if f.kind == FindingKind.EXPLOIT]
    infra: list[str] = []
    for f in findings:
        if f.kind == FindingKind.EXPLOIT and f.location.src:
            infra.append(f.location.src)
        if f.indicator is not None:
            infra.append(f.indicator.matched)
    incomplete = [f for f in findings if f.rule == "incomplete-examination"]
    problems = problems + [f.message for f in incomplete]
    return PayloadVerdict(
        sha256=digest, malicious=bool(exploits), complete=not problems,
        detectors=sorted({f.rule for f in exploits}),
        infrastructure=sorted(set(infra)),
        findings=[_summary(f) for f in findings[:MAX_FINDINGS_KEPT]],
        reason="; ".join(problems)[:1000])


def unexamined(digest: str, reason: str) -> PayloadVerdict:
    return PayloadVerdict(sha256=digest, malicious=False, complete=False, detectors=[],
                          infrastructure=[], findings=[], reason=reason)


def read_regular(path: Path, cap: int) -> bytes:
    """The bytes of a regular file, at most ``cap``: a FIFO, device or socket is refused
    before anything blocks on it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path.name}: not a regular file")
        if info.st_size > cap:
            raise OSError(f"{path.name}: {info.st_size} bytes, over the cap of {cap}")
        with os.fdopen(fd, "rb", closefd=False) as fh:   # a read of N allocates N first:
            return fh.read(min(cap, info.st_size) + 1)[:cap]   # by the size, not the cap
    finally:
        os.close(fd)


def scan_attachment(data: bytes, name: str, declared: str,
                    limits: Limits = PLATFORM_LIMITS) -> PayloadVerdict:
    """An attachment's bytes through the scan engine. A content hash that differs from
    the declared one is itself a reason the attachment was not what it said."""
    from spywall.engine import scan_bytes

    digest = hashlib.sha256(data).hexdigest()
    subject = scan_bytes(data, name, limits)
    problems = [f"{e.code}: {e.message}" for e in subject.errors]
    if digest != declared:
        problems.append(f"content SHA-256 {digest} differs from the declared {declared}")
    return _verdict(declared, subject.findings, problems)


def decode_data(text: str) -> bytes:
    """An attachment carried inline as base64 (HTTP)."""
    if len(text) > MAX_ATTACHMENT_BYTES * 4 // 3 + 4:
        raise ValueError("inline attachment larger than the cap")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"attachment data is not base64: {exc}") from None


def inspect_capture(path: Path, iocs: Any = None) -> PayloadVerdict:
    """A call's media capture through the pcap pipeline (streamed, hashed as read);
    with ``iocs`` (an ``IocIndex``), addresses and names are matched too."""
    from spywall.net.pipeline import Pipeline, voip_analyzer

    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path.name}: not a regular file")
        if info.st_size > MAX_CAPTURE_BYTES:
            raise OSError(f"{path.name}: {info.st_size} bytes, over the cap")
        def tap(chunk: bytes) -> None:
            digest.update(chunk)

        result = Pipeline(str(path), iocs, voip_analyzer()).run(fh, tap)
        while rest := fh.read(1 << 20):
            digest.update(rest)
    problems = [f"{e.code}: {e.message}" for e in result.errors if e.code in ("limit", "io")]
    return _verdict(digest.hexdigest(), result.findings, problems)


def capture_verdict(path: Path, cwd: str, limits: Limits = PLATFORM_LIMITS
                    ) -> PayloadVerdict:
    """``inspect_capture`` in a scan worker, a relative ``path`` from the asking process's
    folder ``cwd``; an unexamined verdict when the capture cannot be read. (``limits``:
    the worker's own; the pipeline keeps its budgets.)"""
    try:
        os.chdir(cwd)
        return inspect_capture(path)
    except (OSError, ValueError) as exc:   # ValueError: a NUL in the path
        return unexamined("", f"capture could not be read: {exc}")


class PayloadScanner:
    """Attachments and call captures scanned in supervised worker processes
    (``spywall.scanpool``), never in the process that asks: a hostile payload that
    exhausts a worker's memory ceiling, overruns its deadline (a stuck qpdf) or crashes
    it costs that worker, which is replaced, and comes back as a verdict that is not
    complete (the gate holds it: fail closed). The workers start on the first payload;
    events without one never touch them."""

    def __init__(self, limits: Limits = PLATFORM_LIMITS, size: int = 2,
                 method: str | None = None) -> None:
        from spywall.scanpool import ScanPool

        self.pool = ScanPool(limits, size, method)

    def attachment(self, data: bytes, name: str, declared: str) -> PayloadVerdict:
        """``scan_attachment`` in a worker; ``WorkerLost`` when the worker died or was
        killed (the caller decides what becomes of the event's other payloads)."""
        return self.pool.scan(scan_attachment, data, name, declared)

    def capture(self, path: Path) -> PayloadVerdict:
        from spywall.scanpool import WorkerLost

        try:
            return self.pool.scan(capture_verdict, path, os.getcwd())
        except FileNotFoundError as exc:   # this process's folder is gone
            return unexamined("", f"capture could not be read: {exc}")
        except WorkerLost as lost:
            return unexamined("", f"limit: {lost}")

    def close(self) -> None:
        self.pool.close()


class PayloadCache:
    """Verdicts by content hash, bounded (least recently used are dropped). Shared by
    the threads that scan payloads before a decision and the thread that decides: a
    ``put`` (several steps) holds the lock, a ``get`` needs none."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._items: OrderedDict[str, PayloadVerdict] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> PayloadVerdict | None:
        item = self._items.get(digest)     # each step atomic: no lock on the hot path
        if item is not None:
            with contextlib.suppress(KeyError):     # dropped by a put meanwhile
                self._items.move_to_end(digest)
        return item

    def put(self, verdict: PayloadVerdict) -> None:
        with self._lock:
            self._items[verdict.sha256] = verdict
            self._items.move_to_end(verdict.sha256)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
