"""``spywall scan PATH...``: find zero-click exploit payloads in files."""

from __future__ import annotations

import argparse

from spywall import engine
from spywall.commands.common import (
    add_evidence_log_argument,
    finish,
    log,
    new_report,
    progress,
)
from spywall.errors import InputError
from spywall.limits import Limits, MiB, memory_ceiling
from spywall.report import Report, Subject
from spywall.verdict_cache import VerdictCache

HELP = "scan files, folders or standard input (-) for zero-click exploit payloads"


DEFAULTS = Limits()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="file, folder or - for stdin")
    add_evidence_log_argument(p)
    p.add_argument("--jobs", "-j", type=int, default=0,
                   help="worker processes (default: every core)")
    p.add_argument("--max-file-size", type=int, default=DEFAULTS.max_file_bytes // MiB,
                   metavar="MIB", help="skip inputs larger than this (default %(default)s)")
    p.add_argument("--max-decompressed", type=int,
                   default=DEFAULTS.max_total_decompressed // MiB, metavar="MIB",
                   help="decompressed bytes allowed per input (default %(default)s)")
    p.add_argument("--max-depth", type=int, default=DEFAULTS.max_depth,
                   help="container nesting depth (default %(default)s)")
    p.add_argument("--timeout", type=float, default=DEFAULTS.seconds, metavar="SECONDS",
                   help="time budget per input (default %(default)s)")
    p.add_argument("--max-memory", type=int, default=0, metavar="MIB",
                   help="memory ceiling of each scan worker process, which scans one input "
                        "at a time; an input that needs more gets an "
                        "incomplete-examination finding (default: 1024 + the file and "
                        "decompression caps: "
                        f"{memory_ceiling(DEFAULTS) // MiB} with the defaults)")
    p.add_argument("--no-hash", action="store_true",
                   help="do not compute the sha256 of each input (faster on large files; "
                        "findings still carry the hash of the object they are in)")
    p.add_argument("--cache", metavar="PATH",
                   help="keep verdicts in this SQLite file, by content SHA-256, detector set "
                        "and caps: content seen before is not parsed again (default: in "
                        "memory, for this run only)")
    p.add_argument("--no-cache", action="store_true",
                   help="parse every input, even content seen earlier in this run")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="report an input that hit a limit (size, depth, count, "
                        "decompression, time) as an error entry only; by default it also "
                        "gets an incomplete-examination finding, so the exit status is 1")
    p.add_argument("--no-mmap", action="store_true",
                   help="read large files instead of mapping them (mapping is faster; a "
                        "file truncated by another process during its scan then makes its "
                        "worker fault, and it is scanned again, read)")


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(
        max_file_bytes=args.max_file_size * MiB,
        max_total_decompressed=args.max_decompressed * MiB,
        max_stream_bytes=min(DEFAULTS.max_stream_bytes, args.max_decompressed * MiB),
        max_depth=args.max_depth,
        seconds=args.timeout,
        max_memory=max(0, args.max_memory) * MiB,
        hash_inputs=not args.no_hash,
        map_inputs=not args.no_mmap,
        allow_incomplete=args.allow_incomplete,
    )


def cache_from(args: argparse.Namespace, limits: Limits) -> VerdictCache | None:
    if args.no_cache:
        if args.cache:
            raise InputError("--cache and --no-cache exclude each other")
        return None
    if args.no_hash and not args.cache:
        return None  # a cache in memory would hash every input that --no-hash spares
    return VerdictCache(limits, path=args.cache)


def run(args: argparse.Namespace) -> Report:
    report = new_report("scan")
    limits = limits_from(args)
    total = engine.count_files(args.paths)
    with progress(total, "scanning", not args.quiet) as bar:
        def done(s: Subject) -> None:
            if bar is not None:
                bar.advance(bar.task_ids[0])
            if s.findings and not args.quiet:
                log((f"{len(s.findings)} finding(s)", "red"), f" in {s.path}")

        report.subjects = engine.scan_paths(args.paths, limits, args.jobs or None, done,
                                            cache_from(args, limits))
    return finish(report)
