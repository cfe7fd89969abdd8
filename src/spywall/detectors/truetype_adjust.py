"""truetype-adjust: Apple's undocumented ADJUST instruction in TrueType bytecode.

Condition: in a TrueType font (alone, in a ``ttcf`` collection, or embedded in a PDF as
``/FontFile2``), opcode 0x8F or 0x90 (ADJUST) decodes as an *instruction* in the ``fpgm``
table, the ``prep`` table or a glyph's instructions (simple glyphs; composite glyphs with
WE_HAVE_INSTRUCTIONS, after the last component record). The bytecode is decoded linearly,
skipping the inline data of NPUSHB, NPUSHW, PUSHB and PUSHW, so those byte values inside push
data are not a finding, unless a jump lands on them: JMPR, JROT and JROF add a popped
offset to their own address, so the program is also followed from every jump target
computed from pushed constants (``tt_flow``: an abstract interpretation of the stack), and
ADJUST at any offset control can reach that way (inside push data, in an overlapping
decoding) is a finding too. When a jump's offset is not a constant within its program, the
font's programs are followed together (``tt_calls``): a function's jump by an offset its
caller pushed (in a glyph program, ``prep`` or another function; through CALL or LOOPCALL,
the function number itself possibly passed along) or by a value a called function returned.
No public TrueType instruction set defines these opcodes; the
Operation Triangulation exploit chain used ADJUST for its font bug (CVE-2023-41990). One hit
per program (up to 32 per font), naming the table or glyph id, the program's offset, the
first ADJUST offset and the font's index in a collection.
"""

from __future__ import annotations

from collections.abc import Iterator

from spywall.detectors.base import Detector, DetectorInfo, Hit
from spywall.formats.base import Parsed
from spywall.formats.truetype import Font, fonts_of
from spywall.report import FindingKind, Severity


def _font_hits(font: Font) -> Iterator[Hit]:
    where_font = "" if font.index is None else f" (font {font.index} of the collection)"
    for prog in font.adjust:
        place = (f"the {prog.where} table" if prog.glyph is None
                 else f"glyph {prog.glyph}'s instructions")
        first_at, first_op = prog.hits[0]
        how = ("reached by a jump into the middle of other instructions" if
               first_at in prog.jumped else "decoded as an instruction")
        yield Hit(
            message=(
                f"ADJUST (opcode 0x{first_op:02X}) {how} at offset "
                f"{first_at} in {place}{where_font}; {prog.total} ADJUST in the "
                f"{prog.length}-byte program at offset {prog.offset}"
                + (f", {len(prog.jumped)} of them reached only by a jump"
                   if prog.jumped else "")
            ),
            offset=first_at,
            detail={"program": prog.where, "glyph": prog.glyph, "font_index": font.index,
                    "program_offset": prog.offset, "program_length": prog.length,
                    "opcode": first_op, "adjust_count": prog.total,
                    "jump_reached": len(prog.jumped)},
        )
    if font.adjust_total > len(font.adjust):
        yield Hit(
            message=(f"{font.adjust_total - len(font.adjust)} more programs with ADJUST "
                     f"instructions{where_font} not listed"),
            offset=None,
            detail={"font_index": font.index, "programs_with_adjust": font.adjust_total},
        )


def detect(parsed: Parsed) -> Iterator[Hit]:
    for font in fonts_of(parsed.structure):
        yield from _font_hits(font)


DETECTOR = Detector(
    info=DetectorInfo(
        id="truetype-adjust",
        title="TrueType ADJUST instruction (Operation Triangulation)",
        formats=("truetype", "ttc"),
        severity=Severity.CRITICAL,
        kind=FindingKind.EXPLOIT,
        cves=("CVE-2023-41990",),
        references=(
            "https://securelist.com/operation-triangulation-the-last-hardware-mystery/111669/",
            "https://nvd.nist.gov/vuln/detail/CVE-2023-41990",
        ),
        description=__doc__ or "",
    ),
    detect=detect,
)
