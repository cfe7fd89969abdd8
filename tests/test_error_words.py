"""Errors in plain words (#18): each error entry about a damaged input says what the input
is and which structure broke where; an input whose damage comes with a finding is shown
once, as the finding, in every format.

The damaged inputs are the crafted and benign samples cut short and with a byte flipped;
the numbers a message states are checked against the bytes themselves (struct), not
against the parser that wrote them.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from spywall.engine import scan_bytes
from spywall.incomplete import INCOMPLETE_RULE
from spywall.limits import Limits
from spywall.registry import FORMATS
from spywall.render.table import render
from spywall.report import ErrorEntry, Finding, FindingKind, Report, Severity, Subject
from spywall.samples import Sample, all_samples
from spywall.samples import webp as sw
from spywall.samples.containers import zip_of

SAMPLES = list(all_samples())
LABELS = tuple(f"{f.plain}: " for f in FORMATS if f.plain)
# Formats whose parsers are spywall's own from the first byte: every message names an
# offset (a PDF's come partly from qpdf, which names objects; a zip's from zipfile).
OWN_OFFSETS = ("WebP image: ", "PNG image: ", "JPEG image: ", "GIF image: ", "HEIF image: ",
               "web font (WOFF): ")
# Words of the old messages that explained nothing to a non-analyst.
OLD_WORDS = ("runs past the end of the data (", "stray bytes", "prefix code rejected",
             "need ", "bad zip", "bad PDF")


def _damaged(s: Sample) -> Iterator[bytes]:
    n = len(s.data)
    for cut in sorted({12, 20, 40, *(n * k // 5 for k in range(1, 5))}):
        if cut < n:
            yield s.data[:cut]
    for at in (9, 17, 33):
        if at < n:
            flipped = bytearray(s.data)
            flipped[at] ^= 0xFF
            yield bytes(flipped)


def _entries() -> Iterator[tuple[str, ErrorEntry]]:
    for s in SAMPLES:
        for data in _damaged(s):
            for e in scan_bytes(data, s.name, Limits(seconds=10)).errors:
                yield s.name, e


@pytest.fixture(scope="module")
def entries() -> list[tuple[str, ErrorEntry]]:
    return list(_entries())


def test_every_error_says_what_the_input_is(entries: list[tuple[str, ErrorEntry]]) -> None:
    assert len(entries) > 200  # the damage reaches every parser
    seen = set()
    for name, e in entries:
        if e.code in {"malformed", "truncated", "unsupported"}:
            assert e.message.startswith(LABELS), (name, e.message)
            seen.add(e.message[: e.message.index(": ") + 2])
            assert not any(w in e.message for w in OLD_WORDS), (name, e.message)
    # every format with a parser met damage here
    assert seen >= {"WebP image: ", "PNG image: ", "JPEG image: ", "GIF image: ",
                    "HEIF image: ", "TIFF image: ", "font file: ", "web font (WOFF): ",
                    "PDF document: ", "JBIG2 image: ", "JBIG2 image data: ", "zip archive: "}


def test_own_parsers_name_the_offset(entries: list[tuple[str, ErrorEntry]]) -> None:
    own = [(n, e.message) for n, e in entries if e.message.startswith(OWN_OFFSETS)]
    assert len(own) > 50
    for name, message in own:
        assert "offset" in message, (name, message)


def test_riff_size_in_words_against_the_header() -> None:
    data = SAMPLES[[s.name for s in SAMPLES].index("blastpass-plain.webp")].data[:20]
    (riff,) = struct.unpack_from("<I", data, 4)
    (e,) = [e for e in scan_bytes(data, "x.webp").errors if "RIFF" in e.message]
    assert e.message == (f"WebP image: the RIFF header says the file is {8 + riff + (riff & 1)} "
                         f"bytes long, but only {len(data)} are present (size at offset 4)")


def test_cut_chunk_in_words_against_the_bytes() -> None:
    body = b"\x00" * 10
    data = sw.riff(sw.chunk(b"VP8X", body) + sw.chunk(b"ICCP", b"\x01" * 30))[:-20]
    at = 12 + 8 + len(body)
    (length,) = struct.unpack_from("<I", data, at + 4)
    left = len(data) - at - 8
    messages = [e.message for e in scan_bytes(data, "y.webp").errors]
    assert (f"WebP image: the 'ICCP' chunk at offset {at} says it holds {length} bytes, but "
            f"only {left} follow") in messages


def test_cut_directories_in_words_against_the_bytes() -> None:
    """A font's table directory and a collection's offsets, and a BigTIFF header, cut
    short: the message names the structure, where it starts and how much it needs, with
    the counts read independently from the bytes."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder([".notdef"])
    fb.setupCharacterMap({})
    fb.setupGlyf({".notdef": TTGlyphPen(None).glyph()})
    fb.setupHorizontalMetrics({".notdef": (500, 0)})
    fb.setupHorizontalHeader()
    fb.setupMaxp()
    out = io.BytesIO()
    fb.save(out)
    font = out.getvalue()[:40]
    (num,) = struct.unpack_from(">H", font, 4)
    assert (f"font file: the table directory ({num} records of 16 bytes) at offset 12 is cut "
            f"short: {16 * num} bytes are needed, only {len(font) - 12} remain") in [
        e.message for e in scan_bytes(font, "cut.ttf").errors]
    ttc = b"ttcf" + struct.pack(">HHI", 1, 0, 9) + b"\x00" * 5
    assert ("font file: the font collection's table of 9 font offsets at offset 12 is cut "
            "short: 36 bytes are needed, only 5 remain") in [
        e.message for e in scan_bytes(ttc, "cut.ttc").errors]
    big = b"II+\x00" + struct.pack("<HH", 8, 0)
    assert ("TIFF image: the BigTIFF header (offset size, reserved word, first IFD offset) "
            "at offset 4 is cut short: 12 bytes are needed, only 4 remain") in [
        e.message for e in scan_bytes(big, "cut.tif").errors]


def _problems(report: Report) -> str:
    buf = io.StringIO()
    render(report.finalize(), buf)
    text = buf.getvalue()
    return text[text.index("Could not fully examine"):] if "Could not fully" in text else ""


def _report(*subjects: Subject) -> Report:
    return Report(tool_version="0", command="scan", started=datetime(2026, 1, 1, tzinfo=UTC),
                  subjects=list(subjects))


POSITIVE = [s for s in SAMPLES if s.expected]


@pytest.mark.parametrize("sample", POSITIVE, ids=[s.name for s in POSITIVE])
def test_an_input_with_a_finding_is_shown_once(sample: Sample,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Alone and as a member of a zip beside a damaged benign member: the crafted input's
    own damage (a prefix code the decoder refuses, a PDF qpdf calls damaged around its
    JBIG2 stream) is not listed apart; the damaged sibling is."""
    monkeypatch.setenv("COLUMNS", "200")
    alone = scan_bytes(sample.data, f"in/{sample.name}")
    assert alone.findings, sample.name
    assert sample.name not in _problems(_report(alone))
    broken = SAMPLES[[s.name for s in SAMPLES].index("benign-twin-plain.webp")].data[:20]
    packed = scan_bytes(zip_of({sample.name: sample.data, "broken.webp": broken}),
                        "in/both.zip")
    problems = _problems(_report(packed))
    assert "broken.webp" in problems
    assert sample.name not in problems


def test_a_damaged_input_without_a_finding_is_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    data = SAMPLES[[s.name for s in SAMPLES].index("benign-twin-plain.webp")].data[:20]
    subject = scan_bytes(data, "in/cut.webp")
    assert not subject.findings
    assert "cut.webp" in _problems(_report(subject))


def test_a_cap_in_a_member_does_not_hide_the_container_damage(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``incomplete-examination`` finding tells only its own place: the damaged PDF
    around a stream that hit a limit is still listed as damaged; an exploit finding in
    a stream tells the PDF's damage too."""
    monkeypatch.setenv("COLUMNS", "200")
    damage = ErrorEntry(path="in/d.pdf", code="malformed", message="PDF document: qpdf: x")
    capped = Subject(path="in/d.pdf", errors=[damage], findings=[Finding(
        rule=INCOMPLETE_RULE, title="t", kind=FindingKind.HEURISTIC,
        severity=Severity.MEDIUM, message="m", path="in/d.pdf!/obj 5")])
    assert "qpdf" in _problems(_report(capped))
    exploit = Subject(path="in/d.pdf", errors=[damage], findings=[Finding(
        rule="jbig2-symbol-overflow", title="t", kind=FindingKind.EXPLOIT,
        severity=Severity.CRITICAL, message="m", path="in/d.pdf!/obj 5")])
    assert "qpdf" not in _problems(_report(exploit))
    sibling = Subject(path="in/d.pdf", errors=[damage], findings=[Finding(
        rule="jbig2-symbol-overflow", title="t", kind=FindingKind.EXPLOIT,
        severity=Severity.CRITICAL, message="m", path="in/d.pdfx")])
    assert "qpdf" in _problems(_report(sibling))  # a name that merely starts alike
