"""tiff-tile-geometry: strip or tile layout that cannot be right (lower confidence).

Condition, for every IFD of the tree that has StripOffsets or TileOffsets:

- medium: a tiled IFD with TileWidth or TileLength missing or zero;
- medium: the offsets and byte-counts tags have different counts (strips or tiles);
- medium: the number of tiles is not ceil(ImageWidth / TileWidth) *
  ceil(ImageLength / TileLength), times SamplesPerPixel when PlanarConfiguration is 2;
- low: the number of strips is not ceil(ImageLength / RowsPerStrip) (RowsPerStrip
  defaults to ImageLength), times SamplesPerPixel when PlanarConfiguration is 2.

Decoders that trust one of these numbers to size a buffer and another to fill it overrun
it; well-formed writers never produce them. Not proof of an exploit on its own.
"""

from __future__ import annotations

from collections.abc import Iterator

from spywall.detectors.base import Detector, DetectorInfo, Hit
from spywall.formats import tiff as t
from spywall.formats.base import Parsed
from spywall.report import FindingKind, Severity


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _problems(ifd: t.Ifd) -> Iterator[tuple[str, Severity]]:
    kind = "tile" if ifd.tiled else "strip"
    offsets_tag, counts_tag = (t.TILE_OFFSETS, t.TILE_BYTE_COUNTS) if ifd.tiled else (
        t.STRIP_OFFSETS, t.STRIP_BYTE_COUNTS)
    offsets, counts = ifd.entries[offsets_tag], ifd.entries.get(counts_tag)
    if counts is None or counts.count != offsets.count:
        n = counts.count if counts is not None else 0
        yield f"{offsets.count} {kind} offsets but {n} byte counts", Severity.MEDIUM
    width, height = ifd.value(t.IMAGE_WIDTH), ifd.value(t.IMAGE_LENGTH)
    planes = (ifd.value(t.SAMPLES_PER_PIXEL, 1) or 1) if ifd.value(
        t.PLANAR_CONFIGURATION, 1) == 2 else 1
    if ifd.tiled:
        tw, tl = ifd.value(t.TILE_WIDTH, 0), ifd.value(t.TILE_LENGTH, 0)
        if not tw or not tl:
            yield f"tile dimensions {tw}x{tl}", Severity.MEDIUM
        elif width is not None and height is not None:
            expected = _ceil(width, tw) * _ceil(height, tl) * planes
            if offsets.count != expected:
                yield (f"{offsets.count} tiles for a {width}x{height} image in {tw}x{tl} "
                       f"tiles (expected {expected})"), Severity.MEDIUM
    elif height is not None:
        rps = ifd.value(t.ROWS_PER_STRIP, height) or height
        expected = _ceil(height, rps) * planes if rps else 0
        if offsets.count != expected:
            yield (f"{offsets.count} strips for {height} rows at {rps} rows per strip "
                   f"(expected {expected})"), Severity.LOW


def detect(parsed: Parsed) -> Iterator[Hit]:
    tiff = parsed.structure
    if not isinstance(tiff, t.TiffFile):
        return
    for ifd in tiff.ifds:
        if t.TILE_OFFSETS not in ifd.entries and t.STRIP_OFFSETS not in ifd.entries:
            continue
        for problem, severity in _problems(ifd):
            yield Hit(message=f"{ifd.label}: {problem}", offset=ifd.offset,
                      detail={"ifd": ifd.label}, severity=severity)


DETECTOR = Detector(
    info=DetectorInfo(
        id="tiff-tile-geometry",
        title="TIFF strip or tile geometry that cannot be right",
        formats=("dng", "tiff"),
        severity=Severity.MEDIUM,
        kind=FindingKind.HEURISTIC,
        references=("https://www.loc.gov/preservation/digital/formats/fdd/fdd000022.shtml",),
        description=__doc__ or "",
    ),
    detect=detect,
)
