"""``spywall pcap CAPTURE...``: inspect call traffic in pcap / pcapng captures.

Each capture is streamed (hashed as it is read, never loaded whole) through the decoder,
the indicator checks (addresses, DNS names, TLS SNI) and the VoIP analyzer; it becomes one
``Subject`` with its findings and error entries, and the calls it holds go to
``report.calls``. ``-`` is a capture on standard input, streamed the same way up to
``STDIN_CAP`` bytes (what follows is not examined: a ``limit`` entry says so).
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path
from typing import BinaryIO, cast

from spywall.commands.common import (
    add_evidence_log_argument,
    add_ioc_arguments,
    finish,
    log,
    new_report,
    progress,
)
from spywall.commands.stdin import STDIN, CappedStream, load_iocs, read_once, stdin_stream
from spywall.errors import InputError
from spywall.incomplete import mark_incomplete
from spywall.iocs import IocIndex
from spywall.limits import Limits
from spywall.net.capture import CHUNK
from spywall.net.pipeline import AnalyzerFactory, CaptureResult, Pipeline, voip_analyzer
from spywall.report import CallSummary, ErrorEntry, Report, Subject
from spywall.safeopen import NotRegularFile, open_regular

HELP = "inspect pcap/pcapng call captures for crafted VoIP packets and spyware indicators"
PROGRESS_MIN_BYTES = 32 << 20
# A capture on standard input is read up to the byte cap of any input (``scan -`` too).
STDIN_CAP = Limits().max_file_bytes


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("captures", nargs="+", metavar="CAPTURE",
                   help="pcap or pcapng file ('-': standard input)")
    add_evidence_log_argument(p)
    add_ioc_arguments(p)
    p.add_argument("--no-iocs", action="store_true",
                   help="skip indicator matching (structure checks only)")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="report data dropped at a limit (fragments, TCP reassembly) as an "
                        "error entry only; by default the capture also gets an "
                        "incomplete-examination finding, so the exit status is 1")


def _dropped(e: ErrorEntry) -> bool:
    """A ``limit`` entry that stands for data not examined (the count of errors not
    listed stands for nothing dropped)."""
    return not e.message.endswith("more errors not listed")


def inspect(path: str, iocs: IocIndex | None, analyzer: AnalyzerFactory | None,
            show_progress: bool = False) -> tuple[Subject, list[CallSummary]]:
    """One capture -> its Subject and the calls found in it."""
    subject = Subject(path=path)
    if path == STDIN:
        return _inspect_stdin(subject, iocs, analyzer)
    digest = hashlib.sha256()
    try:
        # Only a regular file, opened without blocking: a FIFO or /dev/zero would never
        # end (the size read from the open file is the one streamed).
        fh = open_regular(path)
    except NotRegularFile as exc:
        subject.errors.append(ErrorEntry(path=path, code=exc.code, message=str(exc)))
        return subject, []
    except OSError as exc:
        subject.errors.append(ErrorEntry(path=path, code="io",
                                         message=f"cannot read: {exc.strerror or exc}"))
        return subject, []
    try:
        size = os.fstat(fh.fileno()).st_size
        with fh, progress(size, Path(path).name,
                          show_progress and size >= PROGRESS_MIN_BYTES) as bar:
            def tap(chunk: bytes) -> None:
                digest.update(chunk)
                if bar is not None:
                    bar.advance(bar.task_ids[0], len(chunk))

            result = Pipeline(path, iocs, analyzer).run(fh, tap)
            while chunk := fh.read(CHUNK):   # the rest of the file, for the hash
                tap(chunk)
    except OSError as exc:
        subject.errors.append(ErrorEntry(path=path, code="io",
                                         message=f"cannot read: {exc.strerror or exc}"))
        return subject, []
    return _filled(subject, result, digest.hexdigest(), size), result.calls


def _filled(subject: Subject, result: CaptureResult, sha256: str, size: int) -> Subject:
    subject.sha256 = sha256
    subject.size = size
    subject.format = result.format
    subject.objects = result.frames
    subject.findings = result.findings
    subject.errors = result.errors
    return subject


def _inspect_stdin(subject: Subject, iocs: IocIndex | None, analyzer: AnalyzerFactory | None
                   ) -> tuple[Subject, list[CallSummary]]:
    """The capture on standard input, streamed like a file, at most ``STDIN_CAP`` bytes."""
    digest = hashlib.sha256()
    stream = CappedStream(stdin_stream("pcap -"), STDIN_CAP)
    try:
        def tap(chunk: bytes) -> None:
            digest.update(chunk)

        result = Pipeline(STDIN, iocs, analyzer).run(cast(BinaryIO, stream), tap)
        while chunk := stream.read(CHUNK):   # the rest, up to the cap, for the hash
            digest.update(chunk)
    except OSError as exc:
        subject.errors.append(ErrorEntry(path=STDIN, code="io",
                                         message=f"cannot read: {exc.strerror or exc}"))
        return subject, []
    _filled(subject, result, digest.hexdigest(), stream.seen)
    if stream.over:
        subject.errors.append(ErrorEntry(
            path=STDIN, code="limit",
            message=f"standard input: only the first {STDIN_CAP} bytes were read (the cap "
                    "of an input); give a larger capture as a file"))
    return subject, result.calls


def run(args: argparse.Namespace) -> Report:
    report = new_report("pcap")
    read_once(args.captures, "pcap -")
    if STDIN in args.captures and STDIN in args.iocs and not args.no_iocs:
        raise InputError("pcap - and --iocs - both ask for standard input: give one of "
                         "them as a file")
    iocs = None if args.no_iocs else load_iocs(args.iocs)
    if iocs is not None:
        report.ioc_sources = iocs.sources
    analyzer = voip_analyzer()
    if analyzer is None and not args.quiet:
        log(("VoIP analyzer not available: indicator and capture checks only", "yellow"))
    for path in args.captures:
        subject, calls = inspect(path, iocs, analyzer, not args.quiet)
        mark_incomplete(subject, args.allow_incomplete, _dropped)
        report.subjects.append(subject)
        for call in calls:
            call.path = path   # the same Call-ID can be in several captures
        report.calls.extend(calls)
        if subject.findings and not args.quiet:
            log((f"{len(subject.findings)} finding(s)", "red"), f" in {path}")
    return finish(report)
