"""JBIG2 (ITU T.88 / ISO 14492): segment headers, symbol dictionaries and text regions.

Two entry points share one segment walker:

- ``jbig2``: a standalone file, 97 4A 42 32 0D 0A 1A 0A, a flags byte (bit 0 set:
  sequential organisation, clear: random access, every header first and the data parts
  after the end-of-file segment; bit 1 clear: a u32 page count follows).
- ``jbig2-embedded``: the content of a PDF ``/JBIG2Decode`` stream (ISO 32000 7.4.7),
  a plain sequence of segments in sequential order with no file header and no
  end-of-file segment. The PDF parser hands over the ``/JBIG2Globals`` segments followed
  by the page stream's segments, the order a decoder sees them in.

Segment header (T.88 7.2): number u32; flags u8 (type = bits 0-5, bit 6: page association
is 4 bytes); referred-to count in the top 3 bits of the next byte (0-4, short form, the
low 5 bits are retention flags) or, when those bits are 7, a u32 whose low 29 bits are the
count followed by retention bytes; the referred-to numbers, each 1
byte if this segment's number is <= 256, 2 if <= 65536, else 4; page association; data
length u32, where 0xFFFFFFFF (unknown) is only allowed for an immediate generic region
in a sequential stream, whose end is then found from its end-of-stripe marker.

Decoders disagree on how many retention bytes follow a long-form count (``RETENTION``):
T.88 says ceil((count + 1) / 8); xpdf and its descendants (Poppler, and the CoreGraphics
decoder FORCEDENTRY attacked) read (count + 9) >> 3, one more when count + 1 is a
multiple of 8; jbig2dec and PDFium read (count + 1) // 8, one fewer otherwise. Every
later offset of the stream shifts with that byte, so a stream can show one decoder a
harmless header and another the trigger. A stream with a long-form header is therefore
walked once per reading, and a symbol use another reading finds with a larger sum than
the readings before it is kept too (it names its reading); the T.88 reading gives the
rest of the structure.

Only what detectors judge is kept: each symbol dictionary's SDNUMEXSYMS and
SDNUMNEWSYMS (after the flags and AT bytes, T.88 7.4.2.1), and for each segment that
consumes symbols (a text region, types 4/6/7, or a dictionary refining others, type 0)
the number of references that resolve to an earlier dictionary and the true (unbounded)
sum of their SDNUMEXSYMS, counting a dictionary each time it is referred to, as a
decoder's 32-bit accumulator does. Referred-to numbers are read in bulk and counted,
never kept. No bitmap is decoded.

Where decoders differ, the walker takes the reading that shows more: an embedded stream
is read past an end-of-file segment (PDF decoders read to the end of the stream), and a
dictionary number defined twice (in the globals and the page) counts with the larger
SDNUMEXSYMS. A standalone file ends at its end-of-file segment (its ``logical_end``).

A file that is damaged part way (a truncated segment, a bad length) keeps what was read
before the damage and reports the rest in ``warnings``, so garbage appended to an
exploit cannot hide it.
"""

from __future__ import annotations

import re
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterator

import msgspec

from spywall.errors import FormatError, LimitExceeded, TruncatedError
from spywall.formats.base import FormatSpec, ParseContext, Parsed
from spywall.formats.magic import JBIG2_MAGIC as MAGIC
from spywall.formats.magic import sniff_jbig2 as sniff
from spywall.formats.magic import sniff_never
from spywall.formats.reader import Reader, check_count

MAX_SEGMENTS = 1_000_000
# FORCEDENTRY referred to one dictionary 0x10001 times. References are summed in chunks
# of REF_CHUNK, never kept, so the cap bounds time (with charge_elements), not memory.
MAX_REFS = 1 << 24
REF_CHUNK = 1 << 16
UNKNOWN_LENGTH = 0xFFFFFFFF
SYMBOL_DICT = 0
TEXT_REGIONS = frozenset({4, 6, 7})
REFINEMENT_REGIONS = frozenset({40, 42, 43})
SYMBOL_CONSUMERS = TEXT_REGIONS | {SYMBOL_DICT}
IMMEDIATE_GENERIC = 38
END_OF_FILE = 51
REGION_INFO = 17  # width, height, x, y (u32 each) and a flags byte (T.88 7.4.1)
_STRIPE_END = {False: re.compile(rb"\xff\xac"), True: re.compile(rb"\x00\x00")}
_REF_CODES = {1: "B", 2: "H", 4: "I"}
SPEC_READING = "T.88"
# Retention bytes after a long-form referred-to count, as each decoder family reads them.
RETENTION: dict[str, Callable[[int], int]] = {
    SPEC_READING: lambda n: (n + 8) // 8,
    "xpdf": lambda n: (n + 9) >> 3,
    "jbig2dec": lambda n: (n + 1) // 8,
}


class SymbolDictionary(msgspec.Struct, frozen=True):
    number: int
    offset: int
    exported: int
    new: int
    flags: int


class SymbolUse(msgspec.Struct, frozen=True):
    """A segment that takes symbols from the dictionaries it refers to."""

    number: int
    type: int
    offset: int
    references: int
    dictionary_references: int
    exported_sum: int
    reading: str = "T.88"  # the retention-byte reading it was found with (RETENTION)


class Jbig2Stream(msgspec.Struct, frozen=True):
    embedded: bool
    sequential: bool
    pages: int | None
    segment_count: int
    type_counts: dict[int, int]
    dictionaries: tuple[SymbolDictionary, ...]
    symbol_uses: tuple[SymbolUse, ...]
    first_refinement_offset: int | None = None

    @property
    def refinement_count(self) -> int:
        return sum(self.type_counts.get(t, 0) for t in REFINEMENT_REGIONS)


class _Header(msgspec.Struct):
    number: int
    type: int
    offset: int
    length: int
    ref_offset: int  # where the referred-to numbers start
    ref_count: int
    ref_size: int  # 1, 2 or 4 bytes each
    data_offset: int = 0
    long_form: bool = False


def _header(r: Reader, ctx: ParseContext, retention: Callable[[int], int] = RETENTION[
        SPEC_READING]) -> _Header:
    """One segment header; the referred-to numbers are skipped here, summed later."""
    offset = r.pos
    number = r.u32be()
    flags = r.u8()
    first = r.u8()
    if first >> 5 == 7:
        r.seek(r.pos - 1)
        count = check_count(r.u32be() & 0x1FFFFFFF, MAX_REFS, "referred-to segment")
        r.skip(retention(count))
    elif first >> 5 > 4:
        raise FormatError(f"invalid referred-to count {first >> 5} in the segment header at "
                          f"offset {offset}")
    else:
        count = first >> 5
    size = 1 if number <= 256 else 2 if number <= 65536 else 4
    ref_offset = r.pos
    r.skip(count * size + (4 if flags & 0x40 else 1))
    length = r.u32be()
    ctx.budget.charge_elements(1 + count // 64)
    return _Header(number, flags & 0x3F, offset, length, ref_offset, count, size,
                   long_form=first >> 5 == 7)


def _sum_refs(data: bytes, h: _Header, known: dict[int, int]) -> tuple[int, int]:
    """References to known dictionaries and the sum of their SDNUMEXSYMS, read in chunks
    so memory stays small whatever the count."""
    hits = total = 0
    code = _REF_CODES[h.ref_size]
    for start in range(0, h.ref_count, REF_CHUNK):
        n = min(REF_CHUNK, h.ref_count - start)
        at = h.ref_offset + start * h.ref_size
        refs = array(code, data[at : at + n * h.ref_size])
        if h.ref_size > 1 and sys.byteorder == "little":
            refs.byteswap()
        for num, times in Counter(refs).items():
            exported = known.get(num)
            if exported is not None:
                hits += times
                total += exported * times
    return hits, total


def _unknown_length(data: bytes, h: _Header, end: int) -> int:
    """Data length of an immediate generic region whose header says 'unknown' (7.2.7)."""
    if h.type != IMMEDIATE_GENERIC:
        raise FormatError(f"segment {h.number} (at offset {h.offset}) leaves its length "
                          f"unknown, which only an immediate generic region may (type {h.type})")
    flags_at = h.data_offset + REGION_INFO
    if flags_at >= end:
        raise TruncatedError(f"segment {h.number} (at offset {h.offset}): its generic region "
                             "header is cut short")
    m = _STRIPE_END[bool(data[flags_at] & 1)].search(data, flags_at + 1, end)
    if m is None or m.end() + 4 > end:
        raise TruncatedError(f"segment {h.number} (at offset {h.offset}) has an unknown length "
                             "and no end-of-stripe marker")
    return m.end() + 4 - h.data_offset


def _dictionary(data: bytes, h: _Header) -> SymbolDictionary:
    r = Reader(data, h.data_offset, h.data_offset + h.length)
    flags = r.u16be()
    if not flags & 1:  # SDHUFF = 0: generic-region AT pixels
        r.skip(8 if (flags >> 10) & 3 == 0 else 2)
    if flags & 2 and not flags & 0x1000:  # SDREFAGG = 1 and SDRTEMPLATE = 0
        r.skip(4)
    return SymbolDictionary(h.number, h.offset, r.u32be(), r.u32be(), flags)


class _Walk:
    def __init__(self, data: bytes, ctx: ParseContext, embedded: bool,
                 reading: str = SPEC_READING) -> None:
        self.data = data
        self.reading = reading
        self.retention = RETENTION[reading]
        self.long_form = False  # a long-form header was read: other readings may differ
        self.ctx = ctx
        self.embedded = embedded
        self.headers: list[_Header] = []  # symbol dictionaries and text regions only
        self.type_counts: Counter[int] = Counter()
        self.warnings: list[str] = []
        self.end = 0
        self.count = 0
        self.first_refinement: int | None = None

    def header(self, r: Reader) -> _Header:
        h = _header(r, self.ctx, self.retention)
        self.long_form = self.long_form or h.long_form
        return h

    def add(self, h: _Header) -> None:
        self.count += 1
        if self.count > MAX_SEGMENTS:
            raise LimitExceeded(f"more than {MAX_SEGMENTS} segments")
        self.type_counts[h.type] += 1
        if h.type in SYMBOL_CONSUMERS:
            self.headers.append(h)
        elif h.type in REFINEMENT_REGIONS and self.first_refinement is None:
            self.first_refinement = h.offset

    def sequential(self, r: Reader) -> None:
        while r.remaining:
            h = self.header(r)
            h.data_offset = r.pos
            if h.length == UNKNOWN_LENGTH:
                h.length = _unknown_length(self.data, h, r.end)
            self.add(h)
            r.skip(h.length)
            self.end = r.pos
            if h.type == END_OF_FILE and not self.embedded:
                return  # a PDF decoder reads on to the end of the stream

    def random_access(self, r: Reader) -> None:
        """Every header first, then the data parts in the same order. Only the headers a
        detector reads are kept whole; the others leave a type and a length (arrays)."""
        kept: dict[int, _Header] = {}
        types, lengths = array("B"), array("L")
        first_ref = True
        while True:
            h = self.header(r)
            if h.length == UNKNOWN_LENGTH:
                raise FormatError(f"segment {h.number} (at offset {h.offset}) leaves its length "
                                  "unknown in a random-access file, which JBIG2 forbids")
            if len(lengths) >= MAX_SEGMENTS:
                raise LimitExceeded(f"more than {MAX_SEGMENTS} segment headers")
            if h.type in SYMBOL_CONSUMERS or (h.type in REFINEMENT_REGIONS and first_ref):
                kept[len(lengths)] = h
                first_ref = first_ref and h.type not in REFINEMENT_REGIONS
            types.append(h.type)
            lengths.append(h.length)
            if h.type == END_OF_FILE:
                break
        for i, length in enumerate(lengths):
            h = kept.get(i) or _Header(0, types[i], 0, length, 0, 0, 1)
            h.data_offset = r.pos
            self.add(h)
            r.skip(length)
            self.end = r.pos

    def uses(self) -> Iterator[SymbolDictionary | SymbolUse]:
        """Dictionaries and symbol uses in decoding order; sums over earlier dicts only."""
        known: dict[int, int] = {}
        for h in self.headers:
            hits, total = _sum_refs(self.data, h, known) if h.ref_count else (0, 0)
            if h.type in TEXT_REGIONS or hits:
                yield SymbolUse(h.number, h.type, h.offset, h.ref_count, hits, total,
                                self.reading)
            if h.type == SYMBOL_DICT:
                try:
                    d = _dictionary(self.data, h)
                except TruncatedError as exc:
                    self.warnings.append(f"the symbol dictionary of segment {h.number} (at offset "
                                         f"{h.offset}) is cut short: {exc}")
                    continue
                # a number defined twice (globals and page): keep the larger, since
                # decoders differ on which one a reference finds
                known[h.number] = max(d.exported, known.get(h.number, 0))
                yield d


def _file_header(r: Reader) -> tuple[bool, int | None]:
    r.expect(9 if len(r.data) < 9 or r.data[8] & 2 else 13, "the file header")
    if r.read(8) != MAGIC:
        raise FormatError("the header at offset 0 is not a JBIG2 file header")
    flags = r.u8()
    pages = None if flags & 2 else r.u32be()
    return bool(flags & 1), pages


def _walk(data: bytes, ctx: ParseContext, embedded: bool, reading: str,
          incomplete: list[str]
          ) -> tuple[_Walk, bool, int | None, list[SymbolDictionary | SymbolUse]]:
    """One walk of the segments; a cap met on the way goes into ``incomplete``."""
    walk = _Walk(data, ctx, embedded, reading)
    r = Reader(data)
    sequential, pages = (True, None) if embedded else _file_header(r)
    walk.end = r.pos
    try:
        (walk.sequential if sequential else walk.random_access)(r)
    except FormatError as exc:  # keep what came before the damage
        walk.warnings.append(f"segment {walk.count + 1}, from offset {walk.end}: {exc}; the "
                             "segments after it were not read")
    except LimitExceeded as exc:  # and what came before a cap (the rest is not examined)
        incomplete.append(f"segment {walk.count + 1}, from offset {walk.end}: {exc}")
    return walk, sequential, pages, list(walk.uses())


def _parse(data: bytes, ctx: ParseContext, embedded: bool,
           readings: tuple[str, ...] = tuple(RETENTION)) -> Parsed:
    """Walk with the first reading; if it met a long-form header, with the others too."""
    incomplete: list[str] = []
    walk, sequential, pages, items = _walk(data, ctx, embedded, readings[0], incomplete)
    uses = [i for i in items if isinstance(i, SymbolUse)]
    if walk.long_form:
        for reading in readings[1:]:
            most: dict[int, int] = {}
            for u in uses:
                most[u.number] = max(u.exported_sum, most.get(u.number, -1))
            if incomplete:
                break      # the budget is spent: another reading would stop at once
            other, _, _, more = _walk(data, ctx, embedded, reading, incomplete)
            # what this reading shows more: a segment with a larger sum than any so far
            new = [u for u in more if isinstance(u, SymbolUse)
                   and u.exported_sum > most.get(u.number, -1)]
            uses += new
            if new:
                walk.warnings.append(
                    f"the segment headers' retention bytes, read the way {reading} reads "
                    f"them, give {len(new)} more symbol uses ({len(other.warnings)} "
                    "warnings in that reading)")
    stream = Jbig2Stream(
        embedded=embedded,
        sequential=sequential,
        pages=pages,
        segment_count=walk.count,
        type_counts=dict(walk.type_counts),
        dictionaries=tuple(i for i in items if isinstance(i, SymbolDictionary)),
        symbol_uses=tuple(uses),
        first_refinement_offset=walk.first_refinement,
    )
    return Parsed(format="jbig2-embedded" if embedded else "jbig2", structure=stream,
                  logical_end=walk.end, warnings=walk.warnings, incomplete=incomplete)


def parse_as(data: bytes, ctx: ParseContext, reading: str, embedded: bool = False
             ) -> Parsed:
    """The stream as one decoder family reads it (a key of ``RETENTION``): for oracles."""
    return _parse(data, ctx, embedded, (reading,))


def parse(data: bytes, ctx: ParseContext) -> Parsed:
    return _parse(data, ctx, embedded=False)


def parse_embedded(data: bytes, ctx: ParseContext) -> Parsed:
    return _parse(data, ctx, embedded=True)


SPEC = FormatSpec(name="jbig2", description="JBIG2 image file (T.88)", sniff=sniff,
                  parse=parse)
EMBEDDED_SPEC = FormatSpec(name="jbig2-embedded",
                           description="JBIG2 segments from a PDF /JBIG2Decode stream",
                           sniff=sniff_never, parse=parse_embedded)
