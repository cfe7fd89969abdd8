"""gif-frame-resize: a later frame larger than the raster the decoder holds
(CVE-2019-11933, android-gif-drawable heap overflow).

Frames with zero area are left to gif-zero-area-frame. For every later frame (not the
first) with a non-zero area, let *grows* mean: its area is larger than the largest raster
so far (the logical screen's area and every earlier frame's area), or it extends past the
logical screen (left + width > screen width, or top + height > screen height).

- high: the frame grows and its decoder set-up is invalid: an LZW minimum code size
  outside 2..8 (GIF89a allows 2 to 8), so a decoder that rejects the frame after reading
  its descriptor never resizes the raster that a later frame then overruns;
- medium: the frame extends past the logical screen with a valid set-up (the layout the
  exploit needs; real encoders keep frames inside the screen).

The first frame is not judged: the screen size it has to fit is the decoder's first raster
size, and the public proof of concept's 8x21 first frame on a 24x10 screen is its carrier.
"""

from __future__ import annotations

from collections.abc import Iterator

from spywall.detectors.base import Detector, DetectorInfo, Hit
from spywall.formats.base import Parsed
from spywall.formats.gif import Frame, GifFile
from spywall.report import FindingKind, Severity

MIN_CODE, MAX_CODE = 2, 8


def _outside(gif: GifFile, frame: Frame) -> bool:
    return frame.left + frame.width > gif.width or frame.top + frame.height > gif.height


def detect(parsed: Parsed) -> Iterator[Hit]:
    gif = parsed.structure
    if not isinstance(gif, GifFile) or not gif.frames:
        return
    raster = max(gif.width * gif.height, gif.frames[0].area)
    for frame in gif.frames[1:]:
        if frame.area == 0:
            continue
        grows = frame.area > raster or _outside(gif, frame)
        code = frame.lzw_min_code_size
        invalid = code is not None and not MIN_CODE <= code <= MAX_CODE
        where = (f"frame {frame.index} of {frame.width}x{frame.height} at "
                 f"({frame.left},{frame.top}) on a {gif.width}x{gif.height} screen")
        detail = {"frame": frame.index, "width": frame.width, "height": frame.height,
                  "left": frame.left, "top": frame.top, "lzw_min_code_size": code,
                  "raster_area": raster}
        if grows and invalid:
            yield Hit(message=f"{where}, larger than the raster of {raster} pixels, with "
                              f"LZW minimum code size {code}",
                      offset=frame.offset, detail=detail)
        elif _outside(gif, frame):
            yield Hit(message=f"{where} extends past the logical screen",
                      offset=frame.offset, detail=detail, severity=Severity.MEDIUM)
        raster = max(raster, frame.area)


DETECTOR = Detector(
    info=DetectorInfo(
        id="gif-frame-resize",
        title="GIF frame larger than the decoder's raster (android-gif-drawable overflow)",
        formats=("gif",),
        severity=Severity.HIGH,
        kind=FindingKind.EXPLOIT,
        cves=("CVE-2019-11933",),
        references=("https://nvd.nist.gov/vuln/detail/CVE-2019-11933",),
        description=__doc__ or "",
    ),
    detect=detect,
)
