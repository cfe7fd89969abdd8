"""The engine imports a format's parser and detectors only when it meets that format, and
its lazily filled registry behaves as the eager one it replaced (every parser and every
detector imported up front)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

import spywall.detectors
import spywall.formats
from spywall import engine, registry
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
    truetype_computed_jump,
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
from spywall.formats.base import SNIFF_BYTES, FormatSpec
from spywall.samples import all_samples
from spywall.samples.containers import jpeg as jpeg_image
from spywall.samples.containers import zip_of

# The registry as it was when it imported everything: formats in sniffing order, and
# detectors in the order they ran on a format.
EAGER_FORMATS: tuple[FormatSpec, ...] = (
    zipfmt.SPEC, jpeg.SPEC, png.SPEC, heif.SPEC, gif.SPEC, tiff.SPEC, truetype.SPEC,
    woff.SPEC, pdf.SPEC, jbig2.SPEC, jbig2.EMBEDDED_SPEC, webp.SPEC, appended.SPEC,
)
EAGER_DETECTORS: tuple[Detector, ...] = tuple(m.DETECTOR for m in (
    appended_archive, heif_mask_extent, heif_multiple_alpha, heif_overlay_alpha_depth,
    gif_frame_resize, gif_zero_area_frame, dng_lossless_jpeg_components, dng_opcode_count,
    jbig2_refinement_flood, jbig2_symbol_overflow, tiff_tile_geometry, truetype_adjust,
    truetype_computed_jump, webp_huffman,
))

SAMPLES = list(all_samples())
HEADS = [s.data[:SNIFF_BYTES] for s in SAMPLES] + [
    b"", b"\x00", bytes(range(64)), b"\xff" * 64, b"GIF89a" + bytes(100) + b"%PDF-1.7",
    b"\x00" * 1000 + b"%PDF-1.4", b"PK\x05\x06" + bytes(18), b"RIFF\x00\x00\x00\x00WEBP",
]


def _ids(dets: tuple[Detector, ...] | list[Detector]) -> list[str]:
    return [d.info.id for d in dets]


def test_formats_are_the_eager_ones_in_the_same_order() -> None:
    assert [e.name for e in registry.FORMATS] == [s.name for s in EAGER_FORMATS]
    loaded = registry.all_formats()
    assert len(loaded) == len(EAGER_FORMATS)
    assert all(a is b for a, b in zip(loaded, EAGER_FORMATS, strict=True))
    reg = engine._Registry()
    assert all(reg.by_name(s.name) is s for s in EAGER_FORMATS)
    assert reg.by_name("dng") is None  # subtypes are reported, never forced or sniffed
    assert reg.by_name("no-such-format") is None


def test_sniffers_are_shared_not_copied() -> None:
    for entry, spec in zip(registry.FORMATS, EAGER_FORMATS, strict=True):
        assert entry.sniff is spec.sniff, entry.name
        assert entry.sniff.__module__ == "spywall.formats.magic"
    for module in (zipfmt, jpeg, png, heif, gif, tiff, truetype, woff, pdf, jbig2, webp):
        assert module.sniff is module.SPEC.sniff


@pytest.mark.parametrize("head", HEADS, ids=range(len(HEADS)))
def test_sniffing_chooses_the_same_formats(head: bytes) -> None:
    expected = [s for s in EAGER_FORMATS if s.sniff(head)]
    reg = engine._Registry()
    assert reg.sniff_all(head) == expected
    assert all(a is b for a, b in zip(reg.sniff_all(head), expected, strict=True))
    assert reg.sniff(head) is (expected[0] if expected else None)
    assert engine.sniff(head) == (expected[0].name if expected else None)


def test_each_reported_format_gets_the_same_detectors() -> None:
    """Judged by each detector's own ``info.formats``: a detector listed under a format
    whose parser does not report its names is missing where it belongs."""
    reg = engine._Registry()
    names = registry.format_names() | {d for det in EAGER_DETECTORS for d in det.info.formats}
    for name in sorted(names | {"zip", "woff2", "no-such-format"}):
        expected = [d for d in EAGER_DETECTORS if name in d.info.formats]
        assert _ids(reg.detectors(name)) == _ids(expected), name
        assert all(a is b for a, b in zip(reg.detectors(name), expected, strict=True))


def test_entries_list_only_detectors_for_what_their_parser_reports() -> None:
    for entry in registry.FORMATS:
        reported = {entry.name, *entry.subtypes}
        for module in entry.detectors:
            det = importlib.import_module(f"spywall.detectors.{module}").DETECTOR
            assert reported & set(det.info.formats), (entry.name, module)
    assert set(registry.all_detectors()) == set(EAGER_DETECTORS)
    assert len(registry.all_detectors()) == len(EAGER_DETECTORS)


def test_every_format_and_detector_module_is_registered() -> None:
    specs, dets = set(), set()
    for info in pkgutil.iter_modules(spywall.formats.__path__):
        module = importlib.import_module(f"spywall.formats.{info.name}")
        specs |= {getattr(module, a) for a in ("SPEC", "EMBEDDED_SPEC") if hasattr(module, a)}
    for info in pkgutil.iter_modules(spywall.detectors.__path__):
        module = importlib.import_module(f"spywall.detectors.{info.name}")
        if hasattr(module, "DETECTOR"):
            dets.add(module.DETECTOR)
    assert specs == set(registry.all_formats())
    assert dets == set(registry.all_detectors())


def test_every_format_a_sample_reports_has_its_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``Parsed.format`` no entry declares would find no detectors."""
    seen: set[str] = set()

    class Recording(engine._Registry):
        def detectors(self, fmt: str) -> tuple[Detector, ...]:
            seen.add(fmt)
            return super().detectors(fmt)

    monkeypatch.setattr(engine, "_REGISTRY", Recording())
    for sample in SAMPLES:
        engine.scan_bytes(sample.data, sample.name)
    assert seen <= registry.format_names(), seen - registry.format_names()
    assert {"dng", "avif", "ttc", "jbig2-embedded", "appended"} <= seen


def _formats_and_detectors_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    return {m for m in out if m.startswith(("spywall.formats", "spywall.detectors"))}


LIGHT = {"spywall.formats", "spywall.formats.magic", "spywall.formats.base",
         "spywall.formats.appended", "spywall.detectors", "spywall.detectors.base"}


def test_importing_the_engine_imports_no_parser_or_detector() -> None:
    loaded = _formats_and_detectors_after("import spywall.engine")
    assert loaded == LIGHT
    for heavy in ("spywall.formats.truetype", "spywall.formats.pdf", "spywall.formats.vp8l",
                  "spywall.formats.heif", "spywall.formats._glyphs",
                  "spywall.detectors.webp_huffman"):
        assert heavy not in loaded


def test_a_jpeg_with_a_zip_imports_only_what_it_needs(tmp_path: Path) -> None:
    f = tmp_path / "photo.jpg"
    f.write_bytes(jpeg_image() + zip_of({"lib/arm64-v8a/libstage.so": b"\x7fELF" + bytes(64)}))
    code = ("from pathlib import Path\nfrom spywall import engine\n"
            f"s = engine.scan_bytes(Path({str(f)!r}).read_bytes(), 'photo.jpg')\n"
            "assert [x.rule for x in s.findings] == ['appended-archive'], s\n"
            "assert s.format == 'jpeg' and not s.errors, s")
    compiled = {"spywall.formats._bytescan"} if find_spec("spywall.formats._bytescan") else set()
    assert _formats_and_detectors_after(code) == LIGHT | compiled | {
        "spywall.formats.jpeg", "spywall.formats.reader", "spywall.formats.zipfmt",
        "spywall.detectors.appended_archive"}
