"""Run every atheris target in fuzz/ for a short while (CI smoke run).

Each target is ``fuzz/fuzz_<name>.py`` defining ``TestOneInput(data: bytes)`` and, under
``if __name__ == "__main__"``, ``atheris.Setup(sys.argv, TestOneInput); atheris.Fuzz()``.
A target may swallow only ``spywall.errors.SpywallError``; anything else is a crash.
Seeds: the crafted and benign samples of ``spywall.samples`` and the sample captures
(``samples.captures``: calls, the hidden-trigger captures and their twins) are written to a
temporary corpus folder so the fuzzer starts from real structures.

Environment: FUZZ_SECONDS (default 6) per target; FUZZ_ONLY=name to run one target.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    seconds = int(os.environ.get("FUZZ_SECONDS", "6"))
    only = os.environ.get("FUZZ_ONLY")
    targets = sorted(HERE.glob("fuzz_*.py"))
    if only:
        targets = [t for t in targets if t.stem == f"fuzz_{only}"]
    from spywall.samples import all_samples
    from spywall.samples.captures import capture_samples

    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp, "seeds")
        corpus.mkdir()
        for i, s in enumerate(all_samples()):
            if len(s.data) <= 256 * 1024:
                (corpus / f"{i:04d}").write_bytes(s.data)
        for i, c in enumerate(capture_samples()):   # whole calls: SIP, media, TCP streams
            data = c.capture.pcap()
            if len(data) <= 256 * 1024:
                (corpus / f"capture-{i:04d}").write_bytes(data)
        for t in targets:
            work = Path(tmp, t.stem)
            work.mkdir()
            for seed in corpus.iterdir():
                (work / seed.name).write_bytes(seed.read_bytes())
            cmd = [sys.executable, str(t), f"-max_total_time={seconds}", "-rss_limit_mb=2048",
                   "-timeout=10", f"-artifact_prefix={tmp}/{t.stem}-", str(work)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            tail = (proc.stderr or "").strip().splitlines()[-1:] or [""]
            status = "ok" if proc.returncode == 0 else f"FAILED ({proc.returncode})"
            print(f"fuzz {t.stem}: {status} {tail[0][:120]}")
            if proc.returncode != 0:
                print(proc.stderr[-4000:], file=sys.stderr)
                failed.append(t.stem)
    print(f"fuzz smoke: {len(targets) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
