"""TIFF structures that decoders follow inside other data: MakerNotes, Exif payloads.

A raw decoder or a metadata reader follows more directories than the TIFF pointer tags:

- **MakerNote** (tag 0x927C in the EXIF IFD): most cameras write an IFD there, each maker
  its own way (the public descriptions of the layouts, e.g. ExifTool's and exiv2's tag
  documentation). ``maker_note`` tells which: a complete TIFF inside the note (Nikon type
  3: "Nikon\\0" and a TIFF header at +10; any note whose short text prefix is followed by
  a TIFF header, as Huawei's "HUAWEI\\0\\0" is), an IFD whose offsets count from the note's
  start (Olympus "OLYMPUS\\0", OM System "OM SYSTEM\\0", Apple "Apple iOS\\0", Fujifilm
  "FUJIFILM", Pentax "PENTAX \\0" with its own byte order; given back as a TIFF: the maker's
  prefix replaced by a TIFF header of the same length), or an IFD whose offsets count from
  the enclosing TIFF's header (old Olympus "OLYMP\\0" and its siblings "CAMER\\0",
  "EPSON\\0", "MINOL\\0", Nikon type 2 "Nikon\\0\\1", Sony, Panasonic, Leica, Sanyo, Casio
  "QVC\\0", Pentax "AOC\\0" (in the byte order its next two bytes name), and Canon,
  Samsung and others with no prefix at all, when the note starts with a plausible IFD).
  Makers and editing tools are not consistent about the last kind (a file rewritten by an
  editor moves the note, and some makers count from the note), so those IFDs are also
  walked with offsets counted from the note's start (``Note.either``), as readers that
  guess the base do. Notes that match none of these are proprietary data, left alone.
- **DNGPrivateData** (0xC634): a DNG converter keeps the original MakerNote there
  ("Adobe\\0MakN", u32 count, the byte order, u32 offset of the note in the original
  file, the note); ``dng_private_note`` rebuilds a TIFF in which the note sits at that
  offset, behind an IFD whose MakerNote entry points at it, so it is read as above.
- **Exif payloads**: a HEIF/AVIF item of type ``Exif`` holds a u32 offset and then a
  payload whose TIFF header lies at that offset (ISO/IEC 23008-12 A.2.1; ``heif_exif``).
  (A JPEG APP1 segment "Exif\\0\\0" holds a TIFF: ``formats.jpeg`` gives it as a child.)

Every TIFF found this way is given to the engine as a child (format ``tiff``), so it is
walked with every cap of the TIFF parser (IFD count, loops, depth) and judged by the same
detectors, and nesting is bounded by the engine's depth limit.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from spywall.formats.base import Child

MAX_EXIF_BYTES = 64 << 20  # an Exif item larger than this is not extracted
MAX_NOTE_ENTRIES = 1024
MAKER_NOTE = 0x927C

MAX_PRIVATE_OFFSET = 1 << 24  # DNGPrivateData: the original note's offset, at most
# prefix -> offset of a TIFF header inside the note (its offsets count from that header)
_EMBEDDED: tuple[tuple[bytes, int], ...] = ((b"Nikon\x00\x02", 10),)
EMBEDDED_SEARCH = 24  # a TIFF header this far into a note, after a text prefix
# prefix -> (byte order, or the offset of an "II"/"MM" mark in the note; IFD offset in the
# note, or None: a u32 LE at +8 gives it)
_REBASED: tuple[tuple[bytes, str | int, int | None], ...] = (
    (b"OLYMPUS\x00II", "<", 12), (b"OLYMPUS\x00MM", ">", 12), (b"OM SYSTEM\x00", 12, 16),
    (b"Apple iOS\x00", 12, 14), (b"FUJIFILM", "<", None), (b"PENTAX \x00", 8, 10),
)
# prefix -> IFD offset in the note (its offsets count from the enclosing TIFF's header)
_IN_FILE: tuple[tuple[bytes, int], ...] = (
    (b"OLYMP\x00", 8), (b"CAMER\x00", 8), (b"EPSON\x00", 8), (b"MINOL\x00", 8),
    (b"Nikon\x00\x01", 8), (b"SONY DSC \x00\x00\x00", 12), (b"SONY CAM \x00\x00\x00", 12),
    (b"Panasonic\x00\x00\x00", 12), (b"LEICA\x00\x00\x00", 8), (b"SANYO\x00", 8),
    (b"QVC\x00\x00\x00", 6), (b"AOC\x00", 6), (b"SIGMA\x00\x00\x00", 10),
)
_TIFF_HEADER = {"<": b"II*\x00", ">": b"MM\x00*"}
_MARKS = {b"II": "<", b"MM": ">"}
_PRIVATE = b"Adobe\x00MakN"


class Note(msgspec.Struct, frozen=True):
    """Where a MakerNote keeps its IFD. ``ifd``: an IFD in the enclosing data whose offsets
    count from the enclosing TIFF's header (``either``: or from the note's start, at
    ``ifd`` - the note's offset); ``child``: a TIFF to scan on its own. All empty: a
    layout not known, and no plausible IFD."""

    ifd: int | None = None
    child: bytes | None = None
    either: bool = False
    order: str | None = None  # the byte order to read ``ifd`` with, if not the file's


def plausible_ifd(data: bytes, at: int, end: int, order: str) -> bool:
    """Does an IFD (u16 count, 12-byte entries of known field types) start at ``at``?"""
    if at + 2 > end:
        return False
    (count,) = struct.unpack_from(f"{order}H", data, at)
    if not 1 <= count <= MAX_NOTE_ENTRIES or at + 2 + 12 * count > end:
        return False
    for i in range(count):
        _tag, typ = struct.unpack_from(f"{order}HH", data, at + 2 + 12 * i)
        if not 1 <= typ <= 13:
            return False
    return True


def maker_note(data: bytes, at: int, size: int, order: str) -> Note:
    """Where the MakerNote at ``data[at:at + size]`` keeps its IFD (``Note``)."""
    end = min(at + size, len(data))
    note = data[at:end]
    for prefix, header in _EMBEDDED:
        if note[: len(prefix)] == prefix:
            return Note(child=bytes(note[header:]))
    for prefix, mark, ifd in _REBASED:
        if note[: len(prefix)] == prefix:
            order_ = mark if isinstance(mark, str) else _MARKS.get(note[mark : mark + 2])
            if ifd is None and len(note) >= 12:
                (ifd,) = struct.unpack_from("<I", note, 8)
            if ifd is None or order_ is None:
                return Note()
            return Note(child=_TIFF_HEADER[order_] + struct.pack(f"{order_}I", ifd) + note[8:])
    for prefix, skip in _IN_FILE:
        if note[: len(prefix)] == prefix:
            # Pentax names the note's byte order after "AOC\0" ("MM", "II"; else the file's)
            own = _MARKS.get(note[4:6], order) if prefix == b"AOC\x00" else order
            if not plausible_ifd(data, at + skip, end, own):
                return Note()
            return Note(at + skip, either=True, order=None if own == order else own)
    if plausible_ifd(data, at, end, order):
        return Note(at, either=True)
    found = _embedded_header(note)
    return Note(child=bytes(note[found:])) if found is not None else Note()


def _embedded_header(note: bytes) -> int | None:
    """Offset of a TIFF header after a short prefix of text and NULs, if there is one."""
    for header in _TIFF_HEADER.values():
        k = note.find(header, 1, EMBEDDED_SEARCH + 4)
        if k > 0 and all(32 <= b < 127 or b == 0 for b in note[:k]):
            return k
    return None


def dng_private_note(value: bytes) -> tuple[bytes | None, str | None]:
    """The MakerNote kept in a DNGPrivateData value, as a TIFF whose IFD0 holds one
    MakerNote entry pointing at it where it lay in the original file: (TIFF, None), or
    (None, why not) when the value is Adobe's but unusable, or (None, None) when the value
    is not Adobe's MakerNote record."""
    if value[: len(_PRIVATE)] != _PRIVATE:
        return None, None
    if len(value) < len(_PRIVATE) + 10:
        return None, "DNGPrivateData MakerNote record truncated"
    count, mark, original = struct.unpack_from(">I2sI", value, len(_PRIVATE))
    order = _MARKS.get(mark)
    note = value[len(_PRIVATE) + 10 : len(_PRIVATE) + 4 + count]
    if order is None or count < 6:
        return None, "DNGPrivateData MakerNote record with no byte order"
    if not 8 <= original <= MAX_PRIVATE_OFFSET:
        return None, (f"DNGPrivateData MakerNote at original offset {original}: outside "
                      f"8..{MAX_PRIVATE_OFFSET}, not examined")
    ifd = original + len(note) + (original + len(note)) % 2
    entry = struct.pack(f"{order}HHHII", 1, MAKER_NOTE, 7, len(note), original)
    return (_TIFF_HEADER[order] + struct.pack(f"{order}I", ifd) + bytes(original - 8) + note
            + bytes(ifd - original - len(note)) + entry + bytes(4)), None


# HEIF item types whose data is a coded image or a derivation of others, never a TIFF.
_CODED_ITEMS = frozenset({"hvc1", "hev1", "av01", "avc1", "jpeg", "j2k1", "vvc1", "unci",
                          "grid", "iovl", "iden", "tmap", "mski"})


def heif_exif_items(data: bytes, items: Mapping[int, str], locations: Mapping[int, Any]
                    ) -> list[Child]:
    """The TIFFs of every ``Exif`` item (``heif.HeifFile.items`` and ``.locations``), and
    of any other item that is not a coded image (``mime`` items, unknown types) whose
    data begins with a TIFF header: a DNG or TIFF carried as an item is examined like the
    file it is. An Exif item stored other than at file offsets (construction method 0)
    is an error child."""
    out: list[Child] = []
    tiffs = 0
    for item, kind in items.items():
        if kind != "Exif":
            if kind in _CODED_ITEMS:
                continue
            found = list(_tiff_item(data, item, kind, locations.get(item)))
            tiffs += len(found)
            if tiffs <= MAX_TIFF_ITEMS:
                out.extend(found)
            elif found and tiffs == MAX_TIFF_ITEMS + 1:     # said once; not clean
                out.append(Child(f"item {item} ({kind.strip() or '?'})", b"", code="limit",
                                 error=f"more than {MAX_TIFF_ITEMS} TIFF items: the rest "
                                 "not examined"))
            continue
        loc = locations.get(item)
        if loc is None or loc.method != 0:
            how = "no location" if loc is None else f"construction method {loc.method}"
            out.append(Child(f"item {item} (Exif)", b"", error=f"Exif item with {how}: "
                             "not examined"))
            continue
        out.extend(heif_exif(data, item, loc.extents))
    return out


MAX_TIFF_ITEMS = 16
_TIFF_MAGICS = frozenset({*_TIFF_HEADER.values(), b"II+\x00", b"MM\x00+"})  # BigTIFF too


def _tiff_item(data: bytes, item_id: int, kind: str, loc: Any) -> Iterator[Child]:
    """An item of another type holding a TIFF from its first byte (at file offsets)."""
    if loc is None or loc.method != 0 or not loc.extents:
        return
    first = loc.extents[0][0]
    if bytes(data[first : first + 4]) not in _TIFF_MAGICS:
        return
    name = f"item {item_id} ({kind.strip() or '?'})"
    if sum(n for _, n in loc.extents) > MAX_EXIF_BYTES:
        yield Child(name, b"", error=f"TIFF item over {MAX_EXIF_BYTES} bytes: not examined",
                    code="limit")
        return
    yield Child(name, b"".join(bytes(data[o : o + n]) for o, n in loc.extents),
                format="tiff")


def heif_exif(data: bytes, item_id: int, extents: tuple[tuple[int, int], ...]
              ) -> Iterator[Child]:
    """The TIFF of an ``Exif`` item stored at ``extents`` (file offsets, lengths)."""
    if sum(n for _, n in extents) > MAX_EXIF_BYTES:
        yield Child(f"item {item_id} (Exif)", b"",
                    error=f"Exif item over {MAX_EXIF_BYTES} bytes: not examined", code="limit")
        return
    body = b"".join(bytes(data[o : o + n]) for o, n in extents)
    if len(body) < 4:
        yield Child(f"item {item_id} (Exif)", b"", error="Exif item shorter than 4 bytes")
        return
    (skip,) = struct.unpack_from(">I", body, 0)
    tiff = body[4 + skip :] if 4 + skip < len(body) else b""
    if tiff[:4] in _TIFF_HEADER.values():
        yield Child(f"item {item_id} (Exif)", tiff, format="tiff")
    else:
        yield Child(f"item {item_id} (Exif)", b"",
                    error=f"Exif item: no TIFF header at offset {skip}")
