"""Fuzz the HEIF/AVIF box walk, item model and the three HEIF detectors."""

import sys

import atheris

with atheris.instrument_imports():
    from spywall.detectors import heif_mask_extent, heif_multiple_alpha, heif_overlay_alpha_depth
    from spywall.errors import SpywallError
    from spywall.formats import heif
    from spywall.formats.base import ParseContext
    from spywall.limits import Budget, Limits

LIMITS = Limits(max_elements=200_000, seconds=5)
FTYP = b"\x00\x00\x00\x14ftypheic\x00\x00\x00\x00mif1"
DETECTORS = (heif_mask_extent, heif_multiple_alpha, heif_overlay_alpha_depth)


def TestOneInput(data: bytes) -> None:
    blob = data if heif.sniff(data[:64]) else FTYP + data
    try:
        parsed = heif.parse(blob, ParseContext(Budget(LIMITS)))
    except SpywallError:
        return
    for det in DETECTORS:
        list(det.DETECTOR.detect(parsed))


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
