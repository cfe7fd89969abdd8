"""The PDF container: which streams become children, caps, encryption, damage."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib

import pikepdf
import pytest

from spywall.engine import scan_bytes
from spywall.errors import FormatError, LimitExceeded
from spywall.formats import pdf
from spywall.formats.base import Child, ParseContext, Parsed
from spywall.limits import Budget, Limits, MiB
from spywall.samples import pdf_jbig2 as s
from spywall.samples.containers import zip_of

ATTACK = s.join(s.forcedentry_segments())


def parse(data: bytes, limits: Limits | None = None) -> tuple[Parsed, list[Child]]:
    parsed = pdf.parse(data, ParseContext(Budget(limits or Limits())))
    return parsed, list(parsed.children)


def doc(parsed: Parsed) -> pdf.PdfDocument:
    assert isinstance(parsed.structure, pdf.PdfDocument)
    return parsed.structure


def rules(data: bytes, name: str = "x.pdf") -> set[str]:
    return {f.rule for f in scan_bytes(data, name).findings}


def test_sniff_within_the_first_kib() -> None:
    # PDF readers accept the header anywhere in the first 1024 bytes
    assert pdf.sniff(b"%PDF-1.7\n")
    assert pdf.sniff(b"\x00" * 1000 + b"%PDF-1.4")
    assert not pdf.sniff(b"\x00" * 1020 + b"%PDF-1.4")
    assert not pdf.sniff(b"%PDF")


def test_header_after_junk_is_still_examined() -> None:
    data = b"\x00junk file\n" + s.jbig2_pdf(ATTACK)
    parsed, children = parse(data)
    assert doc(parsed).header_offset == 11
    assert [c.format for c in children] == ["jbig2-embedded"]
    assert rules(data, "x.gif") == {"jbig2-symbol-overflow"}


def test_jbig2_child_is_globals_then_page() -> None:
    dicts = s.join(s.forcedentry_segments(page=0)[1:3])
    page = s.join([s.segment(1, s.PAGE_INFO, s.page_info())])
    parsed, (child,) = parse(s.jbig2_pdf(page, ["ASCII85Decode", "FlateDecode"], dicts,
                                         objstm=True))
    assert child.format == "jbig2-embedded"
    assert child.data == dicts + page
    (stream,) = doc(parsed).streams
    assert stream.filters == ("ASCII85Decode", "FlateDecode", "JBIG2Decode")
    assert child.name == f"obj {stream.number} {stream.generation} (JBIG2)"


def test_object_streams_are_reached() -> None:
    data = s.jbig2_pdf(ATTACK, ["FlateDecode"], objstm=True)
    assert b"/ObjStm" in data
    assert b"/XRef" in data
    parsed, children = parse(data)
    assert doc(parsed).objects >= 6
    assert len(children) == 1


def _pdf_with(streams: dict[str, pikepdf.Dictionary | pikepdf.Stream], *, objstm: bool = False,
              builder: pikepdf.Pdf | None = None) -> bytes:
    p = builder or pikepdf.new()
    p.add_blank_page(page_size=(72, 72))
    for key, value in streams.items():
        p.Root[f"/{key}"] = p.make_indirect(value)
    return s.save(p, objstm)


def _stream(p: pikepdf.Pdf, raw: bytes, **keys: object) -> pikepdf.Stream:
    st = pikepdf.Stream(p, raw)
    for k, v in keys.items():
        st[f"/{k}"] = v
    return st


def test_selection_of_streams() -> None:
    p = pikepdf.new()
    jpeg_bytes = b"\xff\xd8\xff\xe0" + bytes(20)
    font = b"\x00\x01\x00\x00 font program"
    name = pikepdf.Name
    streams = {
        "Raw": _stream(p, zlib.compress(bytes(300)), Subtype=name.Image, Filter=name.FlateDecode),
        "Dct": _stream(p, zlib.compress(jpeg_bytes), Subtype=name.Image,
                       Filter=pikepdf.Array([name.FlateDecode, name.DCTDecode])),
        "Jpx": _stream(p, b"\x00\x00\x00\x0cjP  ", Subtype=name.Image, Filter=name.JPXDecode),
        "Ccitt": _stream(p, b"\x00", Subtype=name.Image, Filter=name.CCITTFaxDecode),
        "Content": _stream(p, b"BT ET"),
        "Embedded": _stream(p, b"PK\x03\x04 attached", Type=name.EmbeddedFile),
        # a font descriptor written directly inside the font dictionary
        "Font": pikepdf.Dictionary(Type=name.Font, FontDescriptor=pikepdf.Dictionary(
            FontFile3=p.make_indirect(_stream(p, s.encode(font, ["LZWDecode"]),
                                              Filter=name.LZWDecode)))),
        "Other": _stream(p, ATTACK, Filter=name.JBIG2Decode),  # JBIG2 outside any image
    }
    parsed, children = parse(_pdf_with(streams, builder=p))
    got = {c.name.split("(")[1].rstrip(")"): c for c in children}
    assert set(got) == {"Image", "EmbeddedFile", "FontFile3", "JBIG2"}
    assert got["Image"].data == jpeg_bytes
    assert got["FontFile3"].data == font
    assert got["EmbeddedFile"].data.startswith(b"PK\x03\x04")
    assert got["JBIG2"].format == "jbig2-embedded"
    roles = sorted(st.role for st in doc(parsed).streams)
    assert roles == ["EmbeddedFile", "FontFile3", "Image", "Image", "Image", "Image", "JBIG2"]


def test_bad_stream_is_an_error_child_and_the_rest_is_examined() -> None:
    p = pikepdf.new()
    name = pikepdf.Name
    streams = {
        "A": _stream(p, b"\x78\x9c\xff\xff\xff", Type=name.EmbeddedFile, Filter=name.FlateDecode),
        "B": _stream(p, b"x", Type=name.EmbeddedFile,
                     Filter=pikepdf.Array([name.ASCIIHexDecode] * 9)),
        "C": _stream(p, ATTACK, Subtype=name.Image, Filter=name.JBIG2Decode),
    }
    data = _pdf_with(streams, builder=p)
    _, children = parse(data)
    errors = [c.error for c in children if c.error]
    assert len(errors) == 2
    assert any("Flate" in e for e in errors)
    assert any("over the cap" in e for e in errors)
    subject = scan_bytes(data, "x.pdf")
    assert {f.rule for f in subject.findings} == {"jbig2-symbol-overflow"}
    assert [e.code for e in subject.errors] == ["malformed", "malformed"]


def test_a_bomb_does_not_hide_what_follows() -> None:
    p = pikepdf.new()
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(bytes(MiB)) for _ in range(32)) + comp.flush()
    streams = {
        "Bomb": _stream(p, body, Type=pikepdf.Name.EmbeddedFile, Filter=pikepdf.Name.FlateDecode),
        "Img": _stream(p, zlib.compress(ATTACK), Subtype=pikepdf.Name.Image,
                       Filter=pikepdf.Array([pikepdf.Name.FlateDecode, pikepdf.Name.JBIG2Decode])),
    }
    subject = scan_bytes(_pdf_with(streams, builder=p), "x.pdf")
    assert {f.rule for f in subject.findings} == {"jbig2-symbol-overflow",
                                                  "incomplete-examination"}
    (err,) = subject.errors
    assert err.code == "limit"
    assert "EmbeddedFile" in err.message


def test_flate_bomb_memory_and_time() -> None:
    data = s.flate_bomb_pdf(mib=128)
    tracemalloc.start()
    t0 = time.monotonic()
    subject = scan_bytes(data, "bomb.pdf")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.monotonic() - t0 < 120  # a hang guard, not a speed test
    assert [e.code for e in subject.errors] == ["limit"]
    assert peak < 64 * MiB


def test_total_budget_exhausted_stops_at_once() -> None:
    data = s.jbig2_pdf(ATTACK, ["ASCIIHexDecode"])
    subject = scan_bytes(data, "x.pdf", Limits(max_total_decompressed=1000))
    assert [e.code for e in subject.errors] == ["limit"]
    assert [f.rule for f in subject.findings] == ["incomplete-examination"]


def test_encryption() -> None:
    assert rules(s.jbig2_pdf(ATTACK, user_password="")) == {"jbig2-symbol-overflow"}
    parsed, _ = parse(s.jbig2_pdf(ATTACK, user_password=""))
    assert doc(parsed).encrypted
    with pytest.raises(pdf.EncryptedPdf):
        parse(s.jbig2_pdf(ATTACK, user_password="pw"))
    subject = scan_bytes(s.jbig2_pdf(ATTACK, user_password="pw"), "locked.pdf")
    assert [e.code for e in subject.errors] == ["unsupported"]


def test_logical_end_and_appended_archive() -> None:
    base = s.jbig2_pdf(s.join(s.benign_segments()))
    assert base.endswith(b"%%EOF\n")
    for tail in (b"", b"\r\n", b"\n"):
        body = base.removesuffix(b"\n")
        assert pdf.logical_end(body + tail) == len(body) + len(tail)
    assert pdf.logical_end(b"%PDF-1.4 no end") is None
    subject = scan_bytes(base + zip_of({"stage.so": b"\x7fELF"}), "x.pdf")
    assert {f.rule for f in subject.findings} == {"appended-archive"}
    assert subject.findings[0].location.offset == len(base)


def test_damaged_xref_is_repaired_with_warnings() -> None:
    data = s.jbig2_pdf(ATTACK, ["FlateDecode"])
    broken = data.replace(b"startxref", b"startxref\n99999999\n%%", 1)
    parsed, children = parse(broken)
    assert parsed.warnings
    assert all(w.startswith("qpdf: ") for w in parsed.warnings)
    assert [c.format for c in children] == ["jbig2-embedded"]
    assert rules(broken) == {"jbig2-symbol-overflow"}


def test_not_a_pdf_is_a_format_error() -> None:
    for junk in (b"%PDF-1.7\n" + bytes(100), b"%PDF-", b"%PDF-1.4\n1 0 obj << /Length 99"):
        with pytest.raises(FormatError):
            parse(junk)


def test_pillow_and_text_pdfs_give_their_children() -> None:
    _, children = parse(s.pillow_pdf())
    assert [c.data[:3] for c in children] == [b"\xff\xd8\xff"]
    _, children = parse(s.text_pdf())
    (font,) = children
    assert font.name.endswith("(FontFile2)")
    assert font.data.startswith(b"\x00\x01\x00\x00")
    assert len(font.data) == len(s.truetype_font())


def test_many_objects_hit_the_element_cap() -> None:
    p = pikepdf.new()
    p.Root.Many = pikepdf.Array([p.make_indirect(pikepdf.Dictionary(N=i)) for i in range(300)])
    with pytest.raises(LimitExceeded, match="more than 100 elements"):
        parse(s.save(p), Limits(max_elements=100))


def test_shadowed_revision_is_examined_under_its_offset() -> None:
    base = s.jbig2_pdf(ATTACK)
    num = s.image_number(base)
    shadow_at = base.index(b"\n%d 0 obj" % num) + 1
    data = s.incremental_update(base, {num: s.image_object(s.join(s.benign_segments()))})
    parsed, children = parse(data)
    assert doc(parsed).shadowed == 1
    names = sorted(c.name for c in children)
    assert names == [f"obj {num} 0 (JBIG2)", f"obj {num} 0 @{shadow_at} (JBIG2)"]
    shadow = next(c for c in children if "@" in c.name)
    assert shadow.data == ATTACK
    live = next(c for c in children if "@" not in c.name)
    assert live.data == s.join(s.benign_segments())
    subject = scan_bytes(data, "x.pdf")
    assert [f.path for f in subject.findings] == [f"x.pdf!/{shadow.name}"]
    assert subject.errors == []


def test_shadow_offsets_count_from_the_header() -> None:
    base = s.jbig2_pdf(ATTACK)
    num = s.image_number(base)
    data = b"junk before the header\n" + s.incremental_update(
        base, {num: s.image_object(s.join(s.benign_segments()))})
    assert rules(data) == {"jbig2-symbol-overflow"}


def test_benign_pdfs_have_no_shadows() -> None:
    for data in (s.pillow_pdf(), s.text_pdf(), s.jbig2_pdf(ATTACK, ["FlateDecode"], objstm=True)):
        parsed, _ = parse(data)
        assert doc(parsed).shadowed == 0


def test_encrypted_files_skip_the_shadow_pass() -> None:
    base = s.jbig2_pdf(s.join(s.benign_segments()), user_password="")
    parsed, children = parse(base + b"\n5 0 obj\n<< >>\nendobj\n")
    assert doc(parsed).encrypted
    assert doc(parsed).shadowed == 0
    assert all("@" not in c.name for c in children)


def test_escaped_filter_names_are_normalised() -> None:
    data = s.jbig2_pdf(ATTACK).replace(b"/JBIG2Decode", b"/JBIG2#44ecode")
    assert b"/JBIG2Decode" not in data
    assert rules(data) == {"jbig2-symbol-overflow"}


def test_font_programs_found_without_their_descriptor() -> None:
    p = pikepdf.new()
    name = pikepdf.Name
    ttf = _stream(p, b"\x00\x01\x00\x00 tt", Length1=8)
    cff = _stream(p, b"\x01\x00\x04\x01 cff", Subtype=name.CIDFontType0C)
    t1 = _stream(p, b"%!PS-AdobeFont", Length1=14, Length2=0, Length3=0)
    descendant = pikepdf.Dictionary(FontDescriptor=pikepdf.Dictionary(
        FontFile2=p.make_indirect(ttf)))
    streams = {"F0": pikepdf.Dictionary(Type=name.Font, DescendantFonts=[descendant]),
               "Cff": cff, "T1": t1}
    _, children = parse(_pdf_with(streams, builder=p))
    roles = sorted(c.name.split("(")[1].rstrip(")") for c in children)
    assert roles == ["FontFile", "FontFile2", "FontFile3"]


def test_single_decode_parms_dictionary_with_a_filter_array() -> None:
    p = pikepdf.new()
    glob = p.make_indirect(_stream(p, s.join(s.forcedentry_segments(page=0)[1:3])))
    page = s.join([s.forcedentry_segments()[3]])
    img = _stream(p, page, Subtype=pikepdf.Name.Image,
                  Filter=pikepdf.Array([pikepdf.Name.JBIG2Decode]),
                  DecodeParms=pikepdf.Dictionary(JBIG2Globals=glob))
    assert rules(_pdf_with({"Img": img}, builder=p)) == {"jbig2-symbol-overflow"}


@pytest.mark.parametrize("junk", [b"7 0 obj <<<< ]]] endobj", b"1 0 obj (no end",
                                  b"99 0 obj 4 0 R"])
def test_broken_shadow_definitions_do_not_stop_the_scan(junk: bytes) -> None:
    base = s.jbig2_pdf(ATTACK)
    data = base.replace(b"%%EOF", b"% " + junk + b"\n%%EOF")
    parsed, children = parse(data)
    assert doc(parsed).shadowed >= 1
    assert any(c.format == "jbig2-embedded" for c in children)
    assert rules(data) == {"jbig2-symbol-overflow"}


def test_time_budget_is_a_limit_entry() -> None:
    subject = scan_bytes(s.jbig2_pdf(ATTACK), "x.pdf", Limits(seconds=0))
    assert [e.code for e in subject.errors] == ["limit"]


def objstm_pdf(padding: int) -> bytes:
    """Catalog and pages in a Flate object stream padded with ``padding`` spaces, found
    through a cross-reference stream (written by hand: qpdf would rewrite the padding)."""
    objs = b"<< /Type /Catalog /Pages 3 0 R >> << /Type /Pages /Kids [] /Count 0 >>"
    head = b"2 0 3 %d " % objs.index(b" << /Type /Pages")
    comp = zlib.compressobj(9)
    body = comp.compress(head + objs)
    body += b"".join(comp.compress(b" " * MiB) for _ in range(padding // MiB)) + comp.flush()
    out = b"%PDF-1.5\n"
    at1 = len(out)
    out += b"1 0 obj\n<< /Type /ObjStm /N 2 /First %d /Filter /FlateDecode /Length %d >>\n" % (
        len(head), len(body)) + b"stream\n" + body + b"\nendstream\nendobj\n"
    at4 = len(out)
    rows = [(0, 0, 0xFFFF), (1, at1, 0), (2, 1, 0), (2, 1, 1), (1, at4, 0)]
    table = b"".join(struct.pack(">BIH", *r) for r in rows)
    out += b"4 0 obj\n<< /Type /XRef /W [1 4 2] /Size 5 /Root 2 0 R /Length %d >>\n" % len(
        table) + b"stream\n" + table + b"\nendstream\nendobj\n"
    return out + b"startxref\n%d\n%%%%EOF\n" % at4


def test_object_stream_bomb_is_refused_before_qpdf_inflates_it() -> None:
    parsed, _ = parse(objstm_pdf(0))
    assert doc(parsed).objects == 4
    data = objstm_pdf(64 * MiB)
    tracemalloc.start()
    parsed, _ = parse(data)  # qpdf stops there; the streams are read raw instead
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(parsed.incomplete) == 1
    assert "object stream 1" in parsed.incomplete[0]
    assert peak < 32 * MiB


def _pdf_with_stream(content: bytes, **keys: object) -> bytes:
    p = pikepdf.new()
    page = p.add_blank_page(page_size=(72, 72))
    stream = pikepdf.Stream(p, content)
    for k, v in keys.items():
        stream[f"/{k}"] = v
    page.Contents = p.make_indirect(stream)
    return s.save(p)


HIDDEN = b"BT ET\n9 0 obj\n<< /Type /XObject >>\nendobj\n"


def test_object_text_inside_live_stream_data_is_stream_content() -> None:
    data = _pdf_with_stream(HIDDEN)
    parsed, _ = parse(data)
    assert doc(parsed).shadowed == 0  # the "9 0 obj" is bytes of the content stream
    p = pikepdf.open(io.BytesIO(data))
    spans = pdf.stream_data_spans(data, p, 0, pdf.live_offsets(p), Budget(Limits()))
    assert [data[a:b] for a, b in spans.values()] == [HIDDEN]


def test_a_stream_keyword_inside_a_string_does_not_hide_bytes() -> None:
    # The first "stream" after "obj" is inside a string of the dictionary: the span it
    # would give does not end at "endstream", so no span is taken and the search still
    # runs over the stream's bytes (where it finds the text it must not skip).
    data = _pdf_with_stream(HIDDEN, A=pikepdf.String("stream\n"))
    assert b"(stream\n)" in data or b"(stream\\n)" in data
    p = pikepdf.open(io.BytesIO(data))
    assert pdf.stream_data_spans(data, p, 0, pdf.live_offsets(p), Budget(Limits())) == {}
    parsed, _ = parse(data)
    assert doc(parsed).shadowed == 1


def _readable(data: bytes) -> bool:
    try:
        with pikepdf.open(io.BytesIO(data)) as p:
            return not p.is_encrypted
    except pikepdf.PikepdfError:
        return False


def _sample_pdfs() -> list[bytes]:
    """Every unencrypted PDF sample qpdf can open (damaged and encrypted ones have tests
    of their own; spans are not used for encrypted files)."""
    from spywall.samples import all_samples

    out = [x.data for x in all_samples() if pdf.sniff(x.data[:1024])]
    out += [s.pillow_pdf(), s.text_pdf(), b"junk\n" + s.jbig2_pdf(ATTACK, ["FlateDecode"]),
            _pdf_with_stream(b"x" * 100, A=pikepdf.String("stream")),
            _pdf_with_stream(b"q Q\r\n"), _pdf_with_stream(b"")]
    return [d for d in out if _readable(d)]


@pytest.mark.parametrize("data", _sample_pdfs())
def test_stream_spans_hold_exactly_what_qpdf_reads(data: bytes) -> None:
    # Spans serve raw stream bytes straight from the input: each must match qpdf's.
    p = pikepdf.open(io.BytesIO(data))
    spans = pdf.stream_data_spans(data, p, pdf._base(data), pdf.live_offsets(p),
                                  Budget(Limits()))
    for objgen, (a, b) in spans.items():
        obj = p.get_object(objgen)
        assert isinstance(obj, pikepdf.Stream)
        assert data[a:b] == obj.read_raw_bytes()
    streams = sum(isinstance(p.get_object(k), pikepdf.Stream) for k in pdf.live_offsets(p))
    assert len(spans) >= streams - 1  # at most the forged-keyword stream lacks one


def test_crlf_after_the_stream_keyword_starts_the_data_after_both_bytes() -> None:
    data = _pdf_with_stream(b"BT ET").replace(b"stream\n", b"stream\r\n", 1)
    p = pikepdf.open(io.BytesIO(data))
    spans = pdf.stream_data_spans(data, p, 0, pdf.live_offsets(p), Budget(Limits()))
    assert [data[a:b] for a, b in spans.values()] == [b"BT ET"]
