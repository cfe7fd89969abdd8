"""HEIF / AVIF samples: the 2026 item-model checks (mask extent, overlay alpha depth, two
alpha planes through ``iden`` or ``grid``), built box by box from ISO/IEC 14496-12 and
23008-12; benign controls written by Pillow's AVIF encoder.

Item data is filler: the box and item structure the detectors judge, not coded images.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Sequence

import msgspec

from spywall.samples import Sample
from spywall.samples.containers import zip_of

ALPHA_URN = b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha\x00"


def box(btype: str, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + btype.encode("latin-1") + payload


def full(btype: str, payload: bytes, version: int = 0, flags: int = 0) -> bytes:
    return box(btype, struct.pack(">I", version << 24 | flags) + payload)


def ispe(width: int, height: int) -> bytes:
    return full("ispe", struct.pack(">II", width, height))


def pixi(*bits: int) -> bytes:
    return full("pixi", bytes((len(bits), *bits)))


ALPHA = full("auxC", ALPHA_URN)


def av1c(depth: int) -> bytes:
    flags = {8: 0, 10: 0x40, 12: 0x60}[depth]
    return box("av1C", bytes((0x81, 0, flags, 0)))


def hvcc(depth: int) -> bytes:
    return box("hvcC", bytes(17) + bytes((0xF8 | (depth - 8), 0xF8 | (depth - 8))) + bytes(4))


def mskc(bits: int) -> bytes:
    return full("mskC", bytes((bits,)))


class Item(msgspec.Struct, frozen=True):
    id: int
    type: str
    props: Sequence[bytes] = ()
    data: bytes = b"\x00" * 8


class Ref(msgspec.Struct, frozen=True):
    type: str
    src: int
    to: Sequence[int] = msgspec.field(default_factory=tuple)


def heif(items: Sequence[Item], refs: Sequence[Ref] = (), brand: str = "heic") -> bytes:
    """ftyp, meta (hdlr, pitm, iinf, iref, iprp, iloc) and mdat holding every item's data."""
    ftyp = box("ftyp", brand.encode() + bytes(4) + brand.encode() + b"mif1miaf")
    unique: list[bytes] = []
    for it in items:
        unique += [p for p in it.props if p not in unique]
    ipma = b"".join(struct.pack(">HB", it.id, len(it.props))
                    + bytes(unique.index(p) + 1 for p in it.props) for it in items)
    iprp = box("iprp", box("ipco", b"".join(unique))
               + full("ipma", struct.pack(">I", len(items)) + ipma))
    iinf = full("iinf", struct.pack(">H", len(items)) + b"".join(
        full("infe", struct.pack(">HH", it.id, 0) + it.type.encode() + b"\x00", version=2)
        for it in items))
    iref = full("iref", b"".join(
        box(r.type, struct.pack(f">HH{len(r.to)}H", r.src, len(r.to), *r.to)) for r in refs))
    head = full("hdlr", bytes(4) + b"pict" + bytes(13)) + full("pitm", struct.pack(">H", 1))

    def meta(base: int) -> bytes:
        locs, at = b"", base
        for it in items:
            locs += struct.pack(">HHHII", it.id, 0, 1, at, len(it.data))
            at += len(it.data)
        iloc = full("iloc", struct.pack(">HH", 0x4400, len(items)) + locs)
        return full("meta", head + iinf + (iref if refs else b"") + iprp + iloc)

    size = len(meta(0))
    data = b"".join(it.data for it in items)
    return ftyp + meta(len(ftyp) + size + 8) + box("mdat", data)


def _image(item_id: int, *props: bytes, itype: str = "hvc1") -> Item:
    return Item(item_id, itype, (ispe(64, 64), *props))


def _crafted() -> Iterator[Sample]:
    colour = _image(1, pixi(8, 8, 8))
    for name, size, exp in (("heif-mask-extent.heic", 1024, {"heif-mask-extent"}),
                            ("heif-benign-mask.heic", 256, set())):
        mask = Item(2, "mski", (ispe(16, 16), mskc(8)), bytes(size))
        yield Sample(name, heif([colour, mask], [Ref("mask", 1, (2,))]), frozenset(exp),
                     f"8-bit 16x16 mask item with {size} bytes of data")
    for name, bits, exp in (("avif-overlay-alpha-depth.avif", 8, {"heif-overlay-alpha-depth"}),
                            ("avif-benign-overlay.avif", 10, set())):
        items = [Item(1, "iovl", (ispe(64, 64),), bytes(20)),
                 _image(2, pixi(10, 10, 10), itype="av01"),
                 _image(3, pixi(10, 10, 10), itype="av01"),
                 _image(4, pixi(bits), ALPHA, itype="av01")]
        refs = [Ref("dimg", 1, (2, 3)), Ref("auxl", 4, (2,))]
        yield Sample(name, heif(items, refs, brand="avif"), frozenset(exp),
                     f"overlay input with 10-bit colour and a {bits}-bit alpha plane")
    alpha = pixi(8)
    iden = [colour, _image(2, alpha, ALPHA), Item(3, "iden", (ispe(64, 64),), b""),
            _image(4, alpha, ALPHA)]
    yield Sample("heif-two-alpha-iden.heic",
                 heif(iden, [Ref("auxl", 2, (1,)), Ref("dimg", 3, (1,)), Ref("auxl", 4, (3,))]),
                 frozenset({"heif-multiple-alpha"}), "a second alpha plane through an iden item")
    grid = [Item(1, "grid", (ispe(64, 64),), bytes(8)), _image(2, alpha, ALPHA),
            Item(3, "grid", (ispe(64, 64), alpha, ALPHA), bytes(8)),
            _image(5, pixi(8, 8, 8)), _image(6, pixi(8, 8, 8))]
    yield Sample("heif-two-alpha-grid.heic",
                 heif(grid, [Ref("dimg", 1, (5, 6)), Ref("auxl", 2, (1,)), Ref("auxl", 3, (1,))]),
                 frozenset({"heif-multiple-alpha"}), "a grid image with a second, grid alpha")
    yield Sample("heif-benign-one-alpha.heic",
                 heif(iden[:3], [Ref("auxl", 2, (1,)), Ref("dimg", 3, (1,))]), frozenset())


def _pillow() -> Iterator[Sample]:
    from PIL import Image, features

    if not features.check("avif"):
        return
    stage = zip_of({"payload.bin": bytes(range(256))})
    for mode, fill in (("RGB", (30, 60, 90)), ("RGBA", (30, 60, 90, 128))):
        buf = io.BytesIO()
        Image.new(mode, (48, 32), fill).save(buf, "AVIF")
        yield Sample(f"benign-pillow-{mode.lower()}.avif", buf.getvalue(), frozenset())
        if mode == "RGBA":
            yield Sample("avif-appended-zip.avif", buf.getvalue() + stage,
                         frozenset({"appended-archive"}), "archive after the last box")


def samples() -> Iterator[Sample]:
    yield from _crafted()
    yield from _pillow()
