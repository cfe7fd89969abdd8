"""TIFF, BigTIFF and DNG (TIFF 6.0, BigTIFF, DNG 1.6): the tree of image file directories.

Walks the IFD chain from the header, and from every IFD the SubIFDs (0x014A, several
offsets, nested), EXIF (0x8769), GPS (0x8825) and interoperability (0xA005) IFDs, any entry
of type IFD (13; BigTIFF 18: makers' sub-directories, Olympus's among them), and the
MakerNote's IFD (0x927C, the layouts of ``tiff_embedded``: one IFD walked in place, and
again with offsets counted from the note when the layout leaves the base in doubt, or a
TIFF of its own given as a child, as are the JPEG thumbnail, 0x0201/0x0202, the original
MakerNote a DNG keeps in DNGPrivateData, 0xC634, and a strip or tile holding a JPEG file
with APPn segments, a DNG preview's Exif among them). Caps:
``MAX_IFDS`` directories in all (the rest is left, with a warning), ``MAX_ENTRIES``
entries per directory, ``MAX_DEPTH`` levels of nesting, ``MAX_VALUES`` integer values kept
per entry and ``MAX_TOTAL_VALUES`` in the whole file (values are Python integers, tens of
bytes each: 127 entries of a million LONGs would take gigabytes; past the total, values
are not read and the file is reported incomplete); an IFD offset seen twice (a loop) is
not walked again. Out-of-line values are read only when they lie inside the data. The
strips or tiles of an IFD with Compression 7 (lossless JPEG, as DNG uses) have their JPEG
frame header read (``spywall.formats.ljpeg``); no pixel data is decoded.

``logical_end`` is the largest end of everything referenced (IFDs, out-of-line values,
strips, tiles, the EXIF JPEG thumbnail), so data appended after a DNG is looked at by the
engine. The format is reported as ``dng`` when any IFD carries DNGVersion (0xC612).
A directory that cannot be read becomes a warning; the others are still reported.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Mapping

import msgspec

from spywall.errors import FormatError
from spywall.formats import ljpeg, tiff_embedded
from spywall.formats.base import Child, FormatSpec, ParseContext, Parsed
from spywall.formats.magic import TIFF_MAGICS as _MAGICS
from spywall.formats.magic import sniff_tiff as sniff
from spywall.formats.reader import Reader, check_count

MAX_IFDS = 1024
MAX_ENTRIES = 4096
MAX_DEPTH = 8
MAX_VALUES = 1 << 20
MAX_TOTAL_VALUES = 1 << 21
MAX_WARNINGS = 32
HEAD_BYTES = 16
MAX_JPEG_SEGMENTS = 16  # strips or tiles given as JPEG children, per file
MAX_REREADS = 64  # MakerNotes read a second time, offsets counted from the note
MAX_REREAD_BYTES = 16 << 20  # the largest note copied for that reading
IFD_TYPES = frozenset({13, 18})  # IFD, IFD8: an entry whose values are IFD offsets

# Tags the parser and the detectors use.
NEW_SUBFILE_TYPE, IMAGE_WIDTH, IMAGE_LENGTH, BITS_PER_SAMPLE = 0x00FE, 0x0100, 0x0101, 0x0102
COMPRESSION, STRIP_OFFSETS, SAMPLES_PER_PIXEL = 0x0103, 0x0111, 0x0115
ROWS_PER_STRIP, STRIP_BYTE_COUNTS, PLANAR_CONFIGURATION = 0x0116, 0x0117, 0x011C
TILE_WIDTH, TILE_LENGTH, TILE_OFFSETS, TILE_BYTE_COUNTS = 0x0142, 0x0143, 0x0144, 0x0145
SUB_IFDS, JPEG_IF_OFFSET, JPEG_IF_LENGTH = 0x014A, 0x0201, 0x0202
EXIF_IFD, GPS_IFD, INTEROP_IFD = 0x8769, 0x8825, 0xA005
MAKER_NOTE = 0x927C
DNG_VERSION, DNG_PRIVATE_DATA = 0xC612, 0xC634
OPCODE_LISTS = {0xC740: "OpcodeList1", 0xC741: "OpcodeList2", 0xC74E: "OpcodeList3"}
LOSSLESS_JPEG = 7

# Makers' sub-directories not typed as IFDs (``maker_subdirs``): Nikon's preview IFD, and
# Olympus's Equipment, CameraSettings, RawDevelopment(2), ImageProcessing, FocusInfo.
_MAKER_SUBDIRS = (0x0011, 0x2010, 0x2020, 0x2030, 0x2031, 0x2040, 0x2050)
# Pointer tags: tag -> label of the directories they lead to.
_CHILD_IFDS = {SUB_IFDS: "SubIFD", EXIF_IFD: "EXIF", GPS_IFD: "GPS", INTEROP_IFD: "Interop"}
# Field type -> (size in bytes, struct code for integer types or "" for the others).
_TYPES: dict[int, tuple[int, str]] = {
    1: (1, "B"), 2: (1, ""), 3: (2, "H"), 4: (4, "I"), 5: (8, ""), 6: (1, "b"), 7: (1, ""),
    8: (2, "h"), 9: (4, "i"), 10: (8, ""), 11: (4, ""), 12: (8, ""), 13: (4, "I"),
    16: (8, "Q"), 17: (8, "q"), 18: (8, "Q"),
}
_SEGMENT_TAGS = ((STRIP_OFFSETS, STRIP_BYTE_COUNTS), (TILE_OFFSETS, TILE_BYTE_COUNTS))


class Entry(msgspec.Struct, frozen=True):
    """One IFD entry. ``offset`` is where its value lies (inline: inside the entry)."""

    tag: int
    type: int
    count: int
    offset: int
    size: int
    values: tuple[int, ...] = ()
    head: bytes = b""


class Segment(msgspec.Struct, frozen=True):
    """One strip or tile: where it lies, and the JPEG frame header if one was read."""

    index: int
    offset: int
    length: int
    sof: ljpeg.Sof | None = None


class Ifd(msgspec.Struct, frozen=True):
    label: str
    offset: int
    entries: Mapping[int, Entry]
    tiled: bool = False
    segments: tuple[Segment, ...] = ()

    def values(self, tag: int) -> tuple[int, ...]:
        entry = self.entries.get(tag)
        return entry.values if entry is not None else ()

    def value(self, tag: int, default: int | None = None) -> int | None:
        vals = self.values(tag)
        return vals[0] if vals else default


class TiffFile(msgspec.Struct, frozen=True):
    little_endian: bool
    bigtiff: bool
    dng: bool
    ifds: tuple[Ifd, ...]


class _Counts:
    """What one file's walkers spend together."""

    def __init__(self) -> None:
        self.values_left = MAX_TOTAL_VALUES
        self.jpeg_segments = 0
        self.rereads = 0
        self.reread_capped = self.values_capped = False


class _Layout(msgspec.Struct, frozen=True):
    """Classic TIFF: u16 entry count, 12-byte entries, u32 counts and offsets.
    BigTIFF: u64 entry count, 20-byte entries, u64 counts and offsets."""

    order: str
    bigtiff: bool

    @property
    def word(self) -> int:
        return 8 if self.bigtiff else 4

    @property
    def entry_size(self) -> int:
        return 20 if self.bigtiff else 12

    def uint(self, r: Reader, size: int) -> int:
        return int.from_bytes(r.read(size), "little" if self.order == "<" else "big")


class _Walker:
    def __init__(self, data: bytes, ctx: ParseContext, layout: _Layout) -> None:
        self.data = data
        self.ctx = ctx
        self.lay = layout
        self.ifds: list[Ifd] = []
        self.seen: set[int] = set()
        self.warnings: list[str] = []
        self.end = 16 if layout.bigtiff else 8
        self.counts = _Counts()  # shared with the walkers of MakerNotes' second readings
        self.incomplete: list[str] = []
        self.children: list[Child] = []  # MakerNote TIFFs and JPEG thumbnails
        self.quiet = False  # a second reading (another base): no warnings

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS and not self.quiet:
            self.warnings.append(message)

    def extent(self, offset: int, length: int, what: str) -> bool:
        """Account ``length`` bytes at ``offset``; ``False`` (and a warning) if they do not
        all lie inside the data (the part inside still counts towards the logical end)."""
        inside = offset + length <= len(self.data)
        if not inside:
            self.warn(f"{what} at offset {offset} ({length} bytes) runs past the end of the file")
        if offset < len(self.data):
            self.end = max(self.end, min(offset + length, len(self.data)))
        return inside

    def chain(self, offset: int, label: str, depth: int, numbered: bool = False) -> None:
        """Walk one chain of IFDs linked by their next-IFD offsets."""
        index = 0
        while offset:
            name = f"{label}{index}" if numbered else (f"{label}+{index}" if index else label)
            if offset in self.seen:
                self.warn(f"{name}: the IFD at offset {offset} was already read (a loop)")
                return
            if len(self.ifds) >= MAX_IFDS:
                self.warn(f"{name}: more than {MAX_IFDS} IFDs; the rest is not walked")
                return
            self.seen.add(offset)
            try:
                offset = self.ifd(offset, name, depth)
            except FormatError as exc:
                self.warn(f"{name}: {exc}")
                return
            index += 1

    def ifd(self, offset: int, label: str, depth: int) -> int:
        """Read one IFD and the directories it points to; return the next IFD offset."""
        lay, order = self.lay, self.lay.order
        r = Reader(self.data, offset)
        count = lay.uint(r, 8 if lay.bigtiff else 2)
        check_count(count, MAX_ENTRIES, f"the IFD at offset {offset}: entry")
        self.ctx.budget.charge_elements(count + 1)
        raw = r.read(count * lay.entry_size)
        nxt = lay.uint(r, lay.word)
        self.extent(offset, r.pos - offset, label)
        head = struct.Struct(f"{order}HH{'Q' if lay.bigtiff else 'I'}")
        entries: dict[int, Entry] = {}
        for i in range(count):
            pos = offset + (8 if lay.bigtiff else 2) + i * lay.entry_size
            tag, typ, n = head.unpack_from(raw, i * lay.entry_size)
            entry = self.entry(tag, typ, n, pos + head.size, label)
            if entry is not None:
                entries.setdefault(tag, entry)
        ifd = self.segments(Ifd(label, offset, entries))
        self.ifds.append(ifd)
        for tag, kind in _CHILD_IFDS.items():
            for j, child in enumerate(ifd.values(tag)[:MAX_IFDS]):
                if depth + 1 > MAX_DEPTH:
                    self.warn(f"{label}: {kind} nested deeper than {MAX_DEPTH}")
                    break
                suffix = str(j) if tag == SUB_IFDS else ""
                self.chain(child, f"{label}/{kind}{suffix}", depth + 1)
        for tag, entry in entries.items():
            if entry.type in IFD_TYPES and tag not in _CHILD_IFDS and depth + 1 <= MAX_DEPTH:
                for j, child in enumerate(entry.values[:MAX_IFDS]):
                    if len(self.ifds) >= MAX_IFDS:
                        break
                    self.chain(child, f"{label}/IFD:0x{tag:04X}" + (f"[{j}]" if j else ""),
                               depth + 1)
        if depth + 1 <= MAX_DEPTH:
            self.maker_subdirs(entries, label, depth + 1)
        note = entries.get(MAKER_NOTE)
        if note is not None and not self.lay.bigtiff and depth + 1 <= MAX_DEPTH:
            self.maker_note(note, f"{label}/MakerNote", depth + 1)
        private = entries.get(DNG_PRIVATE_DATA)
        if private is not None and private.offset + private.size <= len(self.data):
            value = self.data[private.offset : private.offset + private.size]
            tiff, why = tiff_embedded.dng_private_note(value)
            if tiff is not None:
                self.children.append(Child(f"{label}/DNGPrivateData", tiff, format="tiff"))
            elif why is not None:
                self.children.append(Child(f"{label}/DNGPrivateData", b"", error=why))
        return nxt

    def maker_subdirs(self, entries: Mapping[int, Entry], label: str, depth: int) -> None:
        """Makers' sub-directories not typed as IFDs, followed as their readers follow
        them: Olympus's 0x2010-0x2050 stored as UNDEFINED blocks that are the directory
        (older cameras), Nikon's preview IFD 0x0011 as a LONG offset. Only where a
        plausible directory lies there, and quietly (another maker may use the tag)."""
        for tag in _MAKER_SUBDIRS:
            entry = entries.get(tag)
            if entry is None or len(self.ifds) >= MAX_IFDS:
                continue
            if entry.type == 7 and entry.count > 4:
                at = entry.offset
            elif entry.type == 4 and entry.count == 1 and entry.values:
                at = entry.values[0]
            else:
                continue
            if at in self.seen or not tiff_embedded.plausible_ifd(
                    self.data, at, len(self.data), self.lay.order):
                continue
            quiet, self.quiet = self.quiet, True
            try:
                self.chain(at, f"{label}/0x{tag:04X}", depth)
            finally:
                self.quiet = quiet

    def maker_note(self, note: Entry, label: str, depth: int) -> None:
        """The MakerNote's IFD: walked here (one directory: makers' next pointers are
        not reliable), and again in the note's own coordinates when the base is in
        doubt; or, with offsets of its own, a child TIFF."""
        found = tiff_embedded.maker_note(self.data, note.offset, note.size, self.lay.order)
        if found.child is not None:
            self.children.append(Child(label, found.child, format="tiff"))
        at = found.ifd
        if at is None or len(self.ifds) >= MAX_IFDS:
            return
        walker = self if found.order is None else self.twin(found.order)
        if at not in walker.seen:
            walker.seen.add(at)
            try:
                walker.ifd(at, label, depth)
            except FormatError as exc:
                walker.warn(f"{label}: {exc}")
        if found.either and note.offset:
            walker.reread(note, at, f"{label}(note-based)", depth)
        self.end = max(self.end, walker.end)

    def twin(self, order: str) -> _Walker:
        """A walker of the same data in another byte order (a MakerNote that names its
        own), sharing this one's IFDs, children, caps and warnings."""
        twin = _Walker(self.data, self.ctx, _Layout(order, self.lay.bigtiff))
        twin.share(self)
        twin.seen, twin.warnings, twin.end = self.seen, self.warnings, self.end
        return twin

    def share(self, other: _Walker) -> None:
        self.ifds, self.children, self.incomplete = other.ifds, other.children, other.incomplete
        self.counts, self.quiet = other.counts, other.quiet

    def reread(self, note: Entry, at: int, label: str, depth: int) -> None:
        """The note's IFD again, offsets counted from the note (a copy of it: at most
        ``MAX_REREADS`` notes of at most ``MAX_REREAD_BYTES``; past those, the file is
        reported incomplete)."""
        end = min(note.offset + note.size, len(self.data))
        counts = self.counts
        if end - note.offset > MAX_REREAD_BYTES or counts.rereads >= MAX_REREADS:
            if not counts.reread_capped:
                counts.reread_capped = True
                self.incomplete.append(
                    f"{label}: a MakerNote over {MAX_REREAD_BYTES} bytes, or more than "
                    f"{MAX_REREADS} of them, not read with offsets counted from the note")
            return
        counts.rereads += 1
        self.nested(self.data[note.offset : end], at - note.offset, label, depth)

    def nested(self, data: bytes, at: int, label: str, depth: int) -> None:
        """Walk the IFD at ``at`` in ``data`` (a MakerNote, offsets counted from its start)
        into this walker's IFDs and children, sharing its caps, without warnings: it is a
        second reading of bytes already walked."""
        sub = _Walker(data, self.ctx, self.lay)
        sub.share(self)
        sub.quiet = True
        sub.seen.add(at)
        with contextlib.suppress(FormatError):  # reported by the reading with the file's base
            sub.ifd(at, label, depth)

    def entry(self, tag: int, typ: int, count: int, field_at: int, label: str) -> Entry | None:
        if typ not in _TYPES:
            return None
        size, code = _TYPES[typ]
        total = size * count
        if total <= self.lay.word:
            at = field_at
        else:
            fmt = "Q" if self.lay.bigtiff else "I"
            (at,) = struct.unpack_from(f"{self.lay.order}{fmt}", self.data, field_at)
            if not self.extent(at, total, f"{label} tag 0x{tag:04X} value"):
                return Entry(tag, typ, count, at, total)
        values: tuple[int, ...] = ()
        if code:
            n = min(count, MAX_VALUES, self.counts.values_left)
            if n < count and n == self.counts.values_left:
                if not self.counts.values_capped:
                    self.counts.values_capped = True
                    self.incomplete.append(f"{label} tag 0x{tag:04X}: more than "
                                           f"{MAX_TOTAL_VALUES} integer values in the file; "
                                           "the rest are not read")
            elif n < count:
                self.warn(f"{label} tag 0x{tag:04X}: only the first {n} of {count} values read")
            self.counts.values_left -= n
            self.ctx.budget.charge_elements(n // 64 + 1)
            values = struct.unpack_from(f"{self.lay.order}{n}{code}", self.data, at)
        head = self.data[at : at + min(total, HEAD_BYTES)]
        return Entry(tag, typ, count, at, total, values, head)

    def segments(self, ifd: Ifd) -> Ifd:
        """Record the strips or tiles of ``ifd`` (and their JPEG headers if Compression 7)."""
        thumb, thumb_len = ifd.value(JPEG_IF_OFFSET), ifd.value(JPEG_IF_LENGTH)
        if (thumb is not None and thumb_len is not None
                and self.extent(thumb, thumb_len, f"{ifd.label} JPEG thumbnail")
                and thumb_len):
            self.children.append(Child(f"{ifd.label} JPEG thumbnail",
                                       bytes(self.data[thumb : thumb + thumb_len])))
        tiled = TILE_OFFSETS in ifd.entries
        offsets_tag, counts_tag = _SEGMENT_TAGS[1 if tiled else 0]
        lossless = ifd.value(COMPRESSION) == LOSSLESS_JPEG
        counts = ifd.values(counts_tag)
        segs: list[Segment] = []
        for i, off in enumerate(ifd.values(offsets_tag)):
            # a missing or overlong byte count does not stop a decoder reading the stream,
            # so the frame header is read from what the data holds
            length = counts[i] if i < len(counts) else max(0, len(self.data) - off)
            what = f"{ifd.label} {'tile' if tiled else 'strip'} {i}"
            self.extent(off, length, what)
            sof = None
            if lossless and off < len(self.data) and length > 0:
                try:
                    sof = ljpeg.read_sof(self.data, off, min(off + length, len(self.data)),
                                         self.ctx.budget)
                except FormatError as exc:
                    self.warn(f"{what}: {exc}")
            segs.append(Segment(i, off, length, sof))
            self.jpeg_file(off, length, what)
        return Ifd(ifd.label, ifd.offset, ifd.entries, tiled, tuple(segs))

    def jpeg_file(self, off: int, length: int, what: str) -> None:
        """A strip or tile that is a JPEG file with APPn segments (a DNG preview, say):
        a child, so its Exif and the rest are examined (lossless raw data, which starts
        with DHT or SOF3 after SOI, is not copied)."""
        head = self.data[off : off + 4]
        if len(head) < 4 or head[:3] != b"\xff\xd8\xff" or not 0xE0 <= head[3] <= 0xEF:
            return
        if self.counts.jpeg_segments >= MAX_JPEG_SEGMENTS:
            if self.counts.jpeg_segments == MAX_JPEG_SEGMENTS:
                self.children.append(Child(what, b"", code="limit", error=(
                    f"more than {MAX_JPEG_SEGMENTS} strips or tiles holding JPEG files; "
                    "the rest are not examined")))
            self.counts.jpeg_segments += 1
            return
        self.counts.jpeg_segments += 1
        self.children.append(Child(f"{what} (JPEG)", bytes(self.data[off : off + length])))


def parse(data: bytes, ctx: ParseContext) -> Parsed:
    r = Reader(data)
    r.expect(8, "the TIFF header")
    order, bigtiff = _MAGICS.get(r.read(4), ("", False))
    if not order:
        raise FormatError("the header at offset 0 is not a TIFF header")
    lay = _Layout(order, bigtiff)
    if bigtiff:
        r.expect(12, "the BigTIFF header (offset size, reserved word, first IFD offset)")
    if bigtiff:
        bytesize = lay.uint(r, 2)
        r.skip(2)
        if bytesize != 8:
            raise FormatError(f"the BigTIFF header gives an offset size of {bytesize}, not 8 "
                              "(offset 4)")
    first = lay.uint(r, lay.word)
    walker = _Walker(data, ctx, lay)
    walker.chain(first, "IFD", 0, numbered=True)
    if not walker.ifds:
        raise FormatError(f"no readable directory of tags (IFD): {'; '.join(walker.warnings[:1])}")
    ifds = tuple(walker.ifds)
    dng = any(DNG_VERSION in ifd.entries for ifd in ifds)
    tiff = TiffFile(order == "<", bigtiff, dng, ifds)
    return Parsed(format="dng" if dng else "tiff", structure=tiff,
                  logical_end=min(walker.end, len(data)), children=walker.children,
                  warnings=walker.warnings,
                  incomplete=walker.incomplete)


SPEC = FormatSpec(name="tiff", description="TIFF / BigTIFF image, DNG raw photo",
                  sniff=sniff, parse=parse)
