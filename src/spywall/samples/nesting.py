"""The same payloads in every container spywall opens, nested in every order.

``WRAPPERS`` are the containers (a zip member, stored or deflated; a PDF attachment; data
appended after a PNG, a JPEG or a GIF, which a decoder reading from that offset finds:
an image appended to an image, or an archive); ``PAYLOADS`` pair a crafted sample with
its clean twin (by sample name), and ``SPECIFIC`` are the containers only some payloads
fit (a font in WOFF/WOFF2, a DNG as a JPEG's Exif). ``tests/test_container_matrix.py``
runs the whole table; the samples here are a few of its cells, and ``unopenable`` builds
the containers spywall cannot open (an encrypted zip member, a stream behind an unknown
PDF filter), which it must report as such.
"""

from __future__ import annotations

import importlib
import io
import struct
import zipfile
from collections.abc import Callable, Iterator

from spywall.samples import Sample
from spywall.samples.containers import jpeg, png, zip_of

Wrap = Callable[[bytes, str], bytes]


def pdf_attachment(data: bytes, name: str) -> bytes:
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(72, 72))
    pdf.attachments[name] = pikepdf.AttachedFileSpec(pdf, data, filename=name)
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def _gif() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("P", (8, 8), 1).save(buf, "GIF")
    return buf.getvalue()


WRAPPERS: dict[str, Wrap] = {
    "zip": lambda d, n: zip_of({f"inner/{n}": d}),
    "zip-stored": lambda d, n: zip_of({n: d}, zipfile.ZIP_STORED),
    "pdf": pdf_attachment,
    "after-png": lambda d, n: png() + d,
    "after-jpeg": lambda d, n: jpeg() + d,
    "after-gif": lambda d, n: _gif() + d,
}
# (crafted sample, clean twin, the detector the crafted one triggers)
PAYLOADS: tuple[tuple[str, str, str], ...] = (
    ("adjust-glyph-short-loca.ttf", "benign-hinted.ttf", "truetype-adjust"),
    ("adjust-jump-into-push.ttf", "benign-jump-over-push.ttf", "truetype-adjust"),
    ("blastpass-plain.webp", "benign-twin-plain.webp", "webp-huffman-overflow"),
    ("forcedentry-type4.jbig2", "benign-small-dict.jbig2", "jbig2-symbol-overflow"),
    ("cve-2025-43300-subifd-le.dng", "dng-benign-two-sample.dng",
     "dng-lossless-jpeg-components"),
    ("cve-2019-11932-double-free.gif", "gif-crafted-benign.gif", "gif-zero-area-frame"),
    ("heif-mask-extent.heic", "heif-benign-mask.heic", "heif-mask-extent"),
)


def _woff(d: bytes, n: str) -> bytes:
    from spywall.samples.woff import woff
    return woff(d)


def _woff2(d: bytes, n: str) -> bytes:
    from spywall.samples.woff import woff2
    return woff2(d)


def _exif(d: bytes, n: str) -> bytes:
    from spywall.samples.tiff_embedded import jpeg_with_exif
    return jpeg_with_exif(d)


# containers that only fit some payloads: name -> (wrap, suffix of the payloads it fits)
SPECIFIC: dict[str, tuple[Wrap, str]] = {
    "woff": (_woff, ".ttf"), "woff2": (_woff2, ".ttf"), "jpeg-exif": (_exif, ".dng"),
}


def wrappers_for(name: str) -> dict[str, Wrap]:
    extra = {k: w for k, (w, suffix) in SPECIFIC.items() if name.endswith(suffix)}
    return WRAPPERS | extra


def encrypted_zip(data: bytes, name: str) -> bytes:
    """A zip whose one member is flagged encrypted (general purpose bit 0) in its local
    header and its central directory entry; the bytes themselves are left as they are."""
    raw = bytearray(zip_of({name: data}, zipfile.ZIP_STORED))
    local = raw.find(b"PK\x03\x04")
    central = raw.find(b"PK\x01\x02")
    for at in (local + 6, central + 8):
        (flags,) = struct.unpack_from("<H", raw, at)
        struct.pack_into("<H", raw, at, flags | 1)
    return bytes(raw)


def unknown_filter_pdf(data: bytes, filters: tuple[str, ...] = ("/SpywallDecode",)) -> bytes:
    """A PDF whose one embedded file is behind ``filters`` (by default one filter no
    standard defines; ``data`` is stored as it is, already encoded by the others)."""
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(72, 72))
    stream = pdf.make_indirect(pikepdf.Stream(pdf, data))
    stream.Type = pikepdf.Name.EmbeddedFile
    stream.Filter = pikepdf.Array([pikepdf.Name(f) for f in filters])
    pdf.Root.Names = pikepdf.Dictionary(EmbeddedFiles=pikepdf.Dictionary(Names=[
        "payload.bin", pikepdf.Dictionary(Type=pikepdf.Name.Filespec, F="payload.bin",
                                          EF=pikepdf.Dictionary(F=stream))]))
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def named(module: str, *names: str) -> dict[str, bytes]:
    """Data of the samples ``names`` of one sample module (``spywall.samples.<module>``)."""
    mod = importlib.import_module(f"spywall.samples.{module}")
    return {s.name: s.data for s in mod.samples() if s.name in names}


def samples() -> Iterator[Sample]:
    webp = named("webp", "blastpass-plain.webp", "benign-twin-plain.webp")
    yield Sample("blastpass-after-png.png", png() + webp["blastpass-plain.webp"],
                 frozenset({"webp-huffman-overflow"}),
                 "a crafted WebP appended after a PNG's IEND (an image after an image)")
    yield Sample("benign-webp-after-png.png", png() + webp["benign-twin-plain.webp"],
                 frozenset(), "its clean twin after the same PNG")
    fonts = named("truetype", "adjust-glyph-short-loca.ttf", "benign-hinted.ttf")
    for tag, font, exp in (("adjust", "adjust-glyph-short-loca.ttf", {"truetype-adjust"}),
                           ("benign", "benign-hinted.ttf", set())):
        inner = zip_of({"fonts/a.woff2": _woff2(fonts[font], "")})
        yield Sample(f"{tag}-woff2-in-zip-in-pdf.pdf", pdf_attachment(inner, "fonts.zip"),
                     frozenset(exp), "a font in WOFF2 in a zip attached to a PDF")
