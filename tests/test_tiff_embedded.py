"""Every IFD a decoder follows: MakerNotes of each layout, Exif in JPEG and HEIF, JPEG
thumbnails, DNG in PDF images (samples in ``samples/tiff_embedded.py``); bounded."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.engine import scan_bytes
from spywall.formats import tiff, tiff_embedded
from spywall.formats.base import ParseContext
from spywall.limits import Budget, Limits
from spywall.samples import tiff_embedded as te
from spywall.samples.tiff_dng import LONG, UNDEFINED, TiffWriter

RULE = "dng-lossless-jpeg-components"


def rules(data: bytes, name: str = "x") -> set[str]:
    return {f.rule for f in scan_bytes(data, name).findings}


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["apple", "fujifilm", "olympus"]), st.integers(0, 40), st.booleans(),
       st.booleans())
def test_rebased_makernote_anywhere(maker: str, pad: int, little: bool, bad: bool) -> None:
    """A rebased MakerNote IFD at a random place after its prefix, either byte order."""
    prefix = {"apple": b"Apple iOS\x00\x00\x01" + (b"II" if little else b"MM"),
              "fujifilm": b"FUJIFILM" + struct.pack("<I", 12 + 2 * pad),
              "olympus": b"OLYMPUS\x00" + (b"II" if little else b"MM") + b"\x03\x00"}[maker]
    at = 12 + 2 * pad if maker != "apple" else 14 + 2 * pad
    if maker == "apple":
        prefix = prefix[:10] + b"\x00\x01" + prefix[12:14]
    order_little = little if maker != "fujifilm" else True
    note = te.rebased_note(prefix, at, bad, order_little)
    # the parser finds the IFD where the maker's layout says (fixed offsets for Apple and
    # Olympus: a padded note moves the IFD where those makers' readers do not look)
    expected = bad and (pad == 0 or maker == "fujifilm")
    got = rules(te._with_note(lambda w: note, little), "x.tif")
    assert got == ({RULE} if expected else set())


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([b"SONY DSC \x00\x00\x00", b"Panasonic\x00\x00\x00", b""]),
       st.booleans(), st.booleans())
def test_in_file_makernote(prefix: bytes, little: bool, bad: bool) -> None:
    data = te._with_note(te.in_file_note(prefix, bad), little)
    assert rules(data, "x.tif") == ({RULE} if bad else set())


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 5), st.booleans())
def test_thumbnails_nested_to_any_depth(depth: int, bad: bool) -> None:
    """TIFF -> thumbnail JPEG -> Exif TIFF -> thumbnail JPEG ... -> the DNG."""
    data = te.jpeg_with_exif(te.payload_dng(bad))
    for _ in range(depth - 1):
        data = te.jpeg_with_exif(te.tiff_with_thumbnail(data)) if len(data) < 60_000 else data
    subject = scan_bytes(te.tiff_with_thumbnail(data), "x.tif")
    found = {f.rule for f in subject.findings}
    limited = any(e.code == "limit" for e in subject.errors)
    if depth <= 3:  # six containers deep: within the default depth limit
        assert found == ({RULE} if bad else set())
    else:  # found, or reported as too deep (fail closed): never silently skipped
        exploits = found - {"incomplete-examination"}
        assert exploits == ({RULE} if bad else set()) or (
            limited and "incomplete-examination" in found and not exploits)
    for f in subject.findings:
        if f.rule != "incomplete-examination":
            assert "CVE-2025-43300" in f.cves


def test_makernote_loop_and_caps() -> None:
    """A MakerNote IFD (no prefix) whose SubIFD points back at the EXIF IFD, and a chain of
    notes each holding the next: walked once each, within MAX_IFDS."""
    w = TiffWriter()
    slot = w.blob(bytes(18))
    exif = w.ifd({tiff.MAKER_NOTE: (UNDEFINED, bytes(18))})
    note_at = exif + 2 + 8  # the MakerNote entry's value offset field
    (value_at,) = struct.unpack_from("<I", w.buf, note_at)
    w.buf[value_at : value_at + 18] = (struct.pack("<H", 1)
                                       + struct.pack("<HHII", tiff.SUB_IFDS, LONG, 1, exif)
                                       + bytes(4))
    data = w.finish(w.ifd({tiff.EXIF_IFD: (LONG, (exif,)), 0x0100: (LONG, (slot,))}))
    parsed = tiff.parse(data, ParseContext(Budget()))
    labels = [i.label for i in parsed.structure.ifds]  # type: ignore[attr-defined]
    assert "IFD0/EXIF/MakerNote" in labels
    assert any("loop" in w for w in parsed.warnings)


def test_nested_makernote_tiffs_stop_at_the_depth_limit() -> None:
    data = te.payload_dng(True)
    for _ in range(12):
        data = te._with_note(lambda w, d=data: b"Nikon\x00\x02\x10\x00\x00" + d)
    subject = scan_bytes(data, "deep.tif", Limits(max_depth=6))
    assert any(e.code == "limit" for e in subject.errors)
    assert RULE not in {f.rule for f in subject.findings}  # deeper than allowed: reported
    subject = scan_bytes(data, "deep.tif", Limits(max_depth=20))
    assert RULE in {f.rule for f in subject.findings}


def test_proprietary_makernote_is_left_alone() -> None:
    note = b"\x13\x37" + bytes(range(200))
    assert tiff_embedded.maker_note(note, 0, len(note), "<") == tiff_embedded.Note()
    data = te._with_note(lambda w: note)
    subject = scan_bytes(data, "x.tif")
    assert not subject.findings
    assert not subject.errors


def test_heif_exif_item_stored_elsewhere_is_an_error_entry() -> None:
    children = tiff_embedded.heif_exif_items(b"", {7: "Exif"}, {})
    assert [c.error for c in children] == ["Exif item with no location: not examined"]
    bad = list(tiff_embedded.heif_exif(b"\x00\x00\x00\x02xxNOPE", 3, ((0, 10),)))
    assert bad[0].error is not None


@settings(max_examples=10, deadline=None)
@given(st.sampled_from(["PNG", "WEBP"]), st.booleans(), st.booleans())
def test_exif_chunks_of_png_and_webp(fmt: str, bad: bool, little: bool) -> None:
    data = te.image_with_exif(fmt, te.payload_dng(bad, little))
    assert rules(data) == ({RULE} if bad else set())


@pytest.mark.parametrize("kind", ["mime", "tiff", "zzzz"])
@pytest.mark.parametrize("bad", [True, False])
def test_dng_carried_as_a_heif_item(kind: str, bad: bool) -> None:
    """A DNG stored as a HEIF item of a type other than Exif (a ``mime`` item, an unknown
    type) is examined like the file it is; a coded image item whose data happens to start
    with a TIFF header is not taken for one."""
    from spywall.samples import heif as hs

    dng = te.payload_dng(bad)
    image = hs.Item(1, "hvc1", (hs.ispe(64, 64), hs.hvcc(8)))
    data = hs.heif([image, hs.Item(2, kind, (), dng)])
    assert rules(data, "x.heic") == ({RULE} if bad else set())
    decoy = hs.heif([hs.Item(1, "hvc1", (hs.ispe(64, 64), hs.hvcc(8)), dng)])
    assert rules(decoy, "y.heic") == set()


@pytest.mark.parametrize("little", [True, False])
@pytest.mark.parametrize("bad", [True, False])
def test_makers_untyped_sub_directories(little: bool, bad: bool) -> None:
    """Sub-directories that makers store without the IFD type, read where their readers
    read them: an older Olympus note's Equipment (0x2010) as an UNDEFINED block that is
    the directory, and a Nikon type-3 note's preview IFD (0x0011) as a LONG offset. The
    trigger there is found; the clean twin is not flagged. Pillow's IFD reader is the
    independent check that a directory lies where the pointer says."""
    import io

    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    from spywall.samples.tiff_dng import TiffWriter, raw_ifd

    order = "<" if little else ">"
    prefix = b"OLYMPUS\x00" + (b"II" if little else b"MM") + b"\x03\x00"
    note = bytearray(te.rebased_note(prefix, 12, bad, little, pointer=(0x2010, UNDEFINED)))
    (sub,) = struct.unpack_from(f"{order}I", note, 12 + 2 + 8)
    struct.pack_into(f"{order}I", note, 12 + 2 + 4, 96)      # a block of 96 bytes at sub
    olympus = te._with_note(lambda w: bytes(note), little)
    ifd = ImageFileDirectory_v2(ifh=(b"II*\x00" if little else b"MM\x00*") + bytes(4))
    fp = io.BytesIO(bytes(note))
    fp.seek(sub)
    ifd.load(fp)
    assert ifd.get(277) == 2                                 # SamplesPerPixel 2 is there
    assert rules(olympus, "olympus.orf") == ({RULE} if bad else set())

    w = TiffWriter(little)
    preview = w.ifd(raw_ifd(w, (16, 8), 2, [te.stream(bad)]))
    nikon_tiff = w.finish(w.ifd({0x0011: (LONG, (preview,))}))
    nikon = te._with_note(lambda w: b"Nikon\x00\x02\x10\x00\x00" + nikon_tiff, little)
    assert rules(nikon, "nikon.nef") == ({RULE} if bad else set())


def test_heif_tiff_items_past_the_caps_are_not_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TIFF item over the size cap, or TIFF items past the count cap, are not examined:
    the input is reported incomplete (fail closed), never clean."""
    from spywall.incomplete import INCOMPLETE_RULE
    from spywall.samples import heif as hs

    image = hs.Item(1, "hvc1", (hs.ispe(64, 64), hs.hvcc(8)))
    clean = te.payload_dng(False)
    monkeypatch.setattr(tiff_embedded, "MAX_EXIF_BYTES", len(clean) - 1)
    assert rules(hs.heif([image, hs.Item(2, "mime", (), clean)]), "big.heic") == {
        INCOMPLETE_RULE}
    monkeypatch.undo()
    many = [image, *(hs.Item(i, "mime", (), clean)
                     for i in range(2, tiff_embedded.MAX_TIFF_ITEMS + 3))]
    assert rules(hs.heif(many), "many.heic") == {INCOMPLETE_RULE}
    assert rules(hs.heif(many[:tiff_embedded.MAX_TIFF_ITEMS + 1]), "ok.heic") == set()
