"""``spywall scan`` on a realistic mixed corpus, against a plain read of the same files.

The corpus (``benchmarks/corpus.py``, cached in ``build/corpus``) is a few thousand benign
files from real producers. After a read to warm the page cache, this times:

- a plain read (open + read) and a read + SHA-256 of every file;
- per type (the format the scan reports), one core, ``--no-hash``: MB and files per
  CPU-second (process time, so that other load on the machine does not count);
- the whole corpus in-process on one core, hashing on (the default) and off;
- the whole corpus on every core (``engine.scan_paths``), hashing on and off;
- the ``spywall scan DIR`` command with its defaults (JSON to /dev/null), as a user runs it.

Targets (issue #15): >= 300 MB/s overall with defaults on this machine; PDFs >= 100 MB/s
on one core. ``--save FILE`` writes every file's findings and errors; ``--check FILE``
compares them with a saved run (results must not change when the code gets faster).

Usage: python benchmarks/bench_corpus.py [--dir build/corpus] [--scale 1] [--save F] [--check F]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import build

from spywall.engine import expand, scan_path, scan_paths
from spywall.limits import Limits
from spywall.report import Subject


def files_of(root: Path) -> list[str]:
    return list(expand([str(p) for p in sorted(root.iterdir()) if p.is_dir()]))


def plain_read(files: list[str], digest: bool = False) -> float:
    t = time.perf_counter()
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        if digest:
            hashlib.sha256(data).digest()
    return time.perf_counter() - t


def outcome(s: Subject, root: str) -> dict[str, Any]:
    """What must not change: the format, the findings and the errors of one file."""
    rel = os.path.relpath(s.path, root)
    return {"format": s.format,
            "findings": sorted(f"{f.rule}|{os.path.relpath(f.path, root)}|{f.location.offset}|"
                               f"{f.message}" for f in s.findings),
            "errors": sorted(f"{e.code}|{os.path.relpath(e.path, root)}|{e.message}"
                             for e in s.errors), "path": rel}


def per_type(files: list[str], sizes: dict[str, int]) -> dict[str, dict[str, float]]:
    limits = Limits(hash_inputs=False)
    rows: dict[str, list[float]] = {}
    for f in files:
        t = time.process_time()  # CPU time: one core, robust to a shared machine
        s = scan_path(f, limits)
        dt = time.process_time() - t
        row = rows.setdefault(s.format, [0.0, 0.0, 0.0, 0.0])
        row[0] += 1
        row[1] += sizes[f]
        row[2] += dt
    out = {}
    for fmt, (n, nbytes, dt, _) in sorted(rows.items(), key=lambda kv: -kv[1][1]):
        out[fmt] = {"files": n, "MB": nbytes / 1e6, "MBps": nbytes / 1e6 / dt,
                    "files_per_s": n / dt}
        print(f"  {fmt:16s} {int(n):5d} files {nbytes / 1e6:7.1f} MB | one CPU, --no-hash "
              f"{nbytes / 1e6 / dt:7.1f} MB/s {n / dt:7.0f} files/s")
    return out


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the machine may be shared:
    wall-clock figures then understate what the code does on an idle machine)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def line(name: str, dt: float, mb: float, n: int, t_read: float,
         cpu: float | None = None) -> dict[str, float]:
    extra = "" if cpu is None else f" | per CPU-second {mb / cpu:7.1f} MB {n / cpu:6.0f} files"
    print(f"{name:38s} {mb / dt:7.1f} MB/s {n / dt:7.0f} files/s | "
          f"{t_read / dt:5.2f}x plain read{extra}")
    row = {"MBps": mb / dt, "files_per_s": n / dt, "ratio_to_read": t_read / dt}
    if cpu is not None:
        row["MB_per_cpu_s"] = mb / cpu
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", default="build/corpus")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--save", help="write every file's outcome to this JSON file")
    ap.add_argument("--check", help="compare every file's outcome with this JSON file")
    ap.add_argument("--quick", action="store_true", help="skip the per-type pass")
    a = ap.parse_args()
    root = Path(a.dir)
    print(f"corpus in {root}: {json.dumps(build(root, a.scale)['producers'])}")
    files = files_of(root)
    sizes = {f: os.path.getsize(f) for f in files}
    mb, n = sum(sizes.values()) / 1e6, len(files)
    cores = len(os.sched_getaffinity(0))
    print(f"{n} files, {mb:.1f} MB, {cores} cores")
    plain_read(files)
    t_read = plain_read(files)
    t_hread = plain_read(files, digest=True)
    results: dict[str, Any] = {"files": n, "MB": mb}
    results["plain_read"] = line("plain read", t_read, mb, n, t_read)
    results["read_sha256"] = line("read + sha256", t_hread, mb, n, t_read)

    for jobs in (cores, 1):
        for hashing in (True, False):
            limits = Limits(hash_inputs=hashing)
            t, c = time.perf_counter(), cpu_seconds()
            subjects = scan_paths(files, limits, jobs)
            dt, dc = time.perf_counter() - t, cpu_seconds() - c
            label = f"scan {jobs} core{'s' if jobs > 1 else ''}{'' if hashing else ' --no-hash'}"
            results[label] = line(label, dt, mb, n, t_read, dc)
    outcomes = {o["path"]: o for o in (outcome(s, str(root)) for s in subjects)}

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    dirs = [str(p) for p in sorted(root.iterdir()) if p.is_dir()]
    t, c = time.perf_counter(), cpu_seconds()
    subprocess.run([sys.executable, "-m", "spywall", "scan", *dirs, "--quiet", "--format",
                    "json"], stdout=subprocess.DEVNULL, env=env, check=False)
    results["cli_defaults"] = line("spywall scan DIR (defaults, CLI)",
                                   time.perf_counter() - t, mb, n, t_read, cpu_seconds() - c)
    if not a.quick:
        print("per type (one core, --no-hash, in-process, per CPU-second):")
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        results["per_type"] = per_type(files, sizes)
    pdf = results.get("per_type", {}).get("pdf", {}).get("MBps", 0.0)
    overall = results["cli_defaults"]["MBps"]
    print(f"targets: overall with defaults >= 300 MB/s: {'met' if overall >= 300 else 'NOT met'}"
          f" ({overall:.0f}); PDF one core >= 100 MB/s: "
          f"{'met' if pdf >= 100 else 'NOT met'} ({pdf:.0f})")
    if a.save:
        Path(a.save).write_text(json.dumps(outcomes, indent=0, sort_keys=True))
    if a.check:
        before = json.loads(Path(a.check).read_text())
        changed = sorted(k for k in before.keys() | outcomes.keys()
                         if before.get(k) != outcomes.get(k))
        for k in changed[:20]:
            print(f"CHANGED {k}: before {before.get(k)} now {outcomes.get(k)}")
        verdict = "yes" if not changed else f"NO ({len(changed)} files)"
        print(f"outcomes identical to {a.check}: {verdict}")


if __name__ == "__main__":
    main()
