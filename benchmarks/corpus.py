"""A realistic mixed corpus of benign attachments, made by real producers (issue #15).

Many small files from many producers, as a mail or messaging gateway sees them:

- every installed font (``/usr/share/fonts``: TrueType, OpenType, Type 1, compressed PCF);
- photo-like images (smooth noise with edges, several sizes) re-encoded by Pillow (JPEG
  baseline/progressive at several qualities, PNG, GIF, TIFF with LZW/Deflate, WebP),
  cwebp (lossy and lossless), heif-enc (HEIC) and tifffile (lossless-JPEG DNG);
- PDFs written by Ghostscript (from generated PostScript: text, vector art, images;
  some with ``-dASCII85EncodePages``, as old print pipelines write them), Cairo (through
  rsvg-convert, from generated SVG with text and embedded photos), img2pdf, Pillow, and
  pikepdf (streams re-encoded with Flate, ASCII85, ASCIIHex, LZW and RunLength chains,
  object streams on and off);
- zip archives of a few of the above; system icons and pixmaps (PNG, SVG, XPM); text.

Each producer is an entry of ``PRODUCERS``; one whose tool is missing is skipped with a
note (``make bench-deps`` installs them). The corpus is cached under ``build/`` and rebuilt
only when ``VERSION`` or the requested scale changes.

Usage: python benchmarks/corpus.py [--dir build/corpus] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import random
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

VERSION = 2
PHOTO_SIZES = ((320, 240), (640, 480), (800, 600), (1024, 768), (1600, 1200), (2048, 1536))
_TEXT = ("invoice payment meeting agenda contract summary quarterly report draft review "
         "attached please find the revised schedule budget figures travel approval signed "
         "copy thanks regards project update minutes notes")
WORDS = _TEXT.split()


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def photo(w: int, h: int, seed: int) -> Any:
    """A photo-like RGB image: smooth colour fields, noise and a few hard edges."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rnd = np.random.default_rng(seed)
    small = rnd.integers(0, 256, (max(2, h // 48), max(2, w // 48), 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    r = random.Random(seed)
    for _ in range(6):
        x, y = r.randrange(w), r.randrange(h)
        draw.ellipse((x, y, x + r.randrange(w // 4 + 1), y + r.randrange(h // 4 + 1)),
                     fill=tuple(r.randrange(256) for _ in range(3)))
    img = img.filter(ImageFilter.GaussianBlur(1))
    noise = rnd.normal(0, 6, (h, w, 3))
    arr = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def save(img: Any, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def sentence(r: random.Random, n: int) -> str:
    return " ".join(r.choice(WORDS) for _ in range(n))


class Out:
    """Writes files under one producer's folder and counts them."""

    def __init__(self, root: Path, producer: str) -> None:
        self.dir = root / producer
        self.dir.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self.bytes = 0

    def put(self, name: str, data: bytes) -> Path:
        path = self.dir / name
        path.write_bytes(data)
        self.count += 1
        self.bytes += len(data)
        return path

    def path(self, name: str) -> Path:
        self.count += 1
        return self.dir / name


def run(cmd: list[str], **kw: Any) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=120, **kw)


# -- producers -------------------------------------------------------------------------

def fonts(out: Out, n: int) -> None:
    for f in sorted(glob.glob("/usr/share/fonts/**/*", recursive=True)):
        if os.path.isfile(f) and not os.path.islink(f):
            out.put(f.replace("/", "_").lstrip("_"), Path(f).read_bytes())


def system_images(out: Out, n: int) -> None:
    files = sorted(f for pat in ("/usr/share/icons/**/*.png", "/usr/share/icons/**/*.svg",
                                 "/usr/share/pixmaps/**/*")
                   for f in glob.glob(pat, recursive=True) if os.path.isfile(f))
    for f in random.Random(1).sample(files, min(n, len(files))):
        out.put(f.replace("/", "_").lstrip("_"), Path(f).read_bytes())


def text(out: Out, n: int) -> None:
    r = random.Random(2)
    for i in range(n):
        body = "\n".join(sentence(r, r.randrange(5, 20)) for _ in range(r.randrange(3, 60)))
        ext = r.choice(("txt", "csv", "html", "eml"))
        out.put(f"note{i}.{ext}", body.encode())


def pillow_photos(out: Out, n: int) -> None:
    """Mostly JPEG, as phones and mail clients send photos; some PNG, GIF, TIFF, WebP."""
    for i in range(n):
        w, h = PHOTO_SIZES[i % len(PHOTO_SIZES)]
        img = photo(w, h, i)
        kind = i % 10
        if kind in (0, 1):
            out.put(f"p{i}.jpg", save(img, "JPEG", quality=85, exif=_exif(i)))
        elif kind in (2, 3):
            out.put(f"p{i}.jpg", save(img, "JPEG", quality=70, progressive=True, optimize=True))
        elif kind == 4:
            out.put(f"p{i}.jpg", save(img, "JPEG", quality=95, subsampling=0))
        elif kind == 5:
            out.put(f"p{i}.jpg", save(img.resize((w // 2, h // 2)), "JPEG", quality=80))
        elif kind == 6:
            out.put(f"p{i}.png", save(img.resize((w // 3, h // 3)), "PNG"))
        elif kind == 7:
            out.put(f"p{i}.gif", save(img.resize((w // 4, h // 4)).quantize(128), "GIF"))
        elif kind == 8:
            out.put(f"p{i}.webp", save(img, "WEBP", quality=80))
        else:
            out.put(f"p{i}.tif", save(img.resize((w // 4, h // 4)), "TIFF",
                                      compression=("tiff_lzw", "tiff_adobe_deflate")[i % 2]))


def _exif(i: int) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "ExampleCam"  # Make
    exif[0x0110] = f"Model {i % 7}"  # Model
    exif[0x0132] = f"2024:0{1 + i % 9}:1{i % 10} 12:00:00"  # DateTime
    return exif.tobytes()


def cwebp(out: Out, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            w, h = PHOTO_SIZES[i % 4]
            src = Path(tmp) / "in.png"
            src.write_bytes(save(photo(w, h, 1000 + i), "PNG", compress_level=1))
            opts = ["-lossless"] if i % 3 == 0 else ["-q", str(60 + i % 30)]
            run(["cwebp", "-quiet", *opts, str(src), "-o", str(out.path(f"w{i}.webp"))])


def heif(out: Out, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            w, h = PHOTO_SIZES[i % 4]
            src = Path(tmp) / "in.png"
            src.write_bytes(save(photo(w, h, 2000 + i), "PNG", compress_level=1))
            run(["heif-enc", "-q", str(50 + i % 40), str(src), "-o",
                 str(out.path(f"h{i}.heic"))])


def dng(out: Out, n: int) -> None:
    import numpy as np
    import tifffile

    for i in range(n):
        w, h = PHOTO_SIZES[i % 3]
        raw = (np.asarray(photo(w, h, 3000 + i).convert("L"), dtype=np.uint16) * 16)
        buf = io.BytesIO()
        tifffile.imwrite(buf, raw, photometric="minisblack", compression="jpeg",
                         compressionargs={"lossless": True, "bitspersample": 12},
                         tile=(256, 256), extratags=[(50706, 1, 4, (1, 4, 0, 0), True)])
        out.put(f"d{i}.dng", buf.getvalue())


URW_FONTS = ("NimbusRoman-Regular", "NimbusSans-Regular", "NimbusMonoPS-Regular",
             "NimbusSans-Bold", "C059-Roman", "P052-Roman")


def _postscript(i: int, pages: int, image: bool) -> str:
    """Text in URW fonts (embedded as subsets), vector art and, on page one, a photo."""
    r = random.Random(i)
    ps = ["%!PS-Adobe-3.0"]
    for p in range(pages):
        ps.append(f"/{r.choice(URW_FONTS)} findfont 11 scalefont setfont")
        ps.extend(f"72 {760 - line * 16} moveto ({sentence(r, 10)}) show" for line in range(40))
        ps.extend(f"{r.random():.2f} {r.random():.2f} {r.random():.2f} setrgbcolor "
                  f"newpath {r.randrange(500)} {r.randrange(700)} moveto "
                  f"{r.randrange(-99, 99)} {r.randrange(-99, 99)} rlineto "
                  f"{r.randrange(-99, 99)} {r.randrange(-99, 99)} rlineto closepath fill"
                  for _ in range(5))
        if image and p == 0:
            w, h = (160, 120) if i % 4 else (480, 360)
            pix = photo(w, h, i).tobytes().hex()
            ps.append(f"gsave 300 500 translate 240 180 scale {w} {h} 8 [{w} 0 0 -{h} 0 {h}] "
                      f"{{<{pix}>}} false 3 colorimage grestore")
        ps.append("0 setgray showpage")
    return "\n".join(ps) + "\n"


def ghostscript(out: Out, n: int) -> None:
    """pdfwrite; half the files ASCII85-wrapped (-dASCII85EncodePages, as print pipelines
    write them), some at /prepress settings (images kept at full resolution)."""
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            src = Path(tmp) / "in.ps"
            src.write_text(_postscript(i, 1 + i % 4, image=i % 3 != 2))
            opts = ["-dASCII85EncodePages=true"] if i % 2 == 0 else []
            if i % 5 == 1:
                opts.append("-dCompatibilityLevel=1.4")
            if i % 3 == 0:
                opts.append("-dPDFSETTINGS=/prepress")
            run(["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", *opts,
                 f"-sOutputFile={out.path(f'gs{i}.pdf')}", str(src)])


def _svg(i: int) -> str:
    import base64

    r = random.Random(i)
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="595" height="842">']
    parts.extend(f'<text x="40" y="{60 + line * 24}" font-family="DejaVu Sans" '
                 f'font-size="12">{sentence(r, 9)}</text>' for line in range(30))
    parts.extend(f'<circle cx="{r.randrange(595)}" cy="{r.randrange(842)}" '
                 f'r="{r.randrange(5, 60)}" fill="#{r.randrange(1 << 24):06x}" '
                 'fill-opacity="0.6"/>' for _ in range(8))
    if i % 2 == 0:
        png = base64.b64encode(save(photo(200, 150, i), "JPEG", quality=80)).decode()
        parts.append(f'<image x="300" y="500" width="200" height="150" '
                     f'href="data:image/jpeg;base64,{png}"/>')
    return "".join(parts) + "</svg>"


def cairo(out: Out, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            src = Path(tmp) / "in.svg"
            src.write_text(_svg(i))
            fmt = "pdf" if i % 4 else "png"
            run(["rsvg-convert", "-f", fmt, "-o", str(out.path(f"c{i}.{fmt}")), str(src)])


def img2pdf(out: Out, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            w, h = PHOTO_SIZES[i % 4]
            src = Path(tmp) / ("in.jpg" if i % 3 else "in.png")
            img = photo(w, h, 4000 + i)
            src.write_bytes(save(img, "JPEG", quality=85) if i % 3 else save(img, "PNG"))
            run(["img2pdf", str(src), "-o", str(out.path(f"i{i}.pdf"))])


def pillow_pdf(out: Out, n: int) -> None:
    for i in range(n):
        img = photo(*PHOTO_SIZES[i % 3], 5000 + i)
        mode = ("RGB", "L", "P")[i % 3]  # P pages are written with ASCIIHexDecode
        out.put(f"pl{i}.pdf", save(img.convert(mode), "PDF", resolution=96))


def _pikepdf_doc(i: int) -> bytes:
    import pikepdf

    r = random.Random(i)
    pdf = pikepdf.new()
    chains = (["FlateDecode"], ["ASCII85Decode", "FlateDecode"], ["ASCIIHexDecode"],
              ["LZWDecode"], ["RunLengthDecode"], ["ASCII85Decode"])
    chain = chains[i % len(chains)]
    from spywall.samples.pdf_jbig2 import encode

    for p in range(1 + i % 3):
        page = pdf.add_blank_page(page_size=(595, 842))
        text = "BT /F1 11 Tf 40 800 Td " + " ".join(
            f"({sentence(r, 9)}) Tj 0 -14 Td" for _ in range(50)) + " ET"
        page.Contents = pikepdf.Stream(pdf, encode(text.encode(), chain))
        page.Contents.Filter = pikepdf.Array([pikepdf.Name("/" + c) for c in chain])
        font = pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                  BaseFont=pikepdf.Name.Helvetica)
        res = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
        if p == 0:
            w, h = 240, 180
            raw = photo(w, h, i).tobytes()
            img = pikepdf.Stream(pdf, encode(raw, chain))
            img.Type, img.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
            img.Width, img.Height, img.BitsPerComponent = w, h, 8
            img.ColorSpace = pikepdf.Name.DeviceRGB
            img.Filter = pikepdf.Array([pikepdf.Name("/" + c) for c in chain])
            res.XObject = pikepdf.Dictionary(Im0=img)
        page.Resources = res
    buf = io.BytesIO()
    mode = pikepdf.ObjectStreamMode.generate if i % 2 else pikepdf.ObjectStreamMode.disable
    pdf.save(buf, object_stream_mode=mode, compress_streams=False)
    return buf.getvalue()


def pikepdf_docs(out: Out, n: int) -> None:
    for i in range(n):
        out.put(f"pk{i}.pdf", _pikepdf_doc(i))


def archives(out: Out, n: int, root: Path) -> None:
    pool = sorted(p for p in root.rglob("*") if p.is_file() and p.stat().st_size < 400_000
                  and p.parent.name != "zip")
    r = random.Random(7)
    for i in range(min(n, len(pool) // 4)):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for f in r.sample(pool, r.randrange(1, 5)):
                z.write(f, f.name)
        out.put(f"z{i}.zip", buf.getvalue())


# name -> (tool needed or None, files at scale 1, producer)
Producer = Callable[[Out, int], None]
PRODUCERS: dict[str, tuple[str | None, int, Producer]] = {
    "fonts": (None, 0, fonts),
    "icons": (None, 600, system_images),
    "text": (None, 200, text),
    "pillow": (None, 1000, pillow_photos),
    "cwebp": ("cwebp", 120, cwebp),
    "heif-enc": ("heif-enc", 60, heif),
    "dng": (None, 30, dng),
    "ghostscript": ("gs", 250, ghostscript),
    "cairo": ("rsvg-convert", 160, cairo),
    "img2pdf": ("img2pdf", 60, img2pdf),
    "pillow-pdf": (None, 45, pillow_pdf),
    "pikepdf": (None, 120, pikepdf_docs),
}
ARCHIVES = 80


def build(root: Path, scale: float = 1.0) -> dict[str, Any]:
    """Build (or reuse) the corpus under ``root``; returns its manifest."""
    manifest_path = root / "manifest.json"
    if manifest_path.exists():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if manifest.get("version") == VERSION and manifest.get("scale") == scale:
            return manifest
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    made: dict[str, int] = {}
    for name, (tool, count, producer) in PRODUCERS.items():
        if tool is not None and not have(tool):
            print(f"  {name}: skipped ({tool} not installed: make bench-deps)")
            continue
        out = Out(root, name)
        producer(out, max(1, int(count * scale)))
        made[name] = out.count
        print(f"  {name}: {out.count} files")
    out = Out(root, "zip")
    archives(out, int(ARCHIVES * scale), root)
    made["zip"] = out.count
    manifest = {"version": VERSION, "scale": scale, "producers": made}
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", default="build/corpus")
    ap.add_argument("--scale", type=float, default=1.0)
    a = ap.parse_args()
    print(json.dumps(build(Path(a.dir), a.scale), indent=1))


if __name__ == "__main__":
    main()
