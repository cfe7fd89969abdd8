"""TIFF / DNG samples: the CVE-2025-43300 and CVE-2025-21043 trigger structures, broken
tile geometry and a LANDFALL-style DNG with an appended archive, built by a small TIFF
writer from the TIFF 6.0 / DNG 1.6 layouts; benign controls written by Pillow and tifffile.

The lossless JPEG streams carry a valid marker sequence (SOI, DHT, SOF3, SOS, EOI) around
a few bytes of filler: the structure that the detectors judge, not decodable raw data.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Sequence
from typing import Any

from spywall.formats import tiff as t
from spywall.samples import Sample
from spywall.samples.containers import zip_of

BYTE, ASCII, SHORT, LONG, UNDEFINED, IFD = 1, 2, 3, 4, 7, 13
_CODES = {BYTE: "B", SHORT: "H", LONG: "I", IFD: "I"}
Value = tuple[int, Sequence[int] | bytes]
OPCODE_LIST2 = 0xC741
DNG_TAGS: dict[int, Value] = {t.DNG_VERSION: (BYTE, (1, 6, 0, 0)),
                              0xC614: (ASCII, b"spywall test camera\x00")}


class TiffWriter:
    """Appends blobs and IFDs to a classic TIFF; ``finish`` points the header at IFD0."""

    def __init__(self, little: bool = True) -> None:
        self.order = "<" if little else ">"
        self.buf = bytearray((b"II*\x00" if little else b"MM\x00*") + bytes(4))

    def blob(self, data: bytes) -> int:
        if len(self.buf) % 2:
            self.buf += b"\x00"
        at = len(self.buf)
        self.buf += data
        return at

    def ifd(self, entries: dict[int, Value], next_ifd: int = 0) -> int:
        fields = []
        for tag in sorted(entries):
            typ, vals = entries[tag]
            raw = vals if isinstance(vals, bytes) else struct.pack(
                f"{self.order}{len(vals)}{_CODES[typ]}", *vals)
            count = len(raw) // struct.calcsize(_CODES.get(typ, "B"))
            field = self.blob(raw).to_bytes(4, "little" if self.order == "<" else "big") \
                if len(raw) > 4 else raw.ljust(4, b"\x00")
            fields.append(struct.pack(f"{self.order}HHI", tag, typ, count) + field)
        body = struct.pack(f"{self.order}H", len(fields)) + b"".join(fields)
        return self.blob(body + struct.pack(f"{self.order}I", next_ifd))

    def finish(self, first_ifd: int) -> bytes:
        self.buf[4:8] = struct.pack(f"{self.order}I", first_ifd)
        return bytes(self.buf)


def ljpeg(width: int, height: int, components: int, precision: int = 16) -> bytes:
    """A lossless JPEG (SOF3) marker sequence declaring the given frame."""
    def seg(marker: int, body: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body

    comps = b"".join(bytes((i + 1, 0x11, 0)) for i in range(components))
    sof = seg(0xC3, struct.pack(">BHHB", precision, height, width, components) + comps)
    dht = seg(0xC4, b"\x00" + bytes((1,)) + bytes(15) + b"\x00")
    sos = seg(0xDA, bytes((components,)) + b"".join(bytes((i + 1, 0)) for i in
                                                    range(components)) + b"\x01\x00\x00")
    return b"\xff\xd8" + dht + sof + sos + bytes(16) + b"\xff\xd9"


def raw_ifd(w: TiffWriter, size: tuple[int, int], spp: int, streams: Sequence[bytes],
            tile: tuple[int, int] | None = None, rows: int | None = None,
            extra: dict[int, Value] | None = None) -> dict[int, Value]:
    """Entries of a raw (NewSubFileType 0) IFD whose strips or tiles are ``streams``."""
    offsets = [w.blob(s) for s in streams]
    counts = [len(s) for s in streams]
    entries: dict[int, Value] = {
        t.NEW_SUBFILE_TYPE: (LONG, (0,)), t.IMAGE_WIDTH: (LONG, (size[0],)),
        t.IMAGE_LENGTH: (LONG, (size[1],)), t.BITS_PER_SAMPLE: (SHORT, (16,) * spp),
        t.COMPRESSION: (SHORT, (t.LOSSLESS_JPEG,)), t.SAMPLES_PER_PIXEL: (SHORT, (spp,)),
        0x0106: (SHORT, (32803 if spp == 1 else 34892,)),
    }
    if tile:
        entries |= {t.TILE_WIDTH: (LONG, (tile[0],)), t.TILE_LENGTH: (LONG, (tile[1],)),
                    t.TILE_OFFSETS: (LONG, offsets), t.TILE_BYTE_COUNTS: (LONG, counts)}
    else:
        entries |= {t.STRIP_OFFSETS: (LONG, offsets), t.STRIP_BYTE_COUNTS: (LONG, counts),
                    t.ROWS_PER_STRIP: (LONG, (rows or size[1],))}
    return entries | (extra or {})


def dng(raw: dict[int, Value], w: TiffWriter, nested: bool = False) -> bytes:
    """IFD0 (an 8x8 RGB preview, DNGVersion) with the raw IFD as its SubIFD."""
    sub = w.ifd(raw)
    if nested:
        sub = w.ifd({t.NEW_SUBFILE_TYPE: (LONG, (1,)), t.SUB_IFDS: (LONG, (sub,))})
    preview = w.blob(bytes(8 * 8 * 3))
    ifd0 = w.ifd(DNG_TAGS | {
        t.NEW_SUBFILE_TYPE: (LONG, (1,)), t.IMAGE_WIDTH: (LONG, (8,)),
        t.IMAGE_LENGTH: (LONG, (8,)), t.BITS_PER_SAMPLE: (SHORT, (8, 8, 8)),
        t.COMPRESSION: (SHORT, (1,)), 0x0106: (SHORT, (2,)),
        t.STRIP_OFFSETS: (LONG, (preview,)), t.SAMPLES_PER_PIXEL: (SHORT, (3,)),
        t.ROWS_PER_STRIP: (LONG, (8,)), t.STRIP_BYTE_COUNTS: (LONG, (8 * 8 * 3,)),
        t.SUB_IFDS: (LONG, (sub,)),
    })
    return w.finish(ifd0)


def dng_with(streams: Sequence[bytes], spp: int = 2, little: bool = True,
             tile: tuple[int, int] | None = None, rows: int | None = None,
             size: tuple[int, int] = (16, 8), nested: bool = False,
             extra: dict[int, Value] | None = None) -> bytes:
    w = TiffWriter(little)
    return dng(raw_ifd(w, size, spp, streams, tile, rows, extra), w, nested)


def opcode_list(count: int, opcodes: int) -> bytes:
    """An opcode list (big-endian): count, then ``opcodes`` WarpRectilinear-sized stubs."""
    body = b"".join(struct.pack(">IIII", 1, 0x01030000, 0, 4) + bytes(4)
                    for _ in range(opcodes))
    return struct.pack(">I", count) + body


def plain_tiff(entries: dict[int, Value], little: bool = True) -> bytes:
    w = TiffWriter(little)
    return w.finish(w.ifd(entries))


def _crafted() -> Iterator[Sample]:
    exp = frozenset({"dng-lossless-jpeg-components"})
    nf1 = ljpeg(16, 8, 1)
    for little, tag in ((True, "le"), (False, "be")):
        yield Sample(f"cve-2025-43300-subifd-{tag}.dng", dng_with([nf1], little=little), exp,
                     "SubIFD with SamplesPerPixel 2, Compression 7, SOF3 Nf=1")
    yield Sample("cve-2025-43300-second-strip.dng",
                 dng_with([ljpeg(16, 4, 2), ljpeg(16, 4, 1)], rows=4), exp,
                 "the first strip is consistent, the second declares one component")
    yield Sample("cve-2025-43300-tile.dng",
                 dng_with([ljpeg(16, 8, 2), ljpeg(16, 8, 1)], tile=(16, 8), size=(16, 16)),
                 exp, "the trigger in the second tile")
    yield Sample("cve-2025-43300-nested-subifd.dng", dng_with([nf1], nested=True), exp,
                 "the raw IFD is a SubIFD of a SubIFD")
    yield Sample("dng-ljpeg-sample-mismatch.dng", dng_with([ljpeg(16, 8, 2)], spp=1), exp,
                 "CFA strip of 16x8 one-sample pixels whose stream declares twice as many")
    big = opcode_list(0x7FFFFFFF, 1)
    yield Sample("cve-2025-21043-opcode-count.dng",
                 dng_with([ljpeg(8, 8, 2)], spp=1, extra={OPCODE_LIST2: (UNDEFINED, big)}),
                 frozenset({"dng-opcode-count"}), "OpcodeList2 declaring 2^31-1 opcodes")
    tiled: dict[int, Value] = {
        t.IMAGE_WIDTH: (LONG, (32,)), t.IMAGE_LENGTH: (LONG, (32,)),
        t.BITS_PER_SAMPLE: (SHORT, (8,)), t.COMPRESSION: (SHORT, (1,)),
        0x0106: (SHORT, (1,)), t.TILE_WIDTH: (LONG, (0,)), t.TILE_LENGTH: (LONG, (16,)),
        t.TILE_OFFSETS: (LONG, (8, 8)), t.TILE_BYTE_COUNTS: (LONG, (0, 0)),
    }
    geo = frozenset({"tiff-tile-geometry"})
    yield Sample("tiff-zero-tile-width.tif", plain_tiff(tiled), geo, "TileWidth 0")
    yield Sample("tiff-tile-count-mismatch.tif", plain_tiff(tiled | {
        t.TILE_WIDTH: (LONG, (16,)), t.TILE_OFFSETS: (LONG, (8, 8, 8)),
        t.TILE_BYTE_COUNTS: (LONG, (0, 0))}, little=False), geo,
        "three tile offsets, two byte counts, four tiles needed")
    benign = dng_with([ljpeg(8, 8, 2), ljpeg(8, 8, 2)], spp=1, tile=(16, 8), size=(16, 16))
    stage = zip_of({"b.so": b"\x7fELF" + bytes(64), "l.so": b"\x7fELF" + bytes(64)})
    yield Sample("landfall-appended-zip.dng", benign + stage,
                 frozenset({"appended-archive"}), "LANDFALL: zip after the DNG's last tile")
    yield Sample("dng-zero-padding.dng", benign + bytes(4096), frozenset(),
                 "padding after the last tile is not an archive")
    yield Sample("dng-benign-cfa-tiles.dng", benign, frozenset(),
                 "Adobe-style CFA tiles: 16x8 one-sample tiles as 8x8 two-component streams")
    yield Sample("dng-benign-linear-raw.dng", dng_with([ljpeg(16, 8, 3)], spp=3), frozenset())
    yield Sample("dng-benign-two-sample.dng", dng_with([ljpeg(16, 8, 2)], little=False),
                 frozenset(), "SamplesPerPixel 2 with Nf = 2")
    yield Sample("dng-benign-opcodes.dng",
                 dng_with([ljpeg(8, 8, 2)], spp=1,
                          extra={OPCODE_LIST2: (UNDEFINED, opcode_list(2, 2))}), frozenset())


def _pillow() -> Iterator[Sample]:
    from PIL import Image

    rgb = Image.new("RGB", (40, 30), (10, 120, 200))
    for comp in ("raw", "tiff_lzw", "tiff_deflate", "packbits", "jpeg"):
        buf = io.BytesIO()
        rgb.save(buf, "TIFF", compression=comp)
        yield Sample(f"benign-pillow-{comp}.tif", buf.getvalue(), frozenset())
    extra: tuple[tuple[str, Image.Image, dict[str, object]], ...] = (
        ("group4", Image.new("1", (64, 64)), {"compression": "group4"}),
        ("16bit-be", Image.new("I;16B", (20, 20)), {}),
        ("bigtiff", rgb, {"big_tiff": True}),
    )
    for name, im, opts in extra:
        buf = io.BytesIO()
        im.save(buf, "TIFF", **opts)
        yield Sample(f"benign-pillow-{name}.tif", buf.getvalue(), frozenset())
    buf = io.BytesIO()
    rgb.save(buf, "TIFF", save_all=True, compression="tiff_lzw",
             append_images=[Image.new("L", (10, 70)), Image.new("RGBA", (5, 5))])
    yield Sample("benign-pillow-multipage.tif", buf.getvalue(), frozenset())


def _tifffile() -> Iterator[Sample]:
    import numpy as np
    import tifffile

    img = np.arange(70 * 50 * 3, dtype=np.uint16).reshape(70, 50, 3)
    variants = (("tiled-le", {"tile": (32, 16)}), ("tiled-be", {"tile": (16, 16),
                                                                "byteorder": ">"}),
                ("tiled-planar", {"tile": (16, 32), "planarconfig": "separate"}),
                ("tiled-bigtiff", {"tile": (32, 32), "bigtiff": True}),
                ("strips-deflate", {"rowsperstrip": 7, "compression": "zlib"}))
    for name, opts in variants:
        buf = io.BytesIO()
        tifffile.imwrite(buf, img, photometric="rgb", **opts)
        yield Sample(f"benign-tifffile-{name}.tif", buf.getvalue(), frozenset())


def _lossless(shape: tuple[int, ...], photometric: str, **opts: Any) -> bytes:
    """A DNG-tagged TIFF whose strips/tiles are real lossless JPEG (libjpeg-turbo SOF3,
    through tifffile and imagecodecs)."""
    import numpy as np
    import tifffile

    img = (np.arange(int(np.prod(shape)), dtype=np.uint16) % 4096).reshape(shape)
    buf = io.BytesIO()
    tifffile.imwrite(buf, img, photometric=photometric, compression="jpeg",
                     compressionargs={"lossless": True, "bitspersample": 12},
                     extratags=[(t.DNG_VERSION, BYTE, 4, (1, 6, 0, 0), True)],
                     **opts)
    return buf.getvalue()


def _set_short(data: bytes, tag: int, value: int) -> bytes:
    """``data`` with the inline SHORT value of ``tag`` in IFD0 replaced."""
    from spywall.formats.base import ParseContext
    from spywall.limits import Budget

    parsed = t.parse(data, ParseContext(Budget()))
    assert isinstance(parsed.structure, t.TiffFile)
    at = parsed.structure.ifds[0].entries[tag].offset
    return data[:at] + struct.pack("<H", value) + data[at + 2 :]


def _real_encoder() -> Iterator[Sample]:
    yield Sample("benign-ljpeg-cfa-tiles.dng", _lossless((48, 80), "minisblack", tile=(32, 32)),
                 frozenset(), "one sample per pixel, padded edge tiles")
    yield Sample("benign-ljpeg-rgb-strips.dng",
                 _lossless((48, 80, 3), "rgb", rowsperstrip=20), frozenset(),
                 "three samples per pixel, a short last strip (tifffile rounds to 32 rows)")
    yield Sample("benign-ljpeg-two-sample-tiles.dng",
                 _lossless((48, 80, 2), "minisblack", tile=(16, 32), extrasamples=[0]),
                 frozenset(), "SamplesPerPixel 2 with Nf = 2: the exploit's benign twin")
    one = _lossless((48, 80), "minisblack", tile=(32, 32))
    yield Sample("cve-2025-43300-real-stream.dng", _set_short(one, t.SAMPLES_PER_PIXEL, 2),
                 frozenset({"dng-lossless-jpeg-components"}),
                 "real one-component lossless JPEG tiles under SamplesPerPixel 2")


def samples() -> Iterator[Sample]:
    yield from _crafted()
    yield from _pillow()
    yield from _tifffile()
    yield from _real_encoder()
