"""dng-lossless-jpeg-components: lossless JPEG component count against SamplesPerPixel
(CVE-2025-43300, Apple ImageIO / RawCamera, chained with WhatsApp CVE-2025-55177).

Condition, checked in every IFD of the tree (IFD chain, SubIFDs at any depth, EXIF) whose
Compression is 7 (lossless JPEG), for every strip (StripOffsets/StripByteCounts) and every
tile (TileOffsets/TileByteCounts) whose stream has an SOF3 frame header:

- critical: SamplesPerPixel is 2 and SOF3 declares Nf = 1 component: the published
  trigger, where the decoder writes two samples per pixel into a buffer sized for one.
- medium: any other disagreement between the samples the stream declares (Nf * X * Y) and
  the samples the IFD expects for that strip or tile (SamplesPerPixel * width * rows; for
  tiles TileWidth * TileLength, for strips ImageWidth * the rows of that strip). Nf alone
  may legitimately differ from SamplesPerPixel: DNG writers commonly encode a one-sample
  CFA tile of width W as a two-component stream of width W/2, so only the totals are
  compared. Planar (PlanarConfiguration 2) data is not checked this way.

One hit per IFD and class, naming how many strips or tiles are affected and the offset of
the first one's SOF3 marker.
"""

from __future__ import annotations

from collections.abc import Iterator

from spywall.detectors.base import Detector, DetectorInfo, Hit
from spywall.formats import tiff as t
from spywall.formats.base import Parsed
from spywall.report import FindingKind, Severity


def _expected_samples(ifd: t.Ifd, seg: t.Segment) -> int | None:
    """Samples the IFD expects in this strip or tile (``None`` if it cannot tell)."""
    spp = ifd.value(t.SAMPLES_PER_PIXEL, 1) or 1
    if ifd.value(t.PLANAR_CONFIGURATION, 1) == 2:
        return None
    if ifd.tiled:
        tw, tl = ifd.value(t.TILE_WIDTH), ifd.value(t.TILE_LENGTH)
        return spp * tw * tl if tw and tl else None
    width, height = ifd.value(t.IMAGE_WIDTH), ifd.value(t.IMAGE_LENGTH)
    if not width or not height:
        return None
    rps = ifd.value(t.ROWS_PER_STRIP, height) or height
    rows = min(rps, height - seg.index * rps)
    return spp * width * rows if rows > 0 else None


def detect(parsed: Parsed) -> Iterator[Hit]:
    tiff = parsed.structure
    if not isinstance(tiff, t.TiffFile):
        return
    for ifd in tiff.ifds:
        if ifd.value(t.COMPRESSION) != t.LOSSLESS_JPEG:
            continue
        spp = ifd.value(t.SAMPLES_PER_PIXEL, 1) or 1
        trigger: list[t.Segment] = []
        mismatch: list[tuple[t.Segment, int, int]] = []
        for seg in ifd.segments:
            sof = seg.sof
            if sof is None or not sof.lossless:
                continue
            if spp == 2 and sof.components == 1:
                trigger.append(seg)
                continue
            expected = _expected_samples(ifd, seg)
            declared = sof.components * sof.width * sof.height
            if expected is not None and declared != expected:
                mismatch.append((seg, declared, expected))
        kind = "tile" if ifd.tiled else "strip"
        if trigger:
            first = trigger[0]
            yield Hit(
                message=(f"{ifd.label}: SamplesPerPixel 2 with lossless JPEG SOF3 declaring "
                         f"1 component in {len(trigger)} {kind}(s), first {kind} {first.index}"),
                offset=first.sof.offset if first.sof else first.offset,
                detail={"ifd": ifd.label, "samples_per_pixel": spp, "components": 1,
                        "segments": len(trigger), "first_segment": first.index},
            )
        if mismatch:
            seg, declared, expected = mismatch[0]
            yield Hit(
                message=(f"{ifd.label}: lossless JPEG declares {declared} samples where the "
                         f"{kind} holds {expected} ({len(mismatch)} {kind}(s), first "
                         f"{kind} {seg.index})"),
                offset=seg.sof.offset if seg.sof else seg.offset,
                detail={"ifd": ifd.label, "samples_per_pixel": spp,
                        "declared_samples": declared, "expected_samples": expected,
                        "segments": len(mismatch), "first_segment": seg.index},
                severity=Severity.MEDIUM,
            )


DETECTOR = Detector(
    info=DetectorInfo(
        id="dng-lossless-jpeg-components",
        title="DNG lossless JPEG component count does not match SamplesPerPixel",
        formats=("dng", "tiff"),
        severity=Severity.CRITICAL,
        kind=FindingKind.EXPLOIT,
        cves=("CVE-2025-43300",),
        references=(
            "https://nvd.nist.gov/vuln/detail/CVE-2025-43300",
            "https://support.apple.com/en-us/124925",
        ),
        description=__doc__ or "",
    ),
    detect=detect,
)
