"""Scan throughput against a plain read of the same files, on one core, from one run.

Corpus A (large benign files): big JPEG/PNG/TIFF/WebP images made with Pillow, PDFs
with large image streams made with pikepdf, and fonts (the installed Debian fonts when
present). Corpus B (small attachments): a few thousand files of a few KB each.
Both are read once to warm the page cache; then a plain read (open + read of every
file) and ``spywall scan`` (in-process, one worker) are timed on the same files.

Targets (issue #2): scan >= 0.5x the plain read's MB/s on corpus A; >= 1,000 files/s on B.
Usage: python benchmarks/bench_scan.py [--size-mb 300] [--small 3000] [--dir build/bench]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import io
import os
import random
import shutil
import time
from pathlib import Path

from spywall.engine import expand, scan_path
from spywall.limits import Limits


def _image(w: int, h: int, seed: int):  # type: ignore[no-untyped-def]
    from PIL import Image

    rnd = random.Random(seed)
    small = Image.frombytes("RGB", (w // 16, h // 16), rnd.randbytes((w // 16) * (h // 16) * 3))
    return small.resize((w, h), Image.Resampling.BICUBIC)


def _save(img, fmt: str, **kw: object) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _pdf_with_images(images: list[bytes], w: int, h: int) -> bytes:
    import pikepdf

    pdf = pikepdf.new()
    for data in images:
        page = pdf.add_blank_page(page_size=(w, h))
        img = pikepdf.Stream(pdf, data)
        img.Type, img.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        img.Width, img.Height, img.BitsPerComponent = w, h, 8
        img.ColorSpace, img.Filter = pikepdf.Name.DeviceRGB, pikepdf.Name.DCTDecode
        page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=img))
        page.Contents = pdf.make_stream(f"q {w} 0 0 {h} 0 0 cm /Im0 Do Q".encode())
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def build_large(root: Path, size_mb: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    total, i = 0, 0
    fonts = sorted(glob.glob("/usr/share/fonts/truetype/**/*.tt[fc]", recursive=True))[:60]
    for f in fonts:
        shutil.copy(f, root / f"font{i}{Path(f).suffix}")
        total += os.path.getsize(f)
        i += 1
    while total < size_mb * 1024 * 1024:
        img = _image(3000, 2000, i)
        blobs = {
            f"img{i}.jpg": _save(img, "JPEG", quality=95),
            f"img{i}.png": _save(img, "PNG", compress_level=1),
            f"img{i}.tif": _save(img, "TIFF"),
            f"img{i}.webp": _save(img.resize((1500, 1000)), "WEBP", lossless=True, method=0),
            f"doc{i}.pdf": _pdf_with_images([_save(img, "JPEG", quality=95)] * 4, 3000, 2000),
        }
        for name, data in blobs.items():
            (root / name).write_bytes(data)
            total += len(data)
        i += 1


def build_small(root: Path, count: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    kinds = [("jpg", "JPEG", {}), ("png", "PNG", {}), ("gif", "GIF", {}),
             ("webp", "WEBP", {"lossless": True}), ("pdf", "PDF", {})]
    protos = {}
    for ext, fmt, kw in kinds:
        protos[ext] = _save(_image(96, 64, hash(ext) & 0xFFFF), fmt, **kw)
    for n in range(count):
        ext = kinds[n % len(kinds)][0]
        data = protos[ext]
        (root / f"a{n:05d}.{ext}").write_bytes(data + n.to_bytes(4, "big") * 0)


def plain_read(files: list[str]) -> tuple[float, int]:
    t = time.perf_counter()
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            total += len(fh.read())
    return time.perf_counter() - t, total


def scan(files: list[str], hash_inputs: bool) -> tuple[float, int, int]:
    limits = Limits(hash_inputs=hash_inputs)
    t = time.perf_counter()
    findings = errors = 0
    for f in files:
        s = scan_path(f, limits)
        findings += len(s.findings)
        errors += len(s.errors)
    return time.perf_counter() - t, findings, errors


def hashed_read(files: list[str]) -> float:
    t = time.perf_counter()
    for f in files:
        with open(f, "rb") as fh:
            hashlib.sha256(fh.read()).digest()
    return time.perf_counter() - t


def measure(name: str, files: list[str], hash_inputs: bool) -> dict[str, float]:
    plain_read(files)  # warm the page cache
    t_read, nbytes = plain_read(files)
    t_hread = hashed_read(files)
    t_scan, findings, errors = scan(files, hash_inputs)
    mb = nbytes / 1e6
    row = {
        "files": len(files), "MB": mb,
        "read_MBps": mb / t_read, "scan_MBps": mb / t_scan,
        "read_files_per_s": len(files) / t_read, "scan_files_per_s": len(files) / t_scan,
        "ratio": t_read / t_scan, "ratio_hashed": t_hread / t_scan,
        "findings": findings, "errors": errors,
    }
    mode = "scan" if hash_inputs else "scan --no-hash"
    print(f"{name} [{mode}]: {len(files)} files, {mb:.1f} MB | plain read "
          f"{row['read_MBps']:.0f} MB/s, read+sha256 {mb / t_hread:.0f} MB/s | scan "
          f"{row['scan_MBps']:.0f} MB/s, {row['scan_files_per_s']:.0f} files/s | ratio to "
          f"plain read {row['ratio']:.2f}, to read+sha256 {row['ratio_hashed']:.2f} | "
          f"findings {findings}, errors {errors}")
    return row


def per_format(files: list[str]) -> None:
    """Plain read vs scan (--no-hash) per file type, to show where the time goes."""
    by_ext: dict[str, list[str]] = {}
    for f in files:
        by_ext.setdefault(Path(f).suffix or "-", []).append(f)
    for ext, group in sorted(by_ext.items()):
        plain_read(group)
        t_read, nbytes = plain_read(group)
        t_scan, _, _ = scan(group, hash_inputs=False)
        mb = nbytes / 1e6
        print(f"  {ext:6s} {len(group):4d} files {mb:7.1f} MB | plain read {mb / t_read:6.0f} MB/s"
              f" | scan --no-hash {mb / t_scan:6.0f} MB/s, {len(group) / t_scan:6.0f} files/s"
              f" | ratio {t_read / t_scan:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size-mb", type=int, default=300)
    ap.add_argument("--small", type=int, default=3000)
    ap.add_argument("--dir", default="build/bench-scan")
    a = ap.parse_args()
    root = Path(a.dir)
    if not (root / "large").exists():
        print(f"building corpora in {root} ...")
        build_large(root / "large", a.size_mb)
        build_small(root / "small", a.small)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    large_files = list(expand([str(root / "large")]))
    small_files = list(expand([str(root / "small")]))
    measure("large benign corpus", large_files, hash_inputs=True)
    large = measure("large benign corpus", large_files, hash_inputs=False)
    per_format(large_files)
    small = measure("small attachments", small_files, hash_inputs=True)
    per_format(small_files)
    ok_large = large["ratio"] >= 0.5
    ok_small = small["scan_files_per_s"] >= 1000
    print(f"targets: large (--no-hash) >= 0.5x plain read: {'met' if ok_large else 'NOT met'}"
          f"; small >= 1000 files/s: {'met' if ok_small else 'NOT met'}")


if __name__ == "__main__":
    main()
