"""check-ios against MVT's ``mvt-ios check-backup`` on the same generated backup.

Runs both tools as command-line programs (start-up, indicator loading and output files
included) with (1) Amnesty's Pegasus set and (2) a generated 50,000-indicator STIX file,
prints wall times and ratios, and checks that every indicator MVT matched is matched by
spywall too (MVT's alerts.json / *_detected.json are parsed). Then (3) the Pegasus set again
on a backup five times larger (``--large``), where start-up weighs less.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/bench_ios_vs_mvt.py [--messages N] [--history N]

MVT runs with network access disabled (MVT_NETWORK_ACCESS_ALLOWED=false) and a private
config folder. Both packages are byte-compiled before anything is timed: spywall is usually
installed editable here (no .pyc from pip) and PYTHONDONTWRITEBYTECODE may be set, so it
would otherwise recompile its own sources on every run while MVT, a regular install,
starts from pip's .pyc files.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import random
import resource
import shutil
import string
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from spywall.iocs import IocIndex
from spywall.ios.check import check_backup
from spywall.samples.ios import PLANTED, BackupSpec, write_backup

HERE = Path(__file__).resolve().parent
PEGASUS = Path("/work/shared/iocs/amnesty_pegasus.stix2")
BIN = Path(sys.executable).parent
KINDS = {"domain": "domain-name:value", "process": "process:name", "email": "email-addr:value",
         "file_name": "file:name", "profile": "configuration-profile:id"}


def stix_file(path: Path, n: int) -> Path:
    """A STIX 2.1 bundle of ``n`` random domains plus the generator's planted values."""
    rnd = random.Random(7)
    malware = f"malware--{uuid.UUID(int=rnd.getrandbits(128))}"
    objects: list[dict[str, object]] = [{"type": "malware", "spec_version": "2.1",
                                         "id": malware, "name": "Synthetic50k",
                                         "is_family": False}]
    patterns = [f"[{KINDS[next(k for k in KINDS if key.endswith(k))]} = '{v}']"
                for key, v in PLANTED.items()]
    while len(patterns) < n:
        label = "".join(rnd.choices(string.ascii_lowercase, k=rnd.randint(6, 14)))
        patterns.append(f"[domain-name:value = '{label}.{rnd.choice(['com', 'net', 'info'])}']")
    for p in patterns:
        ind = f"indicator--{uuid.UUID(int=rnd.getrandbits(128))}"
        objects.append({"type": "indicator", "spec_version": "2.1", "id": ind,
                        "pattern": p, "pattern_type": "stix",
                        "valid_from": "2024-01-01T00:00:00Z",
                        "created": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z"})
        objects.append({"type": "relationship", "spec_version": "2.1",
                        "id": f"relationship--{uuid.UUID(int=rnd.getrandbits(128))}",
                        "relationship_type": "indicates", "source_ref": ind,
                        "target_ref": malware, "created": "2024-01-01T00:00:00Z",
                        "modified": "2024-01-01T00:00:00Z"})
    path.write_text(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                "objects": objects}))
    return path


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child): CPU time is steadier on a busy machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"{cmd[0]} failed with status {proc.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def mvt_matches(out: Path) -> set[str]:
    """Every indicator value MVT reported as matched (alerts.json and *_detected.json)."""
    values: set[str] = set()
    for f in out.glob("*.json"):
        if f.name != "alerts.json" and not f.name.endswith("_detected.json"):
            continue
        for item in json.loads(f.read_text() or "[]"):
            m = item.get("matched_indicator") if isinstance(item, dict) else None
            if isinstance(m, dict) and m.get("value"):
                values.add(str(m["value"]).lower())
    return values


def spywall_matches(report: Path) -> set[str]:
    data = json.loads(report.read_text())
    return {f["indicator"]["value"].lower() for s in data["subjects"] for f in s["findings"]
            if f.get("indicator")}


def compare(backup: Path, iocs: Path, work: Path, label: str,
            repeat: int = 1) -> tuple[float, float]:
    """Run both ``repeat`` times, interleaved, each into a fresh result folder; return the
    fastest (MVT wall, spywall wall). spywall runs with its default ``--jobs`` (two
    processes on a two-core machine), again without ``--output``, and again with
    ``--jobs 1`` (one process; the CPU time of the default run counts both). The machine
    is shared: the fastest of a few runs is the least disturbed one, and both tools get
    the same treatment."""
    mvt_out, sw_out, one_out = (work / f"mvt-{label}", work / f"spywall-{label}",
                                work / f"spywall-j1-{label}")
    env = dict(os.environ, MVT_NETWORK_ACCESS_ALLOWED="false",
               MVT_CONFIG_FOLDER=str(work / "mvt-config"))
    runs: list[tuple[float, float, float, float, float, float, float, float]] = []
    for _ in range(repeat):
        for out in (mvt_out, sw_out, one_out):
            shutil.rmtree(out, ignore_errors=True)
        (t_mvt, c_mvt) = timed([str(BIN / "mvt-ios"), "check-backup", "--iocs", str(iocs),
                                "--output", str(mvt_out), str(backup)], env)
        (t_sw, c_sw) = timed([str(BIN / "spywall"), "check-ios", str(backup), "--iocs",
                              str(iocs), "-q", "-f", "json", "--output", str(sw_out)])
        (t_lean, c_lean) = timed([str(BIN / "spywall"), "check-ios", str(backup), "--iocs",
                                  str(iocs), "-q", "-f", "json"])
        (t_one, c_one) = timed([str(BIN / "spywall"), "check-ios", str(backup), "--iocs",
                                str(iocs), "-q", "-f", "json", "--output", str(one_out),
                                "--jobs", "1"])
        runs.append((t_mvt, c_mvt, t_sw, c_sw, t_lean, c_lean, t_one, c_one))
    t_mvt, c_mvt, t_sw, c_sw, t_lean, c_lean, t_one, c_one = (
        min(col) for col in zip(*runs, strict=True))
    if repeat > 1:
        print(f"{label:>8}: {repeat} runs, wall mvt "
              f"{', '.join(f'{r[0]:.2f}' for r in runs)}s; spywall "
              f"{', '.join(f'{r[2]:.2f}' for r in runs)}s; fastest of each below")
    theirs, ours = mvt_matches(mvt_out), spywall_matches(sw_out / "report.json")
    missing = theirs - ours
    print(f"{label:>8}: wall mvt {t_mvt:7.2f}s spywall {t_sw:5.2f}s ({t_mvt / t_sw:5.1f}x); "
          f"cpu mvt {c_mvt:7.2f}s spywall {c_sw:5.2f}s ({c_mvt / c_sw:5.1f}x)"
          f"; spywall without --output: wall {t_lean:.2f}s cpu {c_lean:.2f}s"
          f"; spywall --jobs 1: wall {t_one:.2f}s ({t_mvt / t_one:.1f}x) cpu {c_one:.2f}s\n"
          f"{'':>10}indicators matched: mvt {len(theirs)}, spywall {len(ours)}, "
          f"missed by spywall {sorted(missing) or 'none'}")
    t0 = time.process_time()
    index = IocIndex.load([iocs])
    t1 = time.process_time()
    check_backup(backup, index, index.sources, timeline=False)
    t2 = time.process_time()
    print(f"{'':>10}spywall in-process CPU (no interpreter start-up): indicator load "
          f"{t1 - t0:.2f}s, check {t2 - t1:.2f}s")
    if missing:
        raise SystemExit(f"spywall missed indicators MVT matched: {sorted(missing)}")
    return t_mvt, t_sw


def byte_compile(*packages: str) -> None:
    """Write the .pyc files of ``packages`` (what pip does for a regular install), so that
    neither tool compiles its sources inside a timed run."""
    for name in packages:
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(folder, quiet=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--history", type=int, default=20_000)
    ap.add_argument("--processes", type=int, default=500)
    ap.add_argument("--indicators", type=int, default=50_000)
    ap.add_argument("--large", type=int, default=100_000,
                    help="messages and visits of a second, larger backup checked with the "
                         "Pegasus set only, to show how the ratio moves once start-up no "
                         "longer dominates (0: skip)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each tool with the Pegasus set (fastest kept); the large "
                         "set runs once (MVT takes minutes there)")
    args = ap.parse_args()
    if shutil.which("mvt-ios", path=str(BIN)) is None:
        raise SystemExit("mvt-ios not installed: .venv/bin/pip install -e '.[bench]'")
    byte_compile("spywall", "mvt")
    with tempfile.TemporaryDirectory(prefix="bench-ios-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        backup = write_backup(work / "backup", BackupSpec(
            messages=args.messages, history=args.history, extra_processes=args.processes))
        print(f"backup: {args.messages} messages, {args.history} history visits, "
              f"{args.processes} processes (generated in {time.perf_counter() - t:.1f}s)")
        big = stix_file(work / "synthetic50k.stix2", args.indicators)
        results = {"pegasus": compare(backup, PEGASUS, work, "pegasus", args.repeat),
                   f"{args.indicators // 1000}k": compare(backup, big, work,
                                                          f"{args.indicators // 1000}k")}
        if args.large:
            large = write_backup(work / "backup-large", BackupSpec(
                messages=args.large, history=args.large, extra_processes=args.processes))
            print(f"larger backup: {args.large} messages, {args.large} history visits")
            results[f"pegasus, {args.large // 1000}k+{args.large // 1000}k backup"] = compare(
                large, PEGASUS, work, "pegasus-large")
        for label, (a, b) in results.items():
            print(f"speed-up with {label}: {a / b:.1f}x")


if __name__ == "__main__":
    main()
