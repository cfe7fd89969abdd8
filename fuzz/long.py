"""Longer atheris runs per parser (``make fuzz``; not part of ``make test``).

Like ``smoke.py``, but each target keeps its corpus in ``build/fuzz/<target>/`` between
runs, and the corpus is seeded, besides the samples of ``spywall.samples``, with small
versions of the hostile shapes of ``tests/hostile/shapes.py`` (exploits behind caps,
loops and huge counts), so the fuzzer starts at the edges the limits guard.
libFuzzer's own ceilings match the adversarial suite's: 1536 MiB of RSS, 60 s per input.

Environment: FUZZ_SECONDS (default 300) per target; FUZZ_ONLY=name for one target;
FUZZ_DIR (default build/fuzz) for the corpora and crash artifacts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MAX_SEED = 512 * 1024


def hostile_seeds() -> Iterator[tuple[str, bytes]]:
    """The hostile shapes at sizes a fuzzer can mutate (the suite uses the full ones)."""
    sys.path.insert(0, str(ROOT / "tests" / "hostile"))
    import shapes

    small: list[tuple[str, Callable[[], bytes]]] = [
        ("zip-bomb-webp", lambda: shapes.zip_ratio_bomb_then(shapes.webp_exploit(), mib=2)),
        ("zip-entries", lambda: shapes.zip_many_entries(shapes.webp_exploit(), 2000)),
        ("gif-comments", lambda: shapes.gif_11932_then_comments(2000)),
        ("webp-frames", lambda: shapes.webp_blastpass_then_frames(300)),
        ("tiff-tags", lambda: shapes.tiff_many_long_tags(8, 2000, 0)),
        ("pdf-objstm", lambda: shapes.pdf_objstm_bomb_and_jbig2(2)),
        ("pdf-loop", shapes.pdf_page_tree_loop_and_jbig2),
        ("pdf-xref", lambda: shapes.pdf_xref_stream_bomb_and_jbig2(2)),
        ("zip-in-pdf", lambda: shapes.pdf_embedding(
            "a.zip", shapes.zip_ratio_bomb_then(shapes.webp_exploit(), mib=2))),
    ]
    for name, make in small:
        yield name, make()


def seeds() -> Iterator[tuple[str, bytes]]:
    from spywall.samples import all_samples

    for i, s in enumerate(all_samples()):
        yield f"sample-{i:04d}", s.data
    yield from hostile_seeds()


def main() -> int:
    seconds = int(os.environ.get("FUZZ_SECONDS", "300"))
    only = os.environ.get("FUZZ_ONLY")
    base = Path(os.environ.get("FUZZ_DIR", str(ROOT / "build" / "fuzz")))
    targets = sorted(HERE.glob("fuzz_*.py"))
    if only:
        targets = [t for t in targets if t.stem == f"fuzz_{only}"]
    seed_list = [(n, d) for n, d in seeds() if len(d) <= MAX_SEED]
    failed = []
    for t in targets:
        work = base / t.stem
        work.mkdir(parents=True, exist_ok=True)
        for name, data in seed_list:
            seed = work / f"seed-{name}"
            if not seed.exists():
                seed.write_bytes(data)
        cmd = [sys.executable, str(t), f"-max_total_time={seconds}", "-rss_limit_mb=1536",
               "-timeout=60", f"-artifact_prefix={base}/{t.stem}-crash-", str(work)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        tail = (proc.stderr or "").strip().splitlines()[-1:] or [""]
        status = "ok" if proc.returncode == 0 else f"FAILED ({proc.returncode})"
        print(f"fuzz {t.stem}: {status} {tail[0][:120]}", flush=True)
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            failed.append(t.stem)
    print(f"fuzz: {len(targets) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
