"""gif-zero-area-frame: image descriptors with width * height = 0 (CVE-2019-11932,
android-gif-drawable double free reached through WhatsApp for Android's media picker).

Condition: a GIF image descriptor whose width or height is 0. The vulnerable decoder
reallocates its raster to width * height when a frame is larger than the logical screen
or the previous raster; with a zero area that realloc frees the raster, and a second such
frame frees it again. Severity: critical when the GIF holds two or more zero-area frames
(the double free of the public proof of concept: a 24x10 screen, an 8x21 first frame,
then two descriptors of width 0x0F1C and height 0); high for a single one (a freed raster
that later frames write into, and no encoder writes empty frames). One hit per frame.
"""

from __future__ import annotations

from collections.abc import Iterator

from spywall.detectors.base import Detector, DetectorInfo, Hit
from spywall.formats.base import Parsed
from spywall.formats.gif import GifFile
from spywall.report import FindingKind, Severity


def detect(parsed: Parsed) -> Iterator[Hit]:
    gif = parsed.structure
    if not isinstance(gif, GifFile):
        return
    empty = [f for f in gif.frames if f.area == 0]
    severity = None if len(empty) >= 2 else Severity.HIGH
    for frame in empty:
        yield Hit(
            message=(f"frame {frame.index} is {frame.width}x{frame.height} "
                     f"({len(empty)} zero-area frame(s) on a {gif.width}x{gif.height} screen)"),
            offset=frame.offset,
            detail={"frame": frame.index, "width": frame.width, "height": frame.height,
                    "zero_area_frames": len(empty)},
            severity=severity,
        )


DETECTOR = Detector(
    info=DetectorInfo(
        id="gif-zero-area-frame",
        title="GIF frame with zero area (android-gif-drawable double free)",
        formats=("gif",),
        severity=Severity.CRITICAL,
        kind=FindingKind.EXPLOIT,
        cves=("CVE-2019-11932",),
        references=(
            "https://nvd.nist.gov/vuln/detail/CVE-2019-11932",
            "https://awakened1712.github.io/hacking/hacking-whatsapp-gif-rce/",
        ),
        description=__doc__ or "",
    ),
    detect=detect,
)
