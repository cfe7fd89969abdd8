"""jbig2-symbol-overflow: the FORCEDENTRY trigger (CVE-2021-30860).

Condition: in a JBIG2 stream (a standalone file, or the ``/JBIG2Globals`` and page
segments of a PDF ``/JBIG2Decode`` image), a segment that takes symbols from the symbol
dictionaries it refers to (a text region, segment type 4, 6 or 7; or a symbol dictionary
that refines earlier ones, type 0) has referred-to dictionaries whose SDNUMEXSYMS values,
each counted once per reference, sum to more than 2^32 - 1. Only dictionaries that come
before the segment in decoding order count, as in a decoder. Decoders derived from xpdf
(CoreGraphics among them) keep that sum in a 32-bit integer: it wraps, a buffer sized
for the wrapped count is allocated and the symbols are then copied past its end.
FORCEDENTRY referred to a 0xFFFF-symbol dictionary 0x10001 times plus a small one. Real
encoders stay many orders of magnitude below the bound (a page uses at most some
thousands of symbols); the sum is computed exactly, without wrapping. Segment headers
are read as T.88 says and, when a long-form referred-to count makes decoders disagree on
the retention bytes after it, as xpdf and jbig2dec read them too: a trigger in any
reading is a finding (it names the reading).
"""

from __future__ import annotations

from collections.abc import Iterator

from spywall.detectors.base import Detector, DetectorInfo, Hit
from spywall.formats.base import Parsed
from spywall.formats.jbig2 import Jbig2Stream
from spywall.report import FindingKind, Severity

LIMIT = 0xFFFFFFFF
_KIND = {0: "symbol dictionary", 4: "intermediate text region", 6: "immediate text region",
         7: "immediate lossless text region"}


def detect(parsed: Parsed) -> Iterator[Hit]:
    stream = parsed.structure
    if not isinstance(stream, Jbig2Stream):
        return
    for use in stream.symbol_uses:
        if use.exported_sum <= LIMIT:
            continue
        yield Hit(
            message=(
                f"{_KIND.get(use.type, 'segment')} {use.number} refers to symbol "
                f"dictionaries {use.dictionary_references} times; their symbol counts sum "
                f"to {use.exported_sum:#x}, past 2^32-1 (wraps to "
                f"{use.exported_sum & LIMIT:#x} in a 32-bit decoder)"
                + ("" if use.reading == "T.88" else
                   f", with the segment headers read as {use.reading} reads them")
            ),
            offset=use.offset,
            detail={"segment": use.number, "segment_type": use.type,
                    "references": use.references,
                    "dictionary_references": use.dictionary_references,
                    "symbol_sum": use.exported_sum,
                    "wrapped_sum": use.exported_sum & LIMIT, "reading": use.reading},
        )


DETECTOR = Detector(
    info=DetectorInfo(
        id="jbig2-symbol-overflow",
        title="JBIG2 referred symbol count overflows 32 bits (FORCEDENTRY)",
        formats=("jbig2", "jbig2-embedded"),
        severity=Severity.CRITICAL,
        kind=FindingKind.EXPLOIT,
        cves=("CVE-2021-30860",),
        references=(
            "https://googleprojectzero.blogspot.com/2021/12/a-deep-dive-into-nso-zero-click.html",
            "https://citizenlab.ca/2021/09/forcedentry-nso-group-imessage-zero-click-exploit-captured-in-the-wild/",
            "https://www.itu.int/rec/T-REC-T.88",
        ),
        description=__doc__ or "",
    ),
    detect=detect,
)
