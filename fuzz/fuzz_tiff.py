"""Fuzz the TIFF/DNG parser (MakerNote layouts, DNGPrivateData notes, Exif payloads), the
lossless JPEG header walk and the TIFF detectors."""

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from spywall.detectors import dng_lossless_jpeg_components, dng_opcode_count, tiff_tile_geometry
    from spywall.errors import SpywallError
    from spywall.formats import ljpeg, tiff, tiff_embedded
    from spywall.formats.base import ParseContext
    from spywall.limits import Budget, Limits

LIMITS = Limits(max_elements=200_000, seconds=5)
HEADERS = (b"", b"II*\x00", b"MM\x00*", b"II+\x00\x08\x00\x00\x00", b"MM\x00+\x00\x08\x00\x00")
DETECTORS = (dng_lossless_jpeg_components, dng_opcode_count, tiff_tile_geometry)


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    blob = HEADERS[data[0] % len(HEADERS)] + data[1:]
    with contextlib.suppress(SpywallError):
        ljpeg.read_sof(data, 0, len(data))
    tiff_embedded.maker_note(data, 1, len(data), "<>"[data[0] & 1])
    list(tiff_embedded.heif_exif(data, 1, ((0, len(data)),)))
    tiff_embedded.dng_private_note(b"Adobe\x00MakN" + data)
    try:
        parsed = tiff.parse(blob, ParseContext(Budget(LIMITS)))
    except SpywallError:
        return
    for det in DETECTORS:
        list(det.DETECTOR.detect(parsed))
    for child in parsed.children:  # MakerNote TIFFs: parsed as the engine would
        with contextlib.suppress(SpywallError):
            tiff.parse(child.data, ParseContext(Budget(LIMITS)))


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
