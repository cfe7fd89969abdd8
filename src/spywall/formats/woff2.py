"""WOFF2 web fonts: the Brotli stream unpacked, glyf/loca/hmtx rebuilt, the sfnt scanned.

WOFF File Format 2.0 (W3C Recommendation): a 48-byte header; a table directory whose
entries are a flags byte (bits 0-5 a known-tag index 0..62, or 63 for an explicit tag;
bits 6-7 the transform version), a UIntBase128 ``origLength`` and, for a transformed
table, a UIntBase128 ``transformLength``; for flavor ``ttcf`` a collection directory
(255UInt16 counts and table indices per font); then one Brotli stream holding every
table back to back, then optional metadata and private blocks. ``glyf`` and ``loca``
are transformed by version 0 (version 3 is the null transform); every other table by
any version but 0, of which only ``hmtx`` version 1 is defined.

The transformed ``glyf`` is seven streams (contour counts, point counts, flags, glyph
data, composite records, bounding boxes, instructions) that are rebuilt into ordinary
TrueType glyphs and a ``loca`` as the specification's reconstruction describes;
instructions (where the ADJUST detector looks) are copied from the instruction stream.
The one child is the rebuilt font (named ``sfnt``), a ``ttcf`` collection for a
collection flavor. Bounds: a table count cap, the Brotli output capped at the declared
total and the stream cap before it is allocated, every stream read checked, glyph and
point counts capped by their 16-bit fields, the rebuilt font under the stream cap.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import msgspec

from spywall.errors import FormatError, LimitExceeded, TruncatedError, UnsupportedError
from spywall.formats.base import Child, ParseContext, Parsed
from spywall.formats.reader import Reader

SIGNATURE = b"wOF2"
HEADER = struct.Struct(">4sIIHHIIHHIIIII")  # 48 bytes
MAX_TABLES = 512
MAX_FONTS = 256
TTCF = 0x74746366
FLAVORS = frozenset({0x00010000, 0x4F54544F, 0x74727565, TTCF})  # 1.0, OTTO, true, ttcf
KNOWN_TAGS: tuple[bytes, ...] = (  # index 0..62 of the flags byte, in the spec's order
    b"cmap", b"head", b"hhea", b"hmtx", b"maxp", b"name", b"OS/2",
    b"post", b"cvt ", b"fpgm", b"glyf", b"loca", b"prep", b"CFF ", b"VORG", b"EBDT", b"EBLC",
    b"gasp", b"hdmx", b"kern", b"LTSH", b"PCLT", b"VDMX", b"vhea", b"vmtx", b"BASE", b"GDEF",
    b"GPOS", b"GSUB", b"EBSC", b"JSTF", b"MATH", b"CBDT", b"CBLC", b"COLR", b"CPAL", b"SVG ",
    b"sbix", b"acnt", b"avar", b"bdat", b"bloc", b"bsln", b"cvar", b"fdsc", b"feat", b"fmtx",
    b"fvar", b"gvar", b"hsty", b"just", b"lcar", b"mort", b"morx", b"opbd", b"prop", b"trak",
    b"Zapf", b"Silf", b"Glat", b"Gloc", b"Feat", b"Sill",
)
GLYF, LOCA, HMTX, HEAD, HHEA = b"glyf", b"loca", b"hmtx", b"head", b"hhea"
SFNT_HEADER = struct.Struct(">IHHHH")
SFNT_RECORD = struct.Struct(">4sIII")
# Bytes of glyph-stream data per triplet flag (flag & 0x7F), from the triplet table.
_TRIPLET_BYTES = bytes([1] * 84 + [2] * 36 + [3] * 4 + [4] * 4)


class Woff2Table(msgspec.Struct, frozen=True):
    tag: bytes
    version: int
    orig_length: int
    transform_length: int | None
    offset: int  # in the decompressed stream

    @property
    def stored_length(self) -> int:
        return self.orig_length if self.transform_length is None else self.transform_length


class Woff2Font(msgspec.Struct, frozen=True):
    flavor: int
    tables: tuple[Woff2Table, ...]
    fonts: tuple[tuple[int, tuple[int, ...]], ...]  # (flavor, table indices) per font
    compressed_offset: int
    compressed_length: int

    @property
    def stream_length(self) -> int:
        return sum(t.stored_length for t in self.tables)


def sniff(head: bytes) -> bool:
    return head[:4] == SIGNATURE


def read_base128(r: Reader) -> int:
    """A UIntBase128: 1..5 bytes, 7 bits each, no leading zero byte, at most 2^32-1."""
    value = 0
    for i in range(5):
        byte = r.u8()
        if i == 0 and byte == 0x80:
            raise FormatError(f"a number (UIntBase128) at offset {r.pos - 1} of the table "
                              "directory starts with a leading zero byte")
        if value & 0xFE000000:
            raise FormatError(f"a number (UIntBase128) at offset {r.pos - 1} of the table "
                              "directory is over 32 bits")
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value
    raise FormatError(f"a number (UIntBase128) ending at offset {r.pos} of the table "
                      "directory is longer than 5 bytes")


def read_255(r: Reader) -> int:
    """A 255UInt16: one byte, or a code (253 word, 254 and 255 one more byte) and more."""
    code = r.u8()
    if code == 253:
        return r.u16be()
    if code == 255:
        return 253 + r.u8()
    if code == 254:
        return 506 + r.u8()
    return code


def _directory(r: Reader, count: int) -> tuple[Woff2Table, ...]:
    tables: list[Woff2Table] = []
    offset = 0
    for _ in range(count):
        flags = r.u8()
        index, version = flags & 0x3F, flags >> 6
        tag = KNOWN_TAGS[index] if index < 63 else r.read(4)
        orig = read_base128(r)
        transformed = version != 3 if tag in (GLYF, LOCA) else version != 0
        tlen = read_base128(r) if transformed else None
        name = tag.decode("latin-1")
        if transformed and not ((tag in (GLYF, LOCA) and version == 0)
                                or (tag == HMTX and version == 1)):
            raise UnsupportedError(f"the table directory gives table {name!r} transform "
                                   f"version {version}, which WOFF2 does not define")
        if tag == LOCA and tlen not in (None, 0):
            raise FormatError(f"the table directory gives the transformed 'loca' table a "
                              f"length of {tlen} (WOFF2 requires 0)")
        table = Woff2Table(tag, version, orig, tlen, offset)
        offset += table.stored_length
        tables.append(table)
    return tuple(tables)


def _collection(r: Reader, tables: tuple[Woff2Table, ...]) -> tuple[
        tuple[int, tuple[int, ...]], ...]:
    version = r.u32be()
    if version not in (0x00010000, 0x00020000):
        raise FormatError(f"the collection directory has version {version:#x}, not 1 or 2")
    count = read_255(r)
    if count == 0 or count > MAX_FONTS:
        raise FormatError(f"the collection directory declares {count} fonts "
                          f"(1..{MAX_FONTS} accepted)")
    fonts = []
    for _ in range(count):
        n = read_255(r)
        if n == 0 or n > len(tables):
            raise FormatError(f"a font of the collection directory lists {n} tables, "
                              f"the table directory holds {len(tables)}")
        flavor = r.u32be()
        indices = tuple(read_255(r) for _ in range(n))
        if max(indices) >= len(tables):
            raise FormatError(f"a font of the collection directory names table "
                              f"{max(indices)}, the table directory holds {len(tables)}")
        fonts.append((flavor, indices))
    return tuple(fonts)


def _brotli(raw: bytes, size: int, ctx: ParseContext) -> bytes:
    """Decompress ``raw`` to exactly ``size`` bytes without ever producing much more."""
    import brotli  # type: ignore[import-untyped]

    cap = ctx.budget.stream_cap()
    if size > cap:
        raise LimitExceeded(f"font data of {size} bytes over the cap of {cap}")
    d = brotli.Decompressor()
    parts: list[bytes] = []
    got = 0
    try:
        chunk = d.process(raw, output_buffer_limit=size - got + 1)
        while True:
            got += len(chunk)
            parts.append(chunk)
            if got > size:
                raise FormatError(f"the compressed (Brotli) font data unpacks to more than "
                                  f"the {size} bytes of its tables")
            if d.is_finished():
                break
            if d.can_accept_more_data() or not chunk:
                raise TruncatedError(f"the compressed (Brotli) font data ends after {got} of "
                                     f"the {size} bytes of its tables")
            ctx.budget.check_time()
            chunk = d.process(b"", output_buffer_limit=size - got + 1)
    except brotli.error as exc:
        raise FormatError(f"the compressed (Brotli) font data is damaged: {exc}") from exc
    ctx.budget.charge_decompressed(got, len(raw))
    if got != size:
        raise FormatError(f"the compressed (Brotli) font data unpacks to {got} bytes, the "
                          f"table directory says {size}")
    return b"".join(parts)


class _Glyf(msgspec.Struct):
    """A rebuilt glyf/loca pair and what hmtx needs from it."""

    glyf: bytes
    loca: bytes
    long_loca: bool
    x_mins: list[int]


def _s16(v: int) -> int:
    return ((v + 0x8000) & 0xFFFF) - 0x8000


def _triplet(flag: int, d: bytes, p: int) -> tuple[int, int]:
    """(dx, dy) of one point from its triplet flag (low 7 bits) and data at ``d[p:]``."""
    if flag < 10:  # y only: its sign is bit 0, as x's is elsewhere
        dy = ((flag & 14) << 7) + d[p]
        return 0, (dy if flag & 1 else -dy)
    if flag < 20:
        dx, dy = (((flag - 10) & 14) << 7) + d[p], 0
    elif flag < 84:
        b, v = flag - 20, d[p]
        dx, dy = 1 + (b & 0x30) + (v >> 4), 1 + ((b & 0x0C) << 2) + (v & 0x0F)
    elif flag < 120:
        b = flag - 84
        dx, dy = 1 + ((b // 12) << 8) + d[p], 1 + (((b % 12) >> 2) << 8) + d[p + 1]
    elif flag < 124:
        dx, dy = (d[p] << 4) + (d[p + 1] >> 4), ((d[p + 1] & 0x0F) << 8) + d[p + 2]
    else:
        dx, dy = (d[p] << 8) + d[p + 1], (d[p + 2] << 8) + d[p + 3]
    return (dx if flag & 1 else -dx), (dy if flag & 2 else -dy)


def _coord(v: int, short: int, same: int, out: bytearray) -> int:
    """Append one TrueType coordinate delta; return its flag bits."""
    if v == 0:
        return same
    if -255 <= v <= 255:
        out.append(abs(v))
        return short | (same if v > 0 else 0)
    out += (v & 0xFFFF).to_bytes(2, "big")
    return 0


def _simple(n: int, s: list[Reader], has_bbox: bool, overlap: bool) -> tuple[bytes, int]:
    """One simple glyph in TrueType form, and its xMin."""
    npts, flag_s, glyph_s, bbox_s, instr_s = s[1], s[2], s[3], s[5], s[6]
    ends, total = [], 0
    for _ in range(n):
        k = read_255(npts)
        if k == 0:
            raise FormatError("the transformed 'glyf' table has a contour of no points")
        total += k
        if total > 0xFFFF:
            raise FormatError(f"the transformed 'glyf' table has a glyph of more than "
                              f"{0xFFFF} points")
        ends.append(total - 1)
    flags = flag_s.read(total)
    data = glyph_s.read(sum(_TRIPLET_BYTES[f & 0x7F] for f in flags))
    out_flags, xs, ys = bytearray(), bytearray(), bytearray()
    x = y = p = 0
    x_min = x_max = y_min = y_max = 0
    for i, f in enumerate(flags):
        dx, dy = _triplet(f & 0x7F, data, p)
        p += _TRIPLET_BYTES[f & 0x7F]
        x, y = x + dx, y + dy
        if i == 0:
            x_min = x_max = x
            y_min = y_max = y
        else:
            x_min, x_max, y_min, y_max = min(x_min, x), max(x_max, x), min(y_min, y), max(
                y_max, y)
        fl = (0 if f & 0x80 else 1) | _coord(dx, 0x02, 0x10, xs) | _coord(dy, 0x04, 0x20, ys)
        out_flags.append(fl | (0x40 if overlap and i == 0 else 0))
    code = instr_s.read(read_255(glyph_s))
    if has_bbox:
        box = bbox_s.read(8)
        x_min = struct.unpack_from(">h", box)[0]
    else:
        box = struct.pack(">4H", *(v & 0xFFFF for v in (x_min, y_min, x_max, y_max)))
    head = struct.pack(">h", n) + box + struct.pack(f">{n}H", *ends)
    glyph = b"".join((head, len(code).to_bytes(2, "big"), code, _repeat(out_flags), xs, ys))
    return glyph, _s16(x_min)


def _repeat(flags: bytearray) -> bytes:
    """Flags with runs folded by the REPEAT bit (0x08)."""
    out, i = bytearray(), 0
    while i < len(flags):
        j = i + 1
        while j < len(flags) and flags[j] == flags[i] and j - i < 256:
            j += 1
        if j - i > 1:
            out += bytes((flags[i] | 0x08, j - i - 1))
        else:
            out.append(flags[i])
        i = j
    return bytes(out)


def _composite(s: list[Reader]) -> bytes:
    comp_s, glyph_s, bbox_s, instr_s = s[4], s[3], s[5], s[6]
    start, have_code = comp_s.pos, False
    while True:
        flags = comp_s.u16be()
        comp_s.skip(2 + (4 if flags & 0x01 else 2))
        comp_s.skip(8 if flags & 0x80 else 4 if flags & 0x40 else 2 if flags & 0x08 else 0)
        have_code = have_code or bool(flags & 0x100)
        if not flags & 0x20:
            break
    parts = [b"\xff\xff", bbox_s.read(8), comp_s.data[start : comp_s.pos]]
    if have_code:
        code = instr_s.read(read_255(glyph_s))
        parts += [len(code).to_bytes(2, "big"), code]
    return b"".join(parts)


def rebuild_glyf(data: bytes, ctx: ParseContext) -> _Glyf:
    """glyf and loca from a version-0 transformed glyf table."""
    r = Reader(data)
    r.skip(2)  # reserved
    option_flags, num_glyphs, index_format = r.u16be(), r.u16be(), r.u16be()
    if index_format > 1:
        raise FormatError(f"the transformed 'glyf' table has indexFormat {index_format} "
                          "(0 or 1)")
    sizes = [r.u32be() for _ in range(7)]
    s = [r.sub(n) for n in sizes]
    overlap = r.read((num_glyphs + 7) >> 3) if option_flags & 1 else b""
    ctx.budget.charge_elements(num_glyphs)
    bitmap = s[5].read(((num_glyphs + 31) >> 5) << 2)
    glyphs: list[bytes] = []
    offsets, x_mins, pos = [0], [], 0
    for i in range(num_glyphs):
        n = s[0].u16be()
        has_bbox = bool(bitmap[i >> 3] & (0x80 >> (i & 7)))
        x_min = 0
        if n == 0:
            if has_bbox:
                raise FormatError(f"the transformed 'glyf' table gives empty glyph {i} a "
                                  "bounding box")
            glyph = b""
        elif n == 0xFFFF:
            if not has_bbox:
                raise FormatError(f"the transformed 'glyf' table gives composite glyph {i} "
                                  "without its bounding box")
            glyph = _composite(s)
            x_min = struct.unpack_from(">h", glyph, 2)[0]
        elif n > 0x7FFF:
            raise FormatError(f"the transformed 'glyf' table gives glyph {i} "
                              f"{n - 0x10000} contours")
        else:
            ov = bool(overlap) and bool(overlap[i >> 3] & (0x80 >> (i & 7)))
            glyph, x_min = _simple(n, s, has_bbox, ov)
        glyph += b"\x00" * (-len(glyph) % 4)
        glyphs.append(glyph)
        pos += len(glyph)
        offsets.append(pos)
        x_mins.append(x_min)
        if pos > ctx.budget.stream_cap():
            raise LimitExceeded(f"rebuilt glyf over the cap of {ctx.budget.stream_cap()} bytes")
        if i & 0xFF == 0xFF:
            ctx.budget.check_time()
    long_loca = index_format == 1 or pos > 0x1FFFE
    loca = (struct.pack(f">{len(offsets)}I", *offsets) if long_loca
            else struct.pack(f">{len(offsets)}H", *(o >> 1 for o in offsets)))
    return _Glyf(b"".join(glyphs), loca, long_loca, x_mins)


def rebuild_hmtx(data: bytes, hhea: bytes, glyf: _Glyf) -> bytes:
    """hmtx from its version-1 transform: left side bearings left out are glyph xMins."""
    r = Reader(data)
    flags = r.u8()
    if flags & 0xFC or not flags & 3:
        raise FormatError(f"the transformed 'hmtx' table has flags {flags:#x} (reserved "
                          "bits set, or none)")
    if len(hhea) < 36:
        raise TruncatedError("the 'hhea' table is shorter than its 36 bytes")
    count = len(glyf.x_mins)
    metrics = min(struct.unpack_from(">H", hhea, 34)[0], count)
    if metrics == 0:
        raise FormatError("the transformed 'hmtx' table goes with an 'hhea' of no metrics "
                          "(numberOfHMetrics 0)")
    advances = r.read(2 * metrics)
    lsbs = r.read(2 * metrics) if not flags & 1 else struct.pack(
        f">{metrics}h", *glyf.x_mins[:metrics])
    rest = r.read(2 * (count - metrics)) if not flags & 2 else struct.pack(
        f">{count - metrics}h", *glyf.x_mins[metrics:])
    return b"".join(advances[i : i + 2] + lsbs[i : i + 2]
                    for i in range(0, 2 * metrics, 2)) + rest


def _tables(font: Woff2Font, stream: bytes, ctx: ParseContext) -> list[bytes]:
    """Every table of the directory, untransformed."""
    out = [stream[t.offset : t.offset + t.stored_length] for t in font.tables]
    loca_free = [i for i, t in enumerate(font.tables) if t.tag == LOCA and t.transform_length == 0]
    rebuilt: dict[int, _Glyf] = {}
    for i, t in enumerate(font.tables):
        if t.tag != GLYF or t.transform_length is None:
            continue
        j = next((j for j in loca_free if j > i), None)
        if j is None:
            raise FormatError("transformed glyf without a transformed loca after it")
        loca_free.remove(j)
        g = rebuild_glyf(out[i], ctx)
        out[i], out[j], rebuilt[i] = g.glyf, g.loca, g
    if loca_free:
        raise FormatError("transformed loca without its transformed glyf")
    for i, t in enumerate(font.tables):
        if t.tag == HMTX and t.transform_length is not None:
            tags = [x.tag for x in font.tables]
            if len(rebuilt) != 1 or tags.count(HHEA) != 1:
                raise UnsupportedError("transformed hmtx outside a font of one transformed glyf")
            out[i] = rebuild_hmtx(out[i], out[tags.index(HHEA)], next(iter(rebuilt.values())))
    if any(g.long_loca for g in rebuilt.values()) and HEAD in [x.tag for x in font.tables]:
        h = [x.tag for x in font.tables].index(HEAD)
        if len(out[h]) >= 54:  # indexToLocFormat follows what the rebuilt loca is
            out[h] = out[h][:50] + b"\x00\x01" + out[h][52:]
    return out


def _checksum(table: bytes) -> int:
    import numpy as np

    padded = table + b"\x00" * (-len(table) % 4)
    return int(np.frombuffer(padded, dtype=">u4").sum(dtype=np.uint64)) & 0xFFFFFFFF


def build_sfnt(fonts: tuple[tuple[int, tuple[int, ...]], ...], tags: list[bytes],
               tables: list[bytes], collection: bool, cap: int) -> bytes:
    """An sfnt (or a ttcf collection of them) whose fonts share the given tables."""
    head: list[bytes] = []
    pos = 12 + 4 * len(fonts) if collection else 0
    directories: list[tuple[int, list[int]]] = []
    font_offsets: list[int] = []
    for flavor, indices in fonts:
        n = len(indices)
        font_offsets.append(pos)
        pos += SFNT_HEADER.size + n * SFNT_RECORD.size
        directories.append((flavor, sorted(indices, key=lambda k: tags[k])))
    offsets: list[int] = []
    for t in tables:
        offsets.append(pos)
        pos += len(t) + (-len(t) % 4)
        if pos > cap:
            raise LimitExceeded(f"unpacked font over the cap of {cap} bytes")
    if collection:
        head.append(struct.pack(f">4sII{len(fonts)}I", b"ttcf", 0x00010000, len(fonts),
                                *font_offsets))
    for flavor, order in directories:
        n = len(order)
        selector = max(0, n.bit_length() - 1)
        search = (1 << selector) * 16
        head.append(SFNT_HEADER.pack(flavor, n, search, selector, n * 16 - search))
        head += [SFNT_RECORD.pack(tags[k], _checksum(tables[k]), offsets[k], len(tables[k]))
                 for k in order]
    body = [t + b"\x00" * (-len(t) % 4) for t in tables]
    return b"".join(head + body)


def blocks_end(data: bytes, end: int, length: int,
               blocks: tuple[tuple[int, int, str], ...]) -> tuple[int, list[str]]:
    """The logical end of a WOFF or WOFF2 (font data ``end``, metadata and private blocks,
    4-byte padding if present) and a warning if the header ``length`` disagrees."""
    for off, size, what in blocks:
        if size:
            if off + size > len(data):
                raise FormatError(f"the header places the {what} block at offset {off} "
                                  f"({size} bytes), outside the {len(data)} bytes of the file")
            end = max(end, off + size)
    end += -end % 4 if end + (-end % 4) <= len(data) else 0
    warnings = []
    if length not in (len(data), end):
        warnings.append(f"the header (at offset 0) says the file is {length} bytes long, but "
                        f"it holds {len(data)} and its last block ends at {end}")
    return end, warnings


def parse(data: bytes, ctx: ParseContext) -> Parsed:
    r = Reader(data)
    r.expect(HEADER.size, "the file header")
    (_, flavor, length, count, _, _, comp_len, _, _, meta_off, meta_len, _, priv_off,
     priv_len) = HEADER.unpack_from(data, 0)
    if flavor not in FLAVORS:
        raise UnsupportedError(f"the header (at offset 4) gives flavor {flavor:#010x}: "
                               "not a font (sfnt) flavor")
    if count == 0 or count > MAX_TABLES:
        raise FormatError(f"the header (at offset 0) declares {count} tables "
                          f"(1..{MAX_TABLES} accepted)")
    ctx.budget.charge_elements(count)
    r.seek(HEADER.size)
    tables = _directory(r, count)
    fonts: tuple[tuple[int, tuple[int, ...]], ...]
    if flavor == TTCF:
        fonts = _collection(r, tables)
    elif len({t.tag for t in tables}) != count:
        raise FormatError("a table tag appears twice in the table directory")
    else:
        fonts = ((flavor, tuple(range(count))),)
    r.need(comp_len)
    font = Woff2Font(flavor, tables, fonts, r.pos, comp_len)
    end, warnings = blocks_end(data, r.pos + comp_len, length,
                               ((meta_off, meta_len, "metadata"), (priv_off, priv_len, "private")))

    def children() -> Iterator[Child]:
        raw = data[font.compressed_offset : font.compressed_offset + comp_len]
        stream = _brotli(raw, font.stream_length, ctx)
        out = _tables(font, stream, ctx)
        sfnt = build_sfnt(font.fonts, [t.tag for t in tables], out, flavor == TTCF,
                          ctx.budget.stream_cap())
        yield Child("sfnt", sfnt)

    return Parsed(format="woff2", structure=font, logical_end=end, children=children(),
                  warnings=warnings)
