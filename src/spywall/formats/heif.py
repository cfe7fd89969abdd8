"""HEIF / AVIF still images (ISO/IEC 14496-12 boxes, ISO/IEC 23008-12 items).

Walks the box tree (size 0 = to the end of the parent, size 1 = 64-bit largesize, 'uuid'
with its 16-byte extended type; ``MAX_DEPTH`` levels, every box charged to the budget) and
reads what the item model needs: ``ftyp`` brands; ``meta`` > ``iinf``/``infe`` (item ids
and types), ``iloc`` (versions 0-2, offset/length/base_offset/index sizes, extents),
``iref`` (typed references such as ``dimg``, ``auxl``, ``thmb``), ``iprp`` > ``ipco``
(``ispe`` size, ``pixi`` bits per channel, ``auxC`` auxiliary type, ``mskC`` mask bits,
``av1C``/``hvcC`` bit depth; other properties by type only) and ``ipma`` (item -> property
indices). No coded image data is read. ``logical_end`` is the end of the last well-formed
top-level box; a top-level header that cannot be a box ends the file there (as appended
data).
The format is ``avif`` when a brand says so, ``heif`` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import msgspec

from spywall.errors import FormatError, LimitExceeded, TruncatedError
from spywall.formats import tiff_embedded
from spywall.formats.base import FormatSpec, ParseContext, Parsed
from spywall.formats.magic import AVIF_BRANDS
from spywall.formats.magic import sniff_heif as sniff
from spywall.formats.reader import Reader, check_count

MAX_DEPTH = 12
MAX_ITEMS = 65_536
MAX_EXTENTS = 4096
ALPHA_TYPES = frozenset({"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha",
                         "urn:mpeg:hevc:2015:auxid:1"})


class Box(msgspec.Struct, frozen=True):
    type: str
    offset: int
    start: int  # payload start
    end: int


class Property(msgspec.Struct, frozen=True):
    """One ``ipco`` property: its type and the fields spywall reads (others empty)."""

    index: int  # 1-based, as ipma refers to it
    type: str
    offset: int
    width: int = 0
    height: int = 0
    bits: tuple[int, ...] = ()
    aux_type: str = ""


class Location(msgspec.Struct, frozen=True):
    item_id: int
    method: int
    base_offset: int
    # (offset, length) with base_offset added; a zero length in a file-offset extent
    # (construction method 0) means "to the end of the file" and is resolved to that.
    extents: tuple[tuple[int, int], ...]

    @property
    def total_length(self) -> int:
        return sum(length for _, length in self.extents)


class Reference(msgspec.Struct, frozen=True):
    type: str
    from_id: int
    to_ids: tuple[int, ...]


class HeifFile(msgspec.Struct, frozen=True):
    major_brand: str
    brands: tuple[str, ...]
    items: Mapping[int, str]  # item id -> item type
    locations: Mapping[int, Location]
    properties: tuple[Property, ...]
    associations: Mapping[int, tuple[int, ...]]
    references: tuple[Reference, ...]
    primary: int | None = None
    boxes: tuple[Box, ...] = ()

    def props(self, item_id: int) -> Iterator[Property]:
        for index in self.associations.get(item_id, ()):
            if 0 < index <= len(self.properties):
                yield self.properties[index - 1]

    def prop(self, item_id: int, ptype: str) -> Property | None:
        return next((p for p in self.props(item_id) if p.type == ptype), None)

    def refs(self, rtype: str) -> Iterator[Reference]:
        return (r for r in self.references if r.type == rtype)

    def is_alpha(self, item_id: int) -> bool:
        aux = self.prop(item_id, "auxC")
        return aux is not None and aux.aux_type in ALPHA_TYPES

    def depth(self, item_id: int) -> int | None:
        """Bits per sample: the largest ``pixi`` channel, else the codec configuration's
        (``av1C`` / ``hvcC`` luma) depth, else ``None``."""
        for ptype in ("pixi", "av1C", "hvcC"):
            prop = self.prop(item_id, ptype)
            if prop is not None and prop.bits:
                return max(prop.bits)
        return None


def boxes(r: Reader, ctx: ParseContext, depth: int) -> Iterator[Box]:
    """The boxes in ``r`` (to its end). Raises ``FormatError`` on a broken header."""
    if depth > MAX_DEPTH:
        raise LimitExceeded(f"boxes nested deeper than {MAX_DEPTH}")
    while r.remaining >= 8:
        at = r.pos
        size, btype = r.u32be(), r.read(4).decode("latin-1")
        if size == 1:
            size = r.u64be()
        elif size == 0:
            size = r.end - at
        if btype == "uuid":
            r.skip(16)
        if size < r.pos - at or at + size > r.end:
            r.seek(at)
            raise FormatError(f"the {btype!r} box at offset {at} says it is {size} bytes "
                              f"long, but only {r.end - at} remain in its parent")
        ctx.budget.charge_elements()
        yield Box(btype, at, r.pos, at + size)
        r.seek(at + size)


class _Meta:
    """Accumulates the item model while the ``meta`` box is walked."""

    def __init__(self, data: bytes, ctx: ParseContext) -> None:
        self.data, self.ctx = data, ctx
        self.items: dict[int, str] = {}
        self.locations: dict[int, Location] = {}
        self.properties: list[Property] = []
        self.associations: dict[int, tuple[int, ...]] = {}
        self.references: list[Reference] = []
        self.primary: int | None = None

    def reader(self, box: Box, full: bool = True) -> tuple[Reader, int, int]:
        r = Reader(self.data, box.start, box.end)
        if not full:
            return r, 0, 0
        vf = r.u32be()
        return r, vf >> 24, vf & 0xFFFFFF

    def walk(self, box: Box, depth: int) -> None:
        r, _, _ = self.reader(box)
        for child in boxes(r, self.ctx, depth + 1):
            handler = _META_CHILDREN.get(child.type)
            if handler is not None:
                handler(self, child, depth + 1)

    def pitm(self, box: Box, depth: int) -> None:
        r, version, _ = self.reader(box)
        self.primary = r.u16be() if version == 0 else r.u32be()

    def iinf(self, box: Box, depth: int) -> None:
        r, version, _ = self.reader(box)
        check_count(r.u16be() if version == 0 else r.u32be(), MAX_ITEMS, "item")
        for child in boxes(r, self.ctx, depth + 1):
            if child.type != "infe":
                continue
            cr, cv, _ = self.reader(child)
            if cv < 2:
                continue
            item_id = cr.u16be() if cv == 2 else cr.u32be()
            cr.skip(2)
            self.items.setdefault(item_id, cr.read(4).decode("latin-1"))
            check_count(len(self.items), MAX_ITEMS, "item")

    def iloc(self, box: Box, depth: int) -> None:
        r, version, _ = self.reader(box)
        if version > 2:
            raise FormatError(f"the item location (iloc) box has version {version}, not 0-2")
        sizes = r.u16be()
        off_size, len_size, base_size = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15
        index_size = sizes & 15 if version in (1, 2) else 0
        for s in (off_size, len_size, base_size, index_size):
            if s not in (0, 4, 8):
                raise FormatError(f"the item location (iloc) box has a field size of {s} bytes "
                                  "(0, 4 or 8 allowed)")
        count = check_count(r.u16be() if version < 2 else r.u32be(), MAX_ITEMS, "iloc item")
        self.ctx.budget.charge_elements(count)
        for _ in range(count):
            item_id = r.u16be() if version < 2 else r.u32be()
            method = r.u16be() & 15 if version in (1, 2) else 0
            r.skip(2)  # data_reference_index
            base = _uint(r, base_size)
            extents = []
            for _ in range(check_count(r.u16be(), MAX_EXTENTS, "iloc extent")):
                r.skip(index_size)
                offset, length = base + _uint(r, off_size), _uint(r, len_size)
                if length == 0 and method == 0:  # the extent runs to the end of the file
                    length = max(0, len(self.data) - offset)
                extents.append((offset, length))
            self.ctx.budget.charge_elements(len(extents))
            self.locations.setdefault(item_id, Location(item_id, method, base, tuple(extents)))

    def iref(self, box: Box, depth: int) -> None:
        r, version, _ = self.reader(box)
        for child in boxes(r, self.ctx, depth + 1):
            cr = Reader(self.data, child.start, child.end)
            src = cr.u16be() if version == 0 else cr.u32be()
            n = cr.u16be()
            to = tuple(cr.u16be() if version == 0 else cr.u32be() for _ in range(n))
            self.ctx.budget.charge_elements(n)
            self.references.append(Reference(child.type, src, to))

    def iprp(self, box: Box, depth: int) -> None:
        r, _, _ = self.reader(box, full=False)
        for child in boxes(r, self.ctx, depth + 1):
            if child.type == "ipco":
                cr, _, _ = self.reader(child, full=False)
                for prop in boxes(cr, self.ctx, depth + 2):
                    self.properties.append(self.property(prop))
            elif child.type == "ipma":
                self.ipma(child)

    def property(self, box: Box) -> Property:
        index = len(self.properties) + 1
        bare = Property(index, box.type, box.offset)
        known = _PROPERTIES.get(box.type)
        if known is None:
            return bare
        full, reader = known
        try:
            return reader(self.reader(box, full)[0], bare)
        except FormatError:
            return bare

    def ipma(self, box: Box) -> None:
        r, version, flags = self.reader(box)
        count = check_count(r.u32be(), MAX_ITEMS, "ipma entry")
        for _ in range(count):
            item_id = r.u16be() if version < 1 else r.u32be()
            n = r.u8()
            self.ctx.budget.charge_elements(n + 1)
            wide = flags & 1
            indices = tuple((r.u16be() & 0x7FFF) if wide else (r.u8() & 0x7F) for _ in range(n))
            self.associations.setdefault(item_id, indices)


def _uint(r: Reader, size: int) -> int:
    return int.from_bytes(r.read(size), "big") if size else 0


def _ispe(r: Reader, p: Property) -> Property:
    return Property(p.index, p.type, p.offset, width=r.u32be(), height=r.u32be())


def _pixi(r: Reader, p: Property) -> Property:
    return Property(p.index, p.type, p.offset, bits=tuple(r.read(r.u8())))


def _mskc(r: Reader, p: Property) -> Property:
    return Property(p.index, p.type, p.offset, bits=(r.u8(),))


def _auxc(r: Reader, p: Property) -> Property:
    raw = r.read(r.remaining)
    name = raw.split(b"\x00", 1)[0][:256].decode("utf-8", "replace")
    return Property(p.index, p.type, p.offset, aux_type=name)


def _av1c(r: Reader, p: Property) -> Property:
    """AV1CodecConfigurationRecord: byte 2 holds high_bitdepth (0x40) and twelve_bit (0x20)."""
    r.skip(2)
    flags = r.u8()
    depth = (12 if flags & 0x20 else 10) if flags & 0x40 else 8
    return Property(p.index, p.type, p.offset, bits=(depth,))


def _hvcc(r: Reader, p: Property) -> Property:
    """HEVCDecoderConfigurationRecord: bitDepthLumaMinus8 in the low 3 bits of byte 17."""
    r.skip(17)
    return Property(p.index, p.type, p.offset, bits=((r.u8() & 7) + 8,))


# Property type -> (is a FullBox, reader of its fields).
_PROPERTIES = {"ispe": (True, _ispe), "pixi": (True, _pixi), "mskC": (True, _mskc),
               "auxC": (True, _auxc), "av1C": (False, _av1c), "hvcC": (False, _hvcc)}
_META_CHILDREN = {"pitm": _Meta.pitm, "iinf": _Meta.iinf, "iloc": _Meta.iloc,
                  "iref": _Meta.iref, "iprp": _Meta.iprp}


def parse(data: bytes, ctx: ParseContext) -> Parsed:
    r = Reader(data)
    top: list[Box] = []
    warnings: list[str] = []
    incomplete: list[str] = []
    end: int | None = None
    try:
        top.extend(boxes(r, ctx, 0))  # keeps the boxes read before an error
    except FormatError as exc:
        end = r.pos
        if data[end + 4 : end + 8].isalnum():  # a box header cut short, not trailing data
            warnings.append(f"at the top level, {exc}")
    except LimitExceeded as exc:  # the boxes before the cap are examined
        end = r.pos
        incomplete.append(f"the top-level box at offset {r.pos}: {exc}")
    if not top or top[0].type != "ftyp":
        raise FormatError("no file type (ftyp) box at offset 0")
    ftyp = Reader(data, top[0].start, top[0].end)
    major = ftyp.read(4)
    ftyp.skip(4)
    brands = [ftyp.read(4) for _ in range(ftyp.remaining // 4)]
    meta = _Meta(data, ctx)
    for box in top:
        if box.type == "meta":
            try:
                meta.walk(box, 0)
            except TruncatedError as exc:
                warnings.append(f"the metadata (meta) box at offset {box.start} is cut "
                                f"short: {exc}")
            except FormatError as exc:
                warnings.append(f"the metadata (meta) box at offset {box.start}: {exc}")
            except LimitExceeded as exc:  # what the meta box gave before the cap is kept
                incomplete.append(f"the metadata (meta) box at offset {box.start}: {exc}")
            break
    if end is None:
        end = top[-1].end
    heif = HeifFile(major.decode("latin-1"), tuple(b.decode("latin-1") for b in brands),
                    meta.items, meta.locations, tuple(meta.properties), meta.associations,
                    tuple(meta.references), meta.primary, tuple(top))
    fmt = "avif" if major in AVIF_BRANDS or AVIF_BRANDS & set(brands) else "heif"
    exif = tiff_embedded.heif_exif_items(data, heif.items, heif.locations)
    return Parsed(format=fmt, structure=heif, logical_end=end, children=exif,
                  warnings=warnings, incomplete=incomplete)


SPEC = FormatSpec(name="heif", description="HEIF / HEIC / AVIF still image",
                  sniff=sniff, parse=parse)
