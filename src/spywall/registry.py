"""The explicit list of formats and detectors. Add a module here to register it.

Sniffing order is the order of ``FORMATS``: the first format whose sniffer accepts the
first ``SNIFF_BYTES`` of an object wins.
"""

from __future__ import annotations

from spywall.detectors import (
    appended_archive,
    dng_lossless_jpeg_components,
    dng_opcode_count,
    gif_frame_resize,
    gif_zero_area_frame,
    heif_mask_extent,
    heif_multiple_alpha,
    heif_overlay_alpha_depth,
    jbig2_refinement_flood,
    jbig2_symbol_overflow,
    tiff_tile_geometry,
    truetype_adjust,
    webp_huffman,
)
from spywall.detectors.base import Detector
from spywall.formats import (
    appended,
    gif,
    heif,
    jbig2,
    jpeg,
    pdf,
    png,
    tiff,
    truetype,
    webp,
    woff,
    zipfmt,
)
from spywall.formats.base import FormatSpec

FORMATS: tuple[FormatSpec, ...] = (
    zipfmt.SPEC,
    jpeg.SPEC,
    png.SPEC,
    heif.SPEC,
    gif.SPEC,
    tiff.SPEC,
    truetype.SPEC,
    woff.SPEC,
    pdf.SPEC,
    jbig2.SPEC,
    jbig2.EMBEDDED_SPEC,
    webp.SPEC,
    appended.SPEC,
)

DETECTORS: tuple[Detector, ...] = (
    appended_archive.DETECTOR,
    heif_mask_extent.DETECTOR,
    heif_multiple_alpha.DETECTOR,
    heif_overlay_alpha_depth.DETECTOR,
    gif_frame_resize.DETECTOR,
    gif_zero_area_frame.DETECTOR,
    dng_lossless_jpeg_components.DETECTOR,
    dng_opcode_count.DETECTOR,
    jbig2_refinement_flood.DETECTOR,
    jbig2_symbol_overflow.DETECTOR,
    tiff_tile_geometry.DETECTOR,
    truetype_adjust.DETECTOR,
    webp_huffman.DETECTOR,
)


# Media formats that have no business carrying an archive: for these the engine also looks
# for a zip by its end record, even inside what the format claims as its own data.
ARCHIVE_CARRIERS: frozenset[str] = frozenset(
    {"jpeg", "png", "gif", "tiff", "dng", "webp", "heif", "avif"}
)


def format_names() -> set[str]:
    """Names a detector may attach to: registered formats and their subtypes."""
    return {f.name for f in FORMATS} | SUBTYPE_NAMES


# Names that a format's ``parse`` may report in ``Parsed.format`` besides its own.
SUBTYPE_NAMES: set[str] = {"pkpass", "apk", "ooxml", "jar", "ipa", "encrypted", "unknown",
                           "opentype-cff", "ttc", "dng", "avif"}
