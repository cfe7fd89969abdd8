"""MakerNote layouts, DNGPrivateData and DNG previews, read by an independent reader.

For every sample of ``samples/tiff_embedded.py`` that hides the CVE-2025-43300 payload
in a maker's note, Pillow finds the MakerNote bytes (``Image.Exif``), the test places the
note's IFD where the maker's layout says (the public layout descriptions, written out
here again, not spywall's table), and Pillow's own IFD reader (``ImageFileDirectory_v2``)
walks from there to the raw IFD: its Compression, SamplesPerPixel and the SOF3 component
count of its strip must be the trigger (or, for the twin, a consistent stream) exactly
when spywall reports the finding. The DNG preview is read by tifffile and Pillow.
"""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.engine import scan_bytes
from spywall.formats import tiff, tiff_embedded
from spywall.formats.base import ParseContext
from spywall.limits import Budget
from spywall.samples import tiff_embedded as te
from spywall.samples.tiff_dng import IFD

RULE = "dng-lossless-jpeg-components"
TYPED_POINTER = 0xC0DE  # a private tag whose type is IFD (13)
POINTERS = (
    tiff.SUB_IFDS,
    tiff.EXIF_IFD,
    tiff.GPS_IFD,
    tiff.INTEROP_IFD,
    te.OLYMPUS_EQUIPMENT,
    TYPED_POINTER,
)
# name -> how the layout finds the IFD: ("embedded", TIFF header offset), ("rebased",
# order or offset of the order mark, IFD offset in the note), ("file", prefix length,
# offset of an order mark or 0: the file's),
# ("note", 0): an IFD at the note's start, offsets from the note.
LAYOUTS: dict[str, tuple[str, str | int, int]] = {
    "nikon": ("embedded", 10, 0),
    "huawei": ("embedded", 8, 0),
    "apple": ("rebased", ">", 14),
    "fujifilm": ("rebased", "<", -1),
    "olympus": ("rebased", 8, 12),
    "om-system": ("rebased", 12, 16),
    "pentax": ("rebased", 8, 10),
    "olympus-equipment": ("rebased", 8, 12),
    **{name: ("file", len(prefix), 0) for name, prefix in te.IN_FILE_PREFIXES},
    "note-based": ("note", 0, 0),
    "pentax-aoc": ("file", 6, 4),
}


def raw_streams(
    buf: bytes, at: int, order: str, depth: int = 0, chain: bool = False
) -> list[tuple[int, int, int]]:
    """(Compression, SamplesPerPixel, SOF3 Nf of the first strip) of every IFD Pillow
    reaches from the IFD at ``at`` in ``buf`` (offsets counted from ``buf``'s start)."""
    from PIL import TiffImagePlugin

    head = (b"II*\x00" if order == "<" else b"MM\x00*") + bytes(4)
    fp = io.BytesIO(buf)
    fp.seek(at)
    ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=head)
    ifd.load(fp)
    out: list[tuple[int, int, int]] = []
    strips = ifd.get(tiff.STRIP_OFFSETS)
    if strips:
        first = strips[0] if isinstance(strips, tuple) else strips
        sof = buf.find(b"\xff\xc3", first)
        out.append((ifd.get(tiff.COMPRESSION), ifd.get(tiff.SAMPLES_PER_PIXEL), buf[sof + 9]))
    for tag in POINTERS:
        value = ifd.get(tag)
        for child in value if isinstance(value, tuple) else (() if value is None else (value,)):
            if depth < 6:
                out.extend(raw_streams(buf, child, order, depth + 1, chain))
    if chain and ifd.next and depth < 6:
        out.extend(raw_streams(buf, ifd.next, order, depth + 1, chain))
    return out


def _order(mark: str | int, note: bytes) -> str:
    return mark if isinstance(mark, str) else {b"II": "<", b"MM": ">"}[note[mark : mark + 2]]


def oracle(name: str, data: bytes) -> list[tuple[int, int, int]]:
    """The raw IFDs of the MakerNote of sample ``name``, read as its maker lays it out."""
    from PIL import Image

    exif = Image.Exif()
    exif.load(data)
    note = exif.get_ifd(tiff.EXIF_IFD)[tiff.MAKER_NOTE]
    assert isinstance(note, bytes)
    kind, a, b = LAYOUTS[name]
    order = "<" if data[:2] == b"II" else ">"
    if kind == "embedded":
        inner = note[int(a) :]
        head_order = "<" if inner[:2] == b"II" else ">"
        (first,) = struct.unpack_from(f"{head_order}I", inner, 4)
        return raw_streams(inner, first, head_order)
    if kind == "rebased":
        at = struct.unpack_from("<I", note, 8)[0] if b < 0 else b
        return raw_streams(note, at, _order(a, note))
    if kind == "file":
        note_at = data.find(note)
        assert data.find(note, note_at + 1) < 0
        return raw_streams(data, note_at + int(a), _order(b, note) if b else order)
    return raw_streams(note, 0, order)


MAKERNOTE_SAMPLES = [
    (name[len("makernote-") : -len(".tif")], bad, data)
    for bad in (True, False)
    for name, data, _ in te.hidings(bad)
    if name.startswith("makernote-")
]


@pytest.mark.parametrize(
    ("name", "bad", "data"),
    MAKERNOTE_SAMPLES,
    ids=[f"{n}-{'bad' if b else 'twin'}" for n, b, _ in MAKERNOTE_SAMPLES],
)
def test_makernote_layouts_agree_with_pillow(name: str, bad: bool, data: bytes) -> None:
    read = [r for r in oracle(name, data) if r[0] == tiff.LOSSLESS_JPEG]
    assert read == [(tiff.LOSSLESS_JPEG, 2, 1 if bad else 2)]
    found = {f.rule for f in scan_bytes(data, f"{name}.tif").findings}
    assert found == ({RULE} if bad else set())


def test_every_layout_has_a_sample() -> None:
    assert {n for n, _, _ in MAKERNOTE_SAMPLES} == set(LAYOUTS)


def _private_record(dng: bytes) -> tuple[str, int, bytes]:
    """(byte order, original offset, note) of the DNGPrivateData MakerNote (Adobe's DNG
    specification, "DNGPrivateData"), the value read by Pillow."""
    from PIL import Image

    exif = Image.Exif()
    exif.load(dng)
    value = exif[tiff.DNG_PRIVATE_DATA]
    assert value[:10] == b"Adobe\x00MakN"
    count, mark, original = struct.unpack_from(">I2sI", value, 10)
    return {b"II": "<", b"MM": ">"}[mark], original, value[20 : 14 + count]


@pytest.mark.parametrize("bad", [True, False])
def test_dng_private_makernotes(bad: bool) -> None:
    samples = {name: data for name, data, _ in te.hidings(bad)}
    order, original, note = _private_record(samples["dng-private-canon.dng"])
    placed = bytes(original) + note  # the note where it lay in the original file
    assert raw_streams(placed, original, order) == [(7, 2, 1 if bad else 2)]
    order, original, note = _private_record(samples["dng-private-nikon.dng"])
    assert note[:6] == b"Nikon\x00"
    inner = note[10:]
    inner_order = "<" if inner[:2] == b"II" else ">"
    (first,) = struct.unpack_from(f"{inner_order}I", inner, 4)
    assert (7, 2, 1 if bad else 2) in raw_streams(inner, first, inner_order)
    for name in ("dng-private-canon.dng", "dng-private-nikon.dng"):
        found = {f.rule for f in scan_bytes(samples[name], name).findings}
        assert found == ({RULE} if bad else set())


@pytest.mark.parametrize("bad", [True, False])
def test_dng_preview_jpeg_exif(bad: bool) -> None:
    import tifffile
    from PIL import Image

    data = {n: d for n, d, _ in te.hidings(bad)}["dng-preview-exif.dng"]
    with tifffile.TiffFile(io.BytesIO(data)) as tf:
        previews = [p for p in tf.pages[0].pages if p.samplesperpixel == 3]
        (off,), (size,) = previews[0].dataoffsets, previews[0].databytecounts
    with Image.open(io.BytesIO(data[off : off + size])) as im:
        inner = im.info["exif"][6:]
    order = "<" if inner[:2] == b"II" else ">"
    (first,) = struct.unpack_from(f"{order}I", inner, 4)
    assert (7, 2, 1 if bad else 2) in raw_streams(inner, first, order)
    assert {f.rule for f in scan_bytes(data, "p.dng").findings} == ({RULE} if bad else set())


def test_dng_private_record_bounds() -> None:
    good = tiff_embedded.dng_private_note(
        b"Adobe\x00MakN" + struct.pack(">I2sI", 26, b"II", 8) + bytes(20)
    )
    assert good[0] is not None
    assert good[0][:4] == b"II*\x00"
    far = b"Adobe\x00MakN" + struct.pack(">I2sI", 26, b"II", 1 << 30) + bytes(20)
    assert tiff_embedded.dng_private_note(far)[1] is not None
    assert tiff_embedded.dng_private_note(b"Adobe\x00MakN\x00")[1] is not None
    assert (
        tiff_embedded.dng_private_note(b"Adobe\x00MakN" + bytes(4) + b"XX" + bytes(8))[1]
        is not None
    )
    assert tiff_embedded.dng_private_note(b"SomethingElse") == (None, None)


def test_too_many_jpeg_strips_are_reported() -> None:
    jpeg = te.jpeg_with_exif(te.payload_dng(False))
    w = te.TiffWriter()
    at = w.blob(jpeg)
    n = tiff.MAX_JPEG_SEGMENTS + 3
    ifd0 = w.ifd(
        {
            tiff.IMAGE_WIDTH: (te.LONG, (16,)),
            tiff.IMAGE_LENGTH: (te.LONG, (16 * n,)),
            tiff.ROWS_PER_STRIP: (te.LONG, (16,)),
            tiff.STRIP_OFFSETS: (te.LONG, (at,) * n),
            tiff.STRIP_BYTE_COUNTS: (te.LONG, (len(jpeg),) * n),
        }
    )
    parsed = tiff.parse(w.finish(ifd0), ParseContext(Budget()))
    assert sum(c.error is None for c in parsed.children) == tiff.MAX_JPEG_SEGMENTS
    assert [c.code for c in parsed.children if c.error] == ["limit"]


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(sorted(LAYOUTS)), st.booleans(), st.integers(0, 3))
def test_makernote_hidden_behind_more_notes(name: str, bad: bool, wraps: int) -> None:
    """The MakerNote sample wrapped in Nikon notes again and again: found at any depth
    within the engine's limit, the twin never flagged."""
    data = {n: d for n, d, _ in te.hidings(bad)}[f"makernote-{name}.tif"]
    for _ in range(wraps):
        data = te._with_note(lambda w, d=data: b"Nikon\x00\x02\x10\x00\x00" + d)
    subject = scan_bytes(data, "x.tif")
    assert {f.rule for f in subject.findings} == ({RULE} if bad else set())


def test_quiet_second_reading_adds_no_warnings() -> None:
    """A Canon-style note is read twice (file base, note base); the second reading of
    a clean note adds no warnings of its own."""
    data = {n: d for n, d, _ in te.hidings(False)}["makernote-canon.tif"]
    parsed = tiff.parse(data, ParseContext(Budget()))
    labels = [i.label for i in parsed.structure.ifds]  # type: ignore[attr-defined]
    assert "IFD0/EXIF/MakerNote" in labels
    assert "IFD0/EXIF/MakerNote(note-based)" in labels
    assert not any("note-based" in w for w in parsed.warnings)


def test_second_readings_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_REREADS notes read again in the note's coordinates, the file is reported
    incomplete: the note-based payload is not found, and the file is not clean."""
    data = {n: d for n, d, _ in te.hidings(True)}["makernote-note-based.tif"]
    monkeypatch.setattr(tiff, "MAX_REREADS", 0)
    subject = scan_bytes(data, "x.tif")
    assert {f.rule for f in subject.findings} == {"incomplete-examination"}
    assert any("not read with offsets counted from the note" in e.message for e in subject.errors)
    monkeypatch.setattr(tiff, "MAX_REREADS", 64)
    monkeypatch.setattr(tiff, "MAX_REREAD_BYTES", 8)
    assert "incomplete-examination" in {f.rule for f in scan_bytes(data, "x.tif").findings}


def behind(path: list[str], bad: bool, little: bool) -> bytes:
    """A TIFF whose IFD0 leads to the raw IFD through ``path`` (outermost first)."""
    w = te.TiffWriter(little)
    target = w.ifd(te.raw_ifd(w, (16, 8), 2, [te.stream(bad)]))
    for kind in reversed(path):
        if kind == "subifd":
            decoy = w.ifd({tiff.IMAGE_WIDTH: (te.LONG, (1,))})
            target = w.ifd({tiff.SUB_IFDS: (te.LONG, (decoy, target))})
        elif kind == "next":
            target = w.ifd({tiff.IMAGE_WIDTH: (te.LONG, (1,))}, next_ifd=target)
        else:
            tag, typ = {
                "exif": (tiff.EXIF_IFD, te.LONG),
                "gps": (tiff.GPS_IFD, te.LONG),
                "interop": (tiff.INTEROP_IFD, te.LONG),
                "typed": (TYPED_POINTER, IFD),
            }[kind]
            target = w.ifd({tag: (typ, (target,))})
    return w.finish(target)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(["exif", "gps", "interop", "subifd", "next", "typed"]),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
    st.booleans(),
)
def test_raw_ifd_behind_any_path_of_pointers(path: list[str], bad: bool, little: bool) -> None:
    """EXIF, GPS and Interop pointers, SubIFDs, next-IFD links and entries of type IFD,
    in any order: Pillow's reader reaches the raw IFD the same way, and spywall finds it."""
    data = behind(path, bad, little)
    order = "<" if little else ">"
    (first,) = struct.unpack_from(f"{order}I", data, 4)
    read = [r for r in raw_streams(data, first, order, chain=True) if r[0] == tiff.LOSSLESS_JPEG]
    assert read == [(tiff.LOSSLESS_JPEG, 2, 1 if bad else 2)]
    assert {f.rule for f in scan_bytes(data, "x.tif").findings} == ({RULE} if bad else set())
