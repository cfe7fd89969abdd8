"""Every payload in every container, nested in every order (``samples/nesting.py``).

For each crafted payload and its clean twin, each container alone and each ordered pair
of containers (the inner one may be specific to the payload: a font in WOFF2, a DNG in a
JPEG's Exif): the crafted one's detector fires, with its CVE, and the twin gives nothing
but the appended-archive finding an archive after an image is. Containers spywall cannot
open are reported as such, never skipped in silence.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.engine import scan_bytes
from spywall.registry import all_detectors
from spywall.samples import all_samples
from spywall.samples import nesting as ns

SAMPLES = {s.name: s.data for s in all_samples()}
ALLOWED = {"appended-archive"}  # an archive after an image is a finding of its own
CVES = {d.info.id: set(d.info.cves) for d in all_detectors()}


def _check(data: bytes, rule: str | None, label: str) -> None:
    subject = scan_bytes(data, label)
    found = {f.rule for f in subject.findings}
    if rule is None:
        assert found <= ALLOWED, (label, found)
        return
    assert rule in found, (label, found, [e.message for e in subject.errors])
    assert found - {rule} <= ALLOWED | {rule}, (label, found)
    for f in subject.findings:
        if f.rule == rule:
            assert set(f.cves) == CVES[rule], label


@pytest.mark.parametrize("outer", sorted(ns.WRAPPERS))
@pytest.mark.parametrize("payload", ns.PAYLOADS, ids=[p[0] for p in ns.PAYLOADS])
def test_payload_in_every_nesting(payload: tuple[str, str, str], outer: str) -> None:
    crafted, twin, rule = payload
    wrap_outer = ns.WRAPPERS[outer]
    inners = ns.wrappers_for(crafted)
    for data, expect in ((SAMPLES[crafted], rule), (SAMPLES[twin], None)):
        name = crafted if expect else twin
        _check(wrap_outer(data, name), expect, f"{outer}({name})")
        for inner, wrap_inner in sorted(inners.items()):
            nested = wrap_outer(wrap_inner(data, name), f"inner.{inner}")
            _check(nested, expect, f"{outer}({inner}({name}))")


@pytest.mark.parametrize("payload", ns.PAYLOADS, ids=[p[0] for p in ns.PAYLOADS])
def test_payload_in_specific_containers(payload: tuple[str, str, str]) -> None:
    crafted, twin, rule = payload
    for kind, (wrap, suffix) in ns.SPECIFIC.items():
        if crafted.endswith(suffix):
            _check(wrap(SAMPLES[crafted], crafted), rule, f"{kind}({crafted})")
            _check(wrap(SAMPLES[twin], twin), None, f"{kind}({twin})")


def test_table_covers_every_exploit_family() -> None:
    rules = {rule for _, _, rule in ns.PAYLOADS}
    assert {"truetype-adjust", "webp-huffman-overflow", "jbig2-symbol-overflow",
            "dng-lossless-jpeg-components", "gif-zero-area-frame"} <= rules


@pytest.mark.parametrize("outer", ["none", "zip", "pdf"])
def test_encrypted_zip_member_is_reported(outer: str) -> None:
    data = ns.encrypted_zip(SAMPLES["adjust-glyph-short-loca.ttf"], "font.ttf")
    if outer != "none":
        data = ns.WRAPPERS[outer](data, "locked.zip")
    subject = scan_bytes(data, "x")
    errors = [e for e in subject.errors if e.code == "unsupported"]
    assert errors, subject.errors
    assert errors[0].path.endswith("font.ttf")
    assert "encrypted" in errors[0].message


def test_encrypted_pdf_in_a_zip_is_reported() -> None:
    subject = scan_bytes(ns.WRAPPERS["zip"](SAMPLES["locked.pdf"], "locked.pdf"), "x.zip")
    assert [e.code for e in subject.errors] == ["unsupported"]
    assert "encrypted PDF" in subject.errors[0].message


@pytest.mark.parametrize("outer", ["none", "zip"])
def test_unknown_pdf_filter_is_reported(outer: str) -> None:
    data = ns.unknown_filter_pdf(SAMPLES["blastpass-plain.webp"])
    if outer == "zip":
        data = ns.WRAPPERS["zip"](data, "doc.pdf")
    subject = scan_bytes(data, "x")
    assert any("unknown filter /SpywallDecode" in e.message for e in subject.errors)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 64), st.integers(1, 64), st.booleans(), st.integers(5, 95),
       st.booleans())
def test_jpeg_ends_at_its_first_eoi(w: int, h: int, progressive: bool, quality: int,
                                    exif: bool) -> None:
    """Pillow's JPEGs (baseline or progressive, with or without Exif) end where Pillow's
    encoder stopped; a second image appended after one is appended data."""
    import io

    from PIL import Image

    from spywall.formats import jpeg
    from spywall.formats.base import ParseContext
    from spywall.limits import Budget

    buf = io.BytesIO()
    extra = {"exif": b"Exif\x00\x00" + SAMPLES["dng-benign-two-sample.dng"]} if exif else {}
    Image.effect_noise((w, h), 60).convert("RGB").save(
        buf, "JPEG", progressive=progressive, quality=quality, **extra)
    first = buf.getvalue()
    for data in (first, first + first):
        parsed = jpeg.parse(data, ParseContext(Budget()))
        assert parsed.logical_end == len(first)
