"""Retro-hunt throughput: objects and bytes per second with 1 and 2 workers, in the local
process pool and on a local Ray instance, over a generated object store of attachments
(Pillow PNG and JPEG photos, with a few crafted BLASTPASS WebPs among them).

    python benchmarks/bench_hunt.py [--objects 2000]

Prints objects/s, MB/s and the scaling efficiency (rate with 2 workers / 2 x rate with 1)
from one run of each. No platform world is needed: the hunt runs against an empty
platform database, so what is measured is listing, task hand-off and examination.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

from spywall.platform import db, hunt
from spywall.platform.world import _blastpass


def build_store(folder: Path, count: int) -> int:
    """Photo-sized attachments: noisy gradients (so the encoders cannot shrink them to
    nothing) as JPEG and PNG, 20 to 200 KB each, and one crafted WebP in a hundred."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    total = 0
    for i in range(count):
        if i % 100 == 0:
            data = _blastpass() + bytes([i % 251]) * (i % 7)
            name = f"{i:06d}.webp"
        else:
            ramp = np.linspace(0, 255, 320, dtype=np.float32)[None, :, None]
            noise = rng.normal(0, 24, (240, 320, 3)).astype(np.float32)
            pixels = np.clip(ramp + noise + (i % 64), 0, 255).astype(np.uint8)
            out = io.BytesIO()
            Image.fromarray(pixels, "RGB").save(out, "JPEG" if i % 2 else "PNG", quality=85)
            data = out.getvalue()
            name = f"{i:06d}.{'jpg' if i % 2 else 'png'}"
        (folder / name).write_bytes(data)
        total += len(data)
    return total


def measure(store: Path, url: str, runner: hunt.Runner) -> tuple[float, hunt.HuntResult]:
    engine = db.make_engine(url)
    db.init_schema(engine)
    start = time.perf_counter()
    result = hunt.hunt(engine, str(store), None, runner)
    took = time.perf_counter() - start
    engine.dispose()
    return took, result


def report(kind: str, workers: int, size: int, took: float, result: hunt.HuntResult) -> float:
    rate = result.objects / took
    print(f"{kind:4} {workers} worker(s): {rate:8.1f} objects/s {size / took / 1e6:7.1f} MB/s "
          f"({took:.1f} s, {result.malicious_objects} with exploits)", flush=True)
    return rate


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--objects", type=int, default=3000)
    p.add_argument("--no-ray", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = folder / "store"
        size = build_store(store, args.objects)
        print(f"store: {args.objects:,} objects, {size / 1e6:.1f} MB")
        rates: dict[tuple[str, int], float] = {}
        for workers in (1, 2):
            took, result = measure(store, f"sqlite:///{folder}/pool{workers}.db",
                                   hunt.pool_runner(workers))
            rates[("pool", workers)] = report("pool", workers, size, took, result)
        if not args.no_ray:
            import ray

            for workers in (1, 2):
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
                try:
                    took, result = measure(store, f"sqlite:///{folder}/ray{workers}.db",
                                           hunt.ray_runner("auto"))
                finally:
                    ray.shutdown()
                rates[("ray", workers)] = report("ray", workers, size, took, result)
        for kind in ("pool", "ray"):
            if (kind, 2) in rates:
                print(f"scaling efficiency, {kind}, 2 workers: "
                      f"{rates[(kind, 2)] / (2 * rates[(kind, 1)]):.2f}")


if __name__ == "__main__":
    main()
