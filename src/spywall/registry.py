"""The explicit list of formats and detectors. Add a module here to register it.

Sniffing order is the order of ``FORMATS``: the first format whose sniffer accepts the
first ``SNIFF_BYTES`` of an object wins.

An entry is light: the format's name, its sniffer (from ``formats.magic``, standard library
only), the module that holds its ``FormatSpec`` and the detector modules that apply to
what its parser reports (its own name and its ``subtypes``). The engine imports a parser
and its detectors the first time it meets the format (``load_format``, ``detectors_for``),
so a scan of a few JPEGs does not pay for the font, PDF and WebP code. ``all_formats`` and
``all_detectors`` import everything, for listings and tests.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import msgspec

from spywall.detectors.base import Detector
from spywall.formats import magic
from spywall.formats.base import FormatSpec


class FormatEntry(msgspec.Struct, frozen=True):
    """A registered format, its parser and detectors named but not imported."""

    name: str
    sniff: Callable[[bytes], bool]
    module: str  # under spywall.formats
    attr: str = "SPEC"
    # Names its ``parse`` may report in ``Parsed.format`` besides its own.
    subtypes: tuple[str, ...] = ()
    # Detector modules (under spywall.detectors) for what its ``parse`` reports, in the
    # order they run.
    detectors: tuple[str, ...] = ()
    # What a person calls it: the first words of each error entry about such an object.
    plain: str = ""


_JBIG2_DETECTORS = ("jbig2_refinement_flood", "jbig2_symbol_overflow")

FORMATS: tuple[FormatEntry, ...] = (
    FormatEntry("zip", magic.sniff_zip, "zipfmt",
                subtypes=("pkpass", "apk", "ooxml", "jar", "ipa"), plain="zip archive"),
    FormatEntry("jpeg", magic.sniff_jpeg, "jpeg", plain="JPEG image"),
    FormatEntry("png", magic.sniff_png, "png", plain="PNG image"),
    FormatEntry("heif", magic.sniff_heif, "heif", subtypes=("avif",),
                detectors=("heif_mask_extent", "heif_multiple_alpha",
                           "heif_overlay_alpha_depth"), plain="HEIF image"),
    FormatEntry("gif", magic.sniff_gif, "gif",
                detectors=("gif_frame_resize", "gif_zero_area_frame"), plain="GIF image"),
    FormatEntry("tiff", magic.sniff_tiff, "tiff", subtypes=("dng",),
                detectors=("dng_lossless_jpeg_components", "dng_opcode_count",
                           "tiff_tile_geometry"), plain="TIFF image"),
    FormatEntry("truetype", magic.sniff_truetype, "truetype", subtypes=("opentype-cff", "ttc"),
                detectors=("truetype_adjust", "truetype_computed_jump"), plain="font file"),
    FormatEntry("woff", magic.sniff_woff, "woff", subtypes=("woff2",), plain="web font (WOFF)"),
    FormatEntry("pdf", magic.sniff_pdf, "pdf", plain="PDF document"),
    FormatEntry("jbig2", magic.sniff_jbig2, "jbig2", detectors=_JBIG2_DETECTORS,
                plain="JBIG2 image"),
    FormatEntry("jbig2-embedded", magic.sniff_never, "jbig2", attr="EMBEDDED_SPEC",
                detectors=_JBIG2_DETECTORS, plain="JBIG2 image data"),
    FormatEntry("webp", magic.sniff_webp, "webp", detectors=("webp_huffman",),
                plain="WebP image"),
    FormatEntry("appended", magic.sniff_never, "appended", detectors=("appended_archive",),
                plain="appended data"),
)


# Media formats that have no business carrying an archive: for these the engine also looks
# for a zip by its end record, even inside what the format claims as its own data.
ARCHIVE_CARRIERS: frozenset[str] = frozenset(
    {"jpeg", "png", "gif", "tiff", "dng", "webp", "heif", "avif"}
)

# Names that a format's ``parse`` may report in ``Parsed.format`` besides its own, and the
# ones the engine gives itself (a zip member it cannot decrypt, an input nothing claims).
SUBTYPE_NAMES: frozenset[str] = frozenset(
    {s for entry in FORMATS for s in entry.subtypes} | {"encrypted", "unknown"}
)

BY_NAME: dict[str, FormatEntry] = {entry.name: entry for entry in FORMATS}
# The entry whose parser reports a ``Parsed.format`` name: its detectors are the ones that
# may apply to that name.
_REPORTED_BY: dict[str, FormatEntry] = {
    name: entry for entry in FORMATS for name in (entry.name, *entry.subtypes)
}


def format_names() -> set[str]:
    """Names a detector may attach to: registered formats and their subtypes."""
    return set(BY_NAME) | SUBTYPE_NAMES


def load_format(entry: FormatEntry) -> FormatSpec:
    """The entry's ``FormatSpec``, its module imported (once: Python caches modules)."""
    spec = getattr(importlib.import_module(f"spywall.formats.{entry.module}"), entry.attr)
    if not isinstance(spec, FormatSpec) or spec.name != entry.name or spec.sniff is not entry.sniff:
        raise TypeError(f"spywall.formats.{entry.module}.{entry.attr} is not the {entry.name!r} "
                        "format of the registry (name and sniffer must be the same)")
    return spec


def _load_detector(module: str) -> Detector:
    det = getattr(importlib.import_module(f"spywall.detectors.{module}"), "DETECTOR", None)
    if not isinstance(det, Detector):
        raise TypeError(f"spywall.detectors.{module} has no DETECTOR")
    return det


def detectors_for(name: str) -> tuple[Detector, ...]:
    """The detectors that run on a ``Parsed`` of format ``name`` (its modules imported)."""
    entry = _REPORTED_BY.get(name)
    if entry is None:
        return ()
    return tuple(d for d in map(_load_detector, entry.detectors) if name in d.info.formats)


def all_formats() -> tuple[FormatSpec, ...]:
    """Every registered ``FormatSpec``, in sniffing order (imports every parser)."""
    return tuple(load_format(entry) for entry in FORMATS)


def all_detectors() -> tuple[Detector, ...]:
    """Every registered detector once, in the order of ``FORMATS`` (imports them all)."""
    modules = dict.fromkeys(m for entry in FORMATS for m in entry.detectors)
    return tuple(_load_detector(m) for m in modules)
