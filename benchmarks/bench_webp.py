"""Scanning a large lossless WebP against decoding it.

Builds a 4000x4000 photo-like RGBA image (gradients plus noise), encodes it losslessly
with Pillow's libwebp (and, when present, a second one with cwebp -z 9), then times
spywall's scan (container walk, transforms and sub-images decoded, every prefix code's
table size simulated, main image pixels never decoded) against Pillow's full decode.
"""

from __future__ import annotations

import io
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from spywall.engine import scan_bytes
from spywall.formats import webp
from spywall.formats.base import ParseContext
from spywall.limits import Budget

SIDE = 4000


def _image() -> Image.Image:
    noise = Image.effect_noise((SIDE, SIDE), 24)
    grad = Image.linear_gradient("L").resize((SIDE, SIDE))
    return Image.merge("RGBA", (grad, noise, grad.rotate(90), Image.new("L", (SIDE, SIDE), 255)))


def _time(fn: Callable[[], object], runs: int = 3) -> float:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def _decode(blob: bytes) -> None:
    with Image.open(io.BytesIO(blob)) as im:
        im.load()


def _report(name: str, blob: bytes) -> None:
    parsed = webp.parse(blob, ParseContext(Budget()))
    assert isinstance(parsed.structure, webp.WebP)
    stream = parsed.structure.streams[0]
    subs = [f"{i.role} {i.width}x{i.height}" for i in stream.images if i.role != "main image"]
    scan = _time(lambda: scan_bytes(blob, name))
    walk = _time(lambda: webp.parse(blob, ParseContext(Budget())))
    full = _time(lambda: _decode(blob))
    print(f"{name}: {len(blob) / 1e6:.1f} MB, transforms {','.join(stream.transforms) or '-'}; "
          f"sub-images {'; '.join(subs) or '-'}")
    print(f"  spywall scan {scan * 1000:.1f} ms (WebP parse alone {walk * 1000:.1f} ms)   "
          f"Pillow full decode {full * 1000:.1f} ms   ratio {full / scan:.0f}x")


def main() -> None:
    im = _image()
    buf = io.BytesIO()
    im.save(buf, "WEBP", lossless=True, method=2)
    _report(f"pillow-lossless-{SIDE}.webp", buf.getvalue())
    if shutil.which("cwebp"):
        with tempfile.TemporaryDirectory() as tmp:
            src, out = Path(tmp, "in.png"), Path(tmp, "out.webp")
            im.save(src, compress_level=1)
            subprocess.run(["cwebp", "-quiet", "-lossless", "-m", "4", str(src), "-o", str(out)],
                           check=True)
            _report(f"cwebp-lossless-{SIDE}.webp", out.read_bytes())


if __name__ == "__main__":
    main()
