"""Run every benchmark in this folder, one after the other, and print their figures.

``make bench`` installs the benchmark extras (MVT) and calls this. Each benchmark is a
script of its own (``bench_*.py``) that builds its data, runs spywall and the real
alternative from the same run, and prints ratios; nothing here is a timed test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    only = set(sys.argv[1:])
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        if only and script.stem not in only:
            continue
        print(f"\n=== {script.stem} ===", flush=True)
        if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
            failed.append(script.stem)
    if failed:
        print(f"\nbenchmarks that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
