"""TIFF structures that decoders follow inside other data: MakerNotes, Exif payloads.

A raw decoder or a metadata reader follows more directories than the TIFF pointer tags:

- **MakerNote** (tag 0x927C in the EXIF IFD): most cameras write an IFD there, each maker
  its own way (the public descriptions of the layouts, e.g. ExifTool's and exiv2's tag
  documentation). ``maker_note`` tells which: a complete TIFF inside the note (Nikon type
  3: "Nikon\\0" and a TIFF header at +10), an IFD whose offsets count from the note's
  start (Olympus "OLYMPUS\\0", Apple "Apple iOS\\0", Fujifilm "FUJIFILM"; given back as a
  TIFF: the maker's prefix replaced by a TIFF header of the same length), or an IFD whose
  offsets count from the enclosing TIFF's header (old Olympus "OLYMP\\0", Sony, Panasonic,
  Pentax "AOC\\0", and Canon and others with no prefix at all, when the note starts with a
  plausible IFD). Notes that match none of these are proprietary data, left alone.
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

from spywall.formats.base import Child

MAX_EXIF_BYTES = 64 << 20  # an Exif item larger than this is not extracted
MAX_NOTE_ENTRIES = 1024

# prefix -> offset of a TIFF header inside the note (its offsets count from that header)
_EMBEDDED: tuple[tuple[bytes, int], ...] = ((b"Nikon\x00\x02", 10),)
# prefix -> (byte order, IFD offset in the note, or None: a u32 LE at +8 gives it)
_REBASED: tuple[tuple[bytes, str, int | None], ...] = (
    (b"OLYMPUS\x00II", "<", 12), (b"OLYMPUS\x00MM", ">", 12),
    (b"Apple iOS\x00", ">", 14), (b"FUJIFILM", "<", None),
)
# prefix -> IFD offset in the note (its offsets count from the enclosing TIFF's header)
_IN_FILE: tuple[tuple[bytes, int], ...] = (
    (b"OLYMP\x00", 8), (b"SONY DSC \x00\x00\x00", 12), (b"SONY CAM \x00\x00\x00", 12),
    (b"Panasonic\x00\x00\x00", 12), (b"AOC\x00", 6), (b"SIGMA\x00\x00\x00", 10),
)
_TIFF_HEADER = {"<": b"II*\x00", ">": b"MM\x00*"}


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


def maker_note(data: bytes, at: int, size: int, order: str
               ) -> tuple[int | None, bytes | None]:
    """Where the MakerNote at ``data[at:at + size]`` keeps its IFD: (offset of an IFD in
    ``data`` whose offsets count from the TIFF header, or None; a TIFF to scan as a child,
    or None). Both None: not a known or plausible layout."""
    end = min(at + size, len(data))
    note = data[at:end]
    for prefix, header in _EMBEDDED:
        if note[: len(prefix)] == prefix:
            return None, bytes(note[header:])
    for prefix, order_, ifd in _REBASED:
        if note[: len(prefix)] == prefix:
            if ifd is None:
                if len(note) < 12:
                    return None, None
                (ifd,) = struct.unpack_from("<I", note, 8)
            return None, _TIFF_HEADER[order_] + struct.pack(f"{order_}I", ifd) + note[8:]
    for prefix, ifd in _IN_FILE:
        if note[: len(prefix)] == prefix:
            return (at + ifd if plausible_ifd(data, at + ifd, end, order) else None), None
    return (at if plausible_ifd(data, at, end, order) else None), None


def heif_exif_items(data: bytes, items: Mapping[int, str], locations: Mapping[int, Any]
                    ) -> list[Child]:
    """The TIFFs of every ``Exif`` item (``heif.HeifFile.items`` and ``.locations``); an
    item stored other than at file offsets (construction method 0) is an error child."""
    out: list[Child] = []
    for item, kind in items.items():
        if kind != "Exif":
            continue
        loc = locations.get(item)
        if loc is None or loc.method != 0:
            how = "no location" if loc is None else f"construction method {loc.method}"
            out.append(Child(f"item {item} (Exif)", b"", error=f"Exif item with {how}: "
                             "not examined"))
            continue
        out.extend(heif_exif(data, item, loc.extents))
    return out


def heif_exif(data: bytes, item_id: int, extents: tuple[tuple[int, int], ...]
              ) -> Iterator[Child]:
    """The TIFF of an ``Exif`` item stored at ``extents`` (file offsets, lengths)."""
    if sum(n for _, n in extents) > MAX_EXIF_BYTES:
        yield Child(f"item {item_id} (Exif)", b"",
                    error=f"Exif item over {MAX_EXIF_BYTES} bytes: not examined")
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
