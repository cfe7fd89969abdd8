"""WOFF 1.0 web fonts: unpacked in memory into the sfnt they wrap, which is then scanned.

WOFF (W3C Recommendation, 2012) wraps an sfnt font (TrueType or CFF) for the web: a
44-byte header, then a directory of 20-byte entries (tag, offset, compLength, origLength,
origChecksum), each table stored as is when ``compLength == origLength`` or
zlib-compressed when smaller, 4-byte aligned; optional extended metadata and private
data blocks follow. A browser (WebKit on iOS included) unpacks the tables and hands the
sfnt to the platform's font parser, so the TrueType bytecode that the ADJUST detector
looks for is inside the compressed tables.

The one child is the rebuilt sfnt (named ``sfnt``): the WOFF's flavor as the sfnt
version, the table records in directory order with their original checksums, and each
table's data 4-byte aligned. Bounds: a table count cap, every table inside the data,
decompression of each table to exactly its declared size under the stream and ratio
caps, and the rebuilt font under the stream cap. ``logical_end`` is the end of the last
block the header or directory points to, so data appended after a WOFF is examined.

WOFF2 (Brotli, transformed ``glyf``/``loca``) is sniffed here too and handed to
``formats.woff2``, which unpacks it the same way.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import msgspec

from spywall.errors import FormatError, LimitExceeded
from spywall.formats import woff2
from spywall.formats.base import Child, FormatSpec, ParseContext, Parsed
from spywall.formats.magic import WOFF as WOFF  # the fuzz target uses both signatures
from spywall.formats.magic import WOFF2
from spywall.formats.magic import sniff_woff as sniff
from spywall.formats.reader import Reader

MAX_TABLES = 512
HEADER = struct.Struct(">4sIIHHIHHIIIII")  # 44 bytes
ENTRY = struct.Struct(">4sIIII")  # 20 bytes
SFNT_HEADER = struct.Struct(">IHHHH")
SFNT_RECORD = struct.Struct(">4sIII")


class WoffTable(msgspec.Struct, frozen=True):
    tag: str
    offset: int
    comp_length: int
    orig_length: int
    checksum: int

    @property
    def compressed(self) -> bool:
        return self.comp_length < self.orig_length


class WoffFont(msgspec.Struct, frozen=True):
    flavor: bytes
    tables: tuple[WoffTable, ...]
    sfnt_size: int


def _directory(data: bytes, count: int) -> tuple[WoffTable, ...]:
    r = Reader(data, HEADER.size)
    r.expect(count * ENTRY.size, "the table directory")
    tables = []
    for i in range(count):
        tag, off, comp, orig, check = ENTRY.unpack_from(data, HEADER.size + i * ENTRY.size)
        name = tag.decode("latin-1")
        if comp > orig:
            raise FormatError(f"the table directory says table {name!r} is {comp} bytes "
                              f"compressed but only {orig} unpacked")
        if off < HEADER.size + count * ENTRY.size or off + comp > len(data):
            raise FormatError(f"the table directory places table {name!r} at offset {off} "
                              f"({comp} bytes), outside the {len(data)} bytes of the file")
        tables.append(WoffTable(name, off, comp, orig, check))
    return tuple(tables)


def _table_bytes(data: bytes, t: WoffTable, ctx: ParseContext) -> bytes:
    raw = data[t.offset : t.offset + t.comp_length]
    if not t.compressed:
        return raw
    cap = ctx.budget.stream_cap()
    if t.orig_length > cap:
        raise LimitExceeded(f"table {t.tag!r} of {t.orig_length} bytes over the cap of {cap}")
    d = zlib.decompressobj()
    try:
        out = d.decompress(raw, t.orig_length + 1)
    except zlib.error as exc:
        raise FormatError(f"table {t.tag!r} at offset {t.offset}: its compressed (zlib) "
                          f"data is damaged: {exc}") from exc
    ctx.budget.charge_decompressed(len(out), t.comp_length)
    if len(out) != t.orig_length:
        raise FormatError(f"table {t.tag!r} at offset {t.offset} unpacks to {len(out)} "
                          f"bytes, the table directory says {t.orig_length}")
    return out


def _sfnt(data: bytes, font: WoffFont, ctx: ParseContext) -> bytes:
    """The sfnt the WOFF wraps, rebuilt as a browser's unpacker would lay it out."""
    n = len(font.tables)
    entry_selector = max(0, n.bit_length() - 1)
    search_range = (1 << entry_selector) * 16
    head = [SFNT_HEADER.pack(int.from_bytes(font.flavor, "big"), n, search_range,
                             entry_selector, n * 16 - search_range)]
    body: list[bytes] = []
    pos = SFNT_HEADER.size + n * SFNT_RECORD.size
    for t in font.tables:
        table = _table_bytes(data, t, ctx)
        head.append(SFNT_RECORD.pack(t.tag.encode("latin-1"), t.checksum, pos, len(table)))
        pad = -len(table) % 4
        body.append(table + b"\x00" * pad)
        pos += len(table) + pad
        if pos > ctx.budget.stream_cap():
            raise LimitExceeded(f"unpacked font over the cap of {ctx.budget.stream_cap()} bytes")
    return b"".join(head + body)


def parse(data: bytes, ctx: ParseContext) -> Parsed:
    if data[:4] == WOFF2:
        return woff2.parse(data, ctx)
    Reader(data).expect(HEADER.size, "the file header")
    (_, flavor, length, count, _, sfnt_size, _, _, meta_off, meta_len, _, priv_off,
     priv_len) = HEADER.unpack_from(data, 0)
    if count == 0 or count > MAX_TABLES:
        raise FormatError(f"the header (at offset 0) declares {count} tables "
                          f"(1..{MAX_TABLES} accepted)")
    ctx.budget.charge_elements(count)
    font = WoffFont(flavor.to_bytes(4, "big"), _directory(data, count), sfnt_size)
    end, warnings = woff2.blocks_end(
        data, max(t.offset + t.comp_length for t in font.tables), length,
        ((meta_off, meta_len, "metadata"), (priv_off, priv_len, "private")))

    def children() -> Iterator[Child]:
        yield Child("sfnt", _sfnt(data, font, ctx))

    return Parsed(format="woff", structure=font, logical_end=end, children=children(),
                  warnings=warnings)


SPEC = FormatSpec(name="woff", description="WOFF web font (W3C): tables unpacked, sfnt scanned",
                  sniff=sniff, parse=parse, container=True)
