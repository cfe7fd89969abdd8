"""Font scan speed against a plain read of the same files, in-process, from one run.

The corpus is the fonts of the large-file corpus of ``bench_scan.py`` (``font*.tt?``
under ``build/bench-scan/large``; run that script first), or any files given. Every file
is read once to warm the page cache and scanned once to warm the interpreter; then a plain
read (open + read) and ``scan_path`` (no hashing) are timed over all files, best of
``--repeat`` rounds each. Run it pinned to one core: ``taskset -c 0 python ...``.
Usage: python benchmarks/bench_fonts.py [--repeat 5] [--profile] [FILE...]
"""

from __future__ import annotations

import argparse
import cProfile
import glob
import os
import pstats
import time
from collections.abc import Callable

from spywall.engine import scan_path
from spywall.limits import Limits

DEFAULT_GLOB = "build/bench-scan/large/font*.tt?"
LIMITS = Limits(hash_inputs=False)


def _read_all(files: list[str]) -> None:
    for f in files:
        with open(f, "rb") as fh:
            fh.read()


def _scan_all(files: list[str]) -> None:
    for f in files:
        scan_path(f, LIMITS)


def _best(fn: Callable[[list[str]], None], files: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(files)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one scan")
    args = ap.parse_args()
    files = args.files or sorted(glob.glob(DEFAULT_GLOB))
    if not files:
        raise SystemExit(f"no fonts: run benchmarks/bench_scan.py first ({DEFAULT_GLOB})")
    mb = sum(os.path.getsize(f) for f in files) / 1e6
    _read_all(files)
    _scan_all(files)
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(_scan_all, files)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    read = _best(_read_all, files, args.repeat)
    scan = _best(_scan_all, files, args.repeat)
    n = len(files)
    print(f"{n} files, {mb:.1f} MB; best of {args.repeat}")
    print(f"plain read: {read * 1e3:8.2f} ms  {mb / read:9.0f} MB/s  {read / n * 1e3:.3f} ms/file")
    print(f"scan:       {scan * 1e3:8.2f} ms  {mb / scan:9.0f} MB/s  {scan / n * 1e3:.3f} ms/file")
    print(f"scan / read throughput: {read / scan:.3f}")


if __name__ == "__main__":
    main()
