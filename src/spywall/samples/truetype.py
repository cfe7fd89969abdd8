"""TRIANGULATION samples: TrueType fonts whose bytecode uses Apple's ADJUST (0x8F / 0x90).

Every font is built with fontTools' FontBuilder: a square, a triangle and a composite glyph
made of both (components with word offsets, a scale, an x/y scale and a 2x2 transform), so
the composite record parser meets every flag-dependent size. Bytecode is given as raw bytes
(``Program.fromBytecode``). The crafted fonts carry ADJUST as an instruction in one place
each; the benign controls are the same fonts with ordinary hinting, or with 0x8F/0x90 only
inside PUSHB/PUSHW/NPUSHB/NPUSHW data. A TTC holds the bad font second; a PDF embeds a
crafted font as ``/FontFile2`` (Flate-compressed by pikepdf).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import msgspec

from spywall.samples import Sample

ADJUST = frozenset({"truetype-adjust"})
NONE: frozenset[str] = frozenset()
JUMP_HEURISTIC = frozenset({"truetype-computed-jump"})

# PUSHB[0] 0, FDEF, ..., ENDF / PUSHB[1] 1 2 / SVTCA[x] and friends.
FPGM_OK = b"\xb0\x00\x2c\xb0\x01\x21\x2d"
PREP_OK = b"\xb1\x01\x02\x21\x21\x01"
GLYPH_OK = b"\x00\xb0\x01\x21\x01"
# 0x8F and 0x90 appear only as push data: NPUSHB, NPUSHW, PUSHB[1], PUSHW[0], then 8 POPs.
PUSH_DATA_ONLY = (b"\x40\x03\x8f\x90\x8f" + b"\x41\x02\x8f\x90\x00\x8f" + b"\xb1\x8f\x90"
                  + b"\xb8\x90\x8f" + b"\x21" * 8)
# The same programs with ADJUST decoded as an instruction.
FPGM_ADJUST = b"\xb0\x00\x2c\xb0\x01\x8f\x2d"
PREP_ADJUST = b"\xb1\x01\x02\x90\x01"
GLYPH_ADJUST = b"\x00\xb0\x01\x8f\x01"
# Jumps (JMPR/JROT/JROF move by a popped offset from their own address) into push data:
# PUSHB[0] 2, JMPR lands on the data byte of the next PUSHB[0], 0x8F: ADJUST executes.
JUMP_INTO_PUSH = b"\xb0\x02\x1c\xb0\x8f\x00"
# PUSHW[0] 0x0006, PUSHB[0] 0, JROF (jump when false) at 4 -> 10: inside NPUSHB's data.
JROF_INTO_NPUSHB = b"\xb8\x00\x06\xb0\x00\x79\x40\x04\x00\x00\x00\x90\x21"
# FDEF 0 whose body computes its jump offset (1 + 1, ADD) and JROT lands on 0x8F in push data.
FPGM_JUMP_IN_FUNCTION = b"\xb0\x00\x2c\xb1\x01\x01\x60\xb0\x01\x78\xb0\x8f\x2d"
# The clean twins: the same pushes of 0x8F/0x90, the jumps land on instruction boundaries.
JUMP_OVER_PUSH = b"\xb0\x03\x1c\xb0\x8f\x00"
JROF_OVER_NPUSHB = b"\xb8\x00\x07\xb0\x00\x79\x40\x04\x00\x00\x00\x90\x21"
FPGM_JUMP_OVER = b"\xb0\x00\x2c\xb1\x01\x02\x60\xb0\x01\x78\xb0\x8f\x2d"
# A jump whose offset is read from the storage area (RS): its target is unknown, and the
# program hides 0x8F in push data (the heuristic); the twin hides nothing.
COMPUTED_JUMP = b"\xb0\x05\x43\x1c\xb0\x8f\x00"
COMPUTED_JUMP_CLEAN = b"\xb0\x05\x43\x1c\xb0\x8e\x00"

# Jumps whose offset a caller passes (interprocedural). Function 0 of fpgm: JMPR (at 3)
# with the offset its caller pushed, then PUSHB[1] 0x21 0x8F, POP, ENDF: offset 3 lands on
# the 0x8F data byte (ADJUST), offset 5 on ENDF (the clean twin). Function 1 calls the
# function its caller names; function 2 returns the offset 2 for its caller's jump.
FPGM_CALLEE = (b"\xb0\x00\x2c" + b"\x1c\xb1\x21\x8f\x21\x2d"
               + b"\xb0\x01\x2c\x2b\x2d" + b"\xb0\x02\x2c\xb0\x02\x2d")
HIT_OFFSET, MISS_OFFSET = 3, 5


def call_with(offset: int) -> bytes:
    """PUSHB[2] 1 offset 0, CALL: function 0 jumps by ``offset`` (1 is for its POP)."""
    return bytes([0xB2, 1, offset, 0, 0x2B])


def call_through(offset: int) -> bytes:
    """PUSHB[3] 1 offset 0 1, CALL: function 1 calls function 0 (the number is data)."""
    return bytes([0xB3, 1, offset, 0, 1, 0x2B])


def loopcall_with(offset: int) -> bytes:
    """PUSHB[3] 1 offset 1 0, LOOPCALL: one round of function 0."""
    return bytes([0xB3, 1, offset, 1, 0, 0x2A])


# PUSHB 2, CALL: function 2 returns 2; JMPR (at 3) -> 5, the 0x8F data byte of PUSHB[0]
# (the twin's data byte is 0x8E); then SVTCA.
JUMP_BY_RETURNED = b"\xb0\x02\x2b\x1c\xb0\x8f\x00"
JUMP_BY_RETURNED_CLEAN = b"\xb0\x02\x2b\x1c\xb0\x8e\x00"
# The offset function 0 jumps by is read from storage by its caller: unknown.
CALL_WITH_STORED = b"\xb0\x01\xb0\x05\x43\xb0\x00\x2b"


class Programs(msgspec.Struct, frozen=True):
    """Bytecode for each place a TrueType font carries instructions."""

    fpgm: bytes = FPGM_OK
    prep: bytes = PREP_OK
    simple: bytes = GLYPH_OK
    composite: bytes = GLYPH_OK


_PLAIN = Programs()  # the default of ``font``: no program holds ADJUST


def _polygon(*points: tuple[int, int]) -> object:
    """A one-contour glyph (no points at all: an empty glyph)."""
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    pen = TTGlyphPen(None)
    if points:
        pen.moveTo(points[0])
        for pt in points[1:]:
            pen.lineTo(pt)
        pen.closePath()
    return pen.glyph()


def _composite(code: bytes) -> object:
    from fontTools.ttLib.tables import ttProgram
    from fontTools.ttLib.tables._g_l_y_f import Glyph, GlyphComponent

    comps = []
    # (glyph, x, y, transform): byte args; word args + scale; x/y scale; 2x2.
    for name, x, y, transform in (
        ("square", 10, 10, None),
        ("triangle", 300, -200, [[0.5, 0.0], [0.0, 0.5]]),
        ("square", 20, 600, [[0.5, 0.0], [0.0, 0.75]]),
        ("triangle", 5, 5, [[0.5, 0.25], [0.125, 0.5]]),
    ):
        comp = GlyphComponent()
        comp.glyphName, comp.x, comp.y, comp.flags = name, x, y, 0
        if transform is not None:
            comp.transform = transform
        comps.append(comp)
    glyph = Glyph()
    glyph.numberOfContours = -1
    glyph.components = comps
    glyph.program = ttProgram.Program()
    glyph.program.fromBytecode(code)
    return glyph


def font(progs: Programs = _PLAIN, long_loca: bool = False) -> bytes:
    """A small TrueType font with the given programs; ``long_loca`` forces loca format 1."""
    for parity in (b"", b"\x00"):
        data = _build(progs, parity if long_loca else b"", long_loca)
        if not long_loca or data[_head_offset(data) + 51] == 1:
            return data
    raise AssertionError("fontTools kept the short loca format")  # pragma: no cover


def _head_offset(data: bytes) -> int:
    num = int.from_bytes(data[4:6], "big")
    for i in range(num):
        rec = data[12 + 16 * i : 28 + 16 * i]
        if rec[:4] == b"head":
            return int.from_bytes(rec[8:12], "big")
    raise AssertionError("no head table")  # pragma: no cover


def _build(progs: Programs, pad: bytes, long_loca: bool) -> bytes:
    from fontTools.fontBuilder import FontBuilder
    from fontTools.ttLib import newTable
    from fontTools.ttLib.tables import ttProgram

    order = [".notdef", "square", "triangle", "combo"]
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder(order)
    fb.setupCharacterMap({0x41: "square", 0x42: "triangle", 0x43: "combo"})
    square = _polygon((100, 0), (100, 700), (500, 700), (500, 0))
    triangle = _polygon((0, 0), (250, 600), (500, 0))
    for glyph, code in ((square, progs.simple), (triangle, GLYPH_OK + pad)):
        glyph.program = ttProgram.Program()  # type: ignore[attr-defined]
        glyph.program.fromBytecode(code)  # type: ignore[attr-defined]
    fb.setupGlyf({".notdef": _polygon(), "square": square, "triangle": triangle,
                  "combo": _composite(progs.composite)})
    fb.setupHorizontalMetrics(dict.fromkeys(order, (600, 0)))
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": "Spywall Sample", "styleName": "Regular"})
    fb.setupOS2()
    fb.setupPost()
    fb.setupMaxp()
    for tag, code in (("fpgm", progs.fpgm), ("prep", progs.prep)):
        table = newTable(tag)
        table.program = ttProgram.Program()
        table.program.fromBytecode(code)
        fb.font[tag] = table
    if long_loca:
        fb.font["glyf"].padding = 0
    buf = io.BytesIO()
    fb.font.save(buf)
    return buf.getvalue()


def otf() -> bytes:
    """A small OpenType-CFF (OTTO) font: no TrueType bytecode at all."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.t2CharStringPen import T2CharStringPen

    order = [".notdef", "square"]
    pen = T2CharStringPen(600, None)
    pen.moveTo((100, 0))
    pen.lineTo((100, 700))
    pen.lineTo((500, 700))
    pen.closePath()
    fb = FontBuilder(1000, isTTF=False)
    fb.setupGlyphOrder(order)
    fb.setupCharacterMap({0x41: "square"})
    fb.setupCFF("SpywallSample", {"FullName": "Spywall Sample"},
                {".notdef": T2CharStringPen(600, None).getCharString(),
                 "square": pen.getCharString()}, {})
    fb.setupHorizontalMetrics(dict.fromkeys(order, (600, 0)))
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": "Spywall Sample", "styleName": "Regular"})
    fb.setupOS2()
    fb.setupPost()
    buf = io.BytesIO()
    fb.font.save(buf)
    return buf.getvalue()


def collection(*fonts: bytes) -> bytes:
    """A ``ttcf`` collection of the given fonts (fontTools shares identical tables)."""
    from fontTools.ttLib import TTCollection, TTFont

    coll = TTCollection()
    coll.fonts = [TTFont(io.BytesIO(f)) for f in fonts]
    buf = io.BytesIO()
    coll.save(buf)
    return buf.getvalue()


def pdf_with_font(font_data: bytes, compress: bool = True) -> bytes:
    """A one-page PDF whose TrueType font is embedded as ``/FontFile2``."""
    import pikepdf

    pdf = pikepdf.new()
    font_file = pikepdf.Stream(pdf, font_data)
    font_file.Length1 = len(font_data)
    descriptor = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.FontDescriptor, FontName=pikepdf.Name("/SpywallSample"), Flags=32,
        FontBBox=[0, -200, 600, 800], ItalicAngle=0, Ascent=800, Descent=-200,
        CapHeight=700, StemV=80, FontFile2=font_file))
    font_dict = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.TrueType,
        BaseFont=pikepdf.Name("/SpywallSample"), FirstChar=65, LastChar=67,
        Widths=[600, 600, 600], FontDescriptor=descriptor))
    content = pikepdf.Stream(pdf, b"BT /F1 24 Tf 72 720 Td (ABC) Tj ET")
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, 612, 792], Contents=content,
        Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font_dict)))
    pdf.pages.append(pikepdf.Page(page))
    buf = io.BytesIO()
    pdf.save(buf, compress_streams=compress,
             object_stream_mode=pikepdf.ObjectStreamMode.disable)
    return buf.getvalue()


def samples() -> Iterator[Sample]:
    bad_glyph = Programs(simple=GLYPH_ADJUST)
    yield Sample("adjust-fpgm.ttf", font(Programs(fpgm=FPGM_ADJUST)), ADJUST,
                 "ADJUST (0x8F) inside a function definition in fpgm")
    yield Sample("adjust-prep.ttf", font(Programs(prep=PREP_ADJUST)), ADJUST,
                 "ADJUST (0x90) in the control value program")
    yield Sample("adjust-glyph-short-loca.ttf", font(bad_glyph), ADJUST,
                 "ADJUST in a simple glyph's instructions, loca format 0")
    yield Sample("adjust-glyph-long-loca.ttf", font(bad_glyph, long_loca=True), ADJUST,
                 "ADJUST in a simple glyph's instructions, loca format 1")
    yield Sample("adjust-composite.ttf", font(Programs(composite=GLYPH_ADJUST)), ADJUST,
                 "ADJUST after the last component record of a composite glyph")
    yield Sample("adjust-second-font.ttc", collection(font(), font(bad_glyph)), ADJUST,
                 "collection whose second font carries ADJUST")
    yield Sample("adjust-fontfile2.pdf", pdf_with_font(font(bad_glyph)), ADJUST,
                 "crafted font embedded as a Flate-compressed /FontFile2 stream")
    yield Sample("adjust-fontfile2-raw.pdf",
                 pdf_with_font(font(Programs(prep=PREP_ADJUST)), compress=False), ADJUST,
                 "crafted font embedded as an unfiltered /FontFile2 stream")
    yield Sample("adjust-jump-into-push.ttf", font(Programs(simple=JUMP_INTO_PUSH)), ADJUST,
                 "JMPR lands on a PUSHB data byte 0x8F: ADJUST hidden in push data")
    yield Sample("adjust-jrof-into-npushb.ttf", font(Programs(prep=JROF_INTO_NPUSHB)),
                 ADJUST, "JROF lands inside NPUSHB data on 0x90 (ADJUST)")
    yield Sample("adjust-jump-in-function.ttf",
                 font(Programs(fpgm=FPGM_JUMP_IN_FUNCTION)), ADJUST,
                 "a function's JROT, offset computed with ADD, lands on 0x8F in push data")
    yield Sample("computed-jump-hidden-byte.ttf", font(Programs(simple=COMPUTED_JUMP)),
                 JUMP_HEURISTIC, "JMPR to an offset read from storage; 0x8F in push data")
    yield Sample("benign-jump-over-push.ttf",
                 font(Programs(JUMP_OVER_PUSH, JROF_OVER_NPUSHB, JUMP_OVER_PUSH,
                               JUMP_OVER_PUSH)), NONE,
                 "jumps over pushes of 0x8F/0x90, landing on instruction boundaries")
    yield Sample("benign-jump-in-function.ttf", font(Programs(fpgm=FPGM_JUMP_OVER)), NONE,
                 "a function's computed JROT jumps over push data holding 0x8F")
    yield Sample("benign-computed-jump.ttf",
                 font(Programs(simple=COMPUTED_JUMP_CLEAN)), NONE,
                 "a jump to an offset read from storage, no 0x8F/0x90 byte anywhere")
    yield from _interprocedural()
    yield Sample("benign-hinted.ttf", font(), NONE, "ordinary hinting everywhere")
    yield Sample("benign-long-loca.ttf", font(long_loca=True), NONE)
    yield Sample("benign-push-data.ttf",
                 font(Programs(PUSH_DATA_ONLY, PUSH_DATA_ONLY, PUSH_DATA_ONLY,
                               PUSH_DATA_ONLY)), NONE,
                 "0x8F/0x90 only inside PUSHB/PUSHW/NPUSHB/NPUSHW data: not instructions")
    yield Sample("benign.ttc", collection(font(), font(long_loca=True)), NONE)
    yield Sample("benign.otf", otf(), NONE, "OpenType-CFF: no TrueType bytecode")
    yield Sample("benign-fontfile2.pdf", pdf_with_font(font()), NONE)


def _interprocedural() -> Iterator[Sample]:
    """Jumps whose offset (or the called function) a caller supplies."""
    callers = (("glyph-call", "a glyph program", call_with, "simple"),
               ("prep-call", "prep", call_with, "prep"),
               ("call-through", "a glyph program, through function 1,", call_through,
                "composite"),
               ("loopcall", "a glyph program's LOOPCALL", loopcall_with, "simple"))
    for name, who, make, place in callers:
        for offset, expect, twin in ((HIT_OFFSET, ADJUST, "adjust"),
                                     (MISS_OFFSET, NONE, "benign")):
            progs = msgspec.structs.replace(Programs(fpgm=FPGM_CALLEE),
                                            **{place: make(offset)})
            yield Sample(f"{twin}-{name}-jump.ttf", font(progs), expect,
                         f"{who} passes function 0 of fpgm the offset its JMPR jumps by: "
                         + ("onto 0x8F in push data" if expect else "onto ENDF"))
    yield Sample("adjust-returned-offset.ttf",
                 font(Programs(fpgm=FPGM_CALLEE, simple=JUMP_BY_RETURNED)), ADJUST,
                 "a glyph jumps by the offset function 2 returns, onto 0x8F in push data")
    yield Sample("benign-returned-offset.ttf",
                 font(Programs(fpgm=FPGM_CALLEE, simple=JUMP_BY_RETURNED_CLEAN)), NONE,
                 "the same jump onto 0x8E")
    yield Sample("computed-jump-stored-argument.ttf",
                 font(Programs(fpgm=FPGM_CALLEE, simple=CALL_WITH_STORED)), JUMP_HEURISTIC,
                 "function 0 jumps by an offset its caller read from storage; 0x8F hidden")
