"""truetype-computed-jump: a TrueType program that hides 0x8F/0x90 and jumps to an unknown place.

Condition: a program (``fpgm``, ``prep`` or a glyph's instructions) holds a byte 0x8F or
0x90 (Apple's ADJUST) that no decoding reaches (the linear one, or one started at a jump
target computed from pushed constants, within the program or passed by a caller through
CALL/LOOPCALL: ``tt_calls``), and it has a JMPR, JROT or JROF whose offset is not a
constant the analysis can follow (read from storage or the CVT, computed by instructions
it does not track, or joined from callers that pass different values), or the analysis
ran out of steps. Such a jump could land on the hidden byte and execute
ADJUST, the instruction the Operation Triangulation font exploit used (CVE-2023-41990);
no real font in Debian's font packages does this. A heuristic: the jump may well go
elsewhere. One hit per program (up to 32 per font), naming the jump offsets.
"""

from __future__ import annotations

from collections.abc import Iterator

from spywall.detectors.base import Detector, DetectorInfo, Hit
from spywall.formats.base import Parsed
from spywall.formats.truetype import Font, fonts_of
from spywall.report import FindingKind, Severity


def _font_hits(font: Font) -> Iterator[Hit]:
    where_font = "" if font.index is None else f" (font {font.index} of the collection)"
    for prog in font.jumps:
        place = (f"the {prog.where} table" if prog.glyph is None
                 else f"glyph {prog.glyph}'s instructions")
        yield Hit(
            message=(
                f"{place}{where_font} holds a 0x8F/0x90 (ADJUST) byte that no decoding "
                f"reaches, and jumps to a computed place (jump at offset "
                f"{prog.unresolved[0]}); the jump could execute the hidden ADJUST"
            ),
            offset=prog.unresolved[0],
            detail={"program": prog.where, "glyph": prog.glyph, "font_index": font.index,
                    "program_offset": prog.offset, "program_length": prog.length,
                    "jumps": ",".join(map(str, prog.unresolved))},
        )


def detect(parsed: Parsed) -> Iterator[Hit]:
    for font in fonts_of(parsed.structure):
        yield from _font_hits(font)


DETECTOR = Detector(
    info=DetectorInfo(
        id="truetype-computed-jump",
        title="TrueType jump with a computed target in a program hiding ADJUST",
        formats=("truetype", "ttc"),
        severity=Severity.MEDIUM,
        kind=FindingKind.HEURISTIC,
        cves=("CVE-2023-41990",),
        references=(
            "https://securelist.com/operation-triangulation-the-last-hardware-mystery/111669/",
            "https://learn.microsoft.com/en-us/typography/opentype/spec/tt_instructions",
        ),
        description=__doc__ or "",
    ),
    detect=detect,
)
