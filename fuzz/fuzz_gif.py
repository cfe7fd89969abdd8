"""Fuzz the GIF block walk and the two GIF detectors."""

import sys

import atheris

with atheris.instrument_imports():
    from spywall.detectors import gif_frame_resize, gif_zero_area_frame
    from spywall.errors import SpywallError
    from spywall.formats import gif
    from spywall.formats.base import ParseContext
    from spywall.limits import Budget, Limits

LIMITS = Limits(max_elements=200_000, seconds=5)


def TestOneInput(data: bytes) -> None:
    blob = data if gif.sniff(data) else b"GIF89a" + data
    try:
        parsed = gif.parse(blob, ParseContext(Budget(LIMITS)))
    except SpywallError:
        return
    for det in (gif_frame_resize, gif_zero_area_frame):
        list(det.DETECTOR.detect(parsed))


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
