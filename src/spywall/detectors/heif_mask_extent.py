"""heif-mask-extent: a HEIF mask item whose data is larger than its pixels (CVE-2026-32741).

Condition: an item of type ``mski`` (mask image) whose bits per pixel is 8 (its ``mskC``
property, or failing that the first ``pixi`` channel) and whose data, summed over its
``iloc`` extents (a zero-length file extent counted to the end of the file), is larger than
width * height from its ``ispe`` property. A decoder that sizes the mask buffer from
``ispe`` and copies the item's data into it overruns it. Masks of other depths, or without
``ispe`` or ``iloc``, are not judged.
"""

from __future__ import annotations

from collections.abc import Iterator

from spywall.detectors.base import Detector, DetectorInfo, Hit
from spywall.formats.base import Parsed
from spywall.formats.heif import HeifFile
from spywall.report import FindingKind, Severity


def _bits(heif: HeifFile, item_id: int) -> int | None:
    for ptype in ("mskC", "pixi"):
        prop = heif.prop(item_id, ptype)
        if prop is not None and prop.bits:
            return prop.bits[0]
    return None


def detect(parsed: Parsed) -> Iterator[Hit]:
    heif = parsed.structure
    if not isinstance(heif, HeifFile):
        return
    for item_id, itype in heif.items.items():
        if itype != "mski" or _bits(heif, item_id) != 8:
            continue
        ispe, loc = heif.prop(item_id, "ispe"), heif.locations.get(item_id)
        if ispe is None or loc is None:
            continue
        pixels = ispe.width * ispe.height
        if loc.total_length > pixels:
            yield Hit(
                message=(f"mask item {item_id}: {loc.total_length} bytes of 8-bit mask data "
                         f"for {ispe.width}x{ispe.height} = {pixels} pixels"),
                offset=loc.extents[0][0] if loc.extents else ispe.offset,
                detail={"item": item_id, "width": ispe.width, "height": ispe.height,
                        "data_bytes": loc.total_length},
            )


DETECTOR = Detector(
    info=DetectorInfo(
        id="heif-mask-extent",
        title="HEIF mask item with more data than pixels",
        formats=("heif", "avif"),
        severity=Severity.HIGH,
        kind=FindingKind.EXPLOIT,
        cves=("CVE-2026-32741",),
        references=("https://nvd.nist.gov/vuln/detail/CVE-2026-32741",),
        description=__doc__ or "",
    ),
    detect=detect,
)
