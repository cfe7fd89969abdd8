"""jbig2-refinement-flood: a JBIG2 stream with unusually many refinement segments.

Condition: one JBIG2 stream (a standalone file, or the ``/JBIG2Globals`` plus page
segments of one PDF ``/JBIG2Decode`` image) holds at least ``THRESHOLD`` (1000) generic
refinement region segments (types 40, 42 and 43). FORCEDENTRY (CVE-2021-30860) built its
logic circuit out of tens of thousands of such segments (about 70,000 segment commands
were reported), each combining bitmaps with AND/OR/XOR/XNOR once the overflow had
unbounded the page. Benign encoders rarely emit refinement *segments* at all: jbig2enc
and scanner firmware refine symbols inside text regions, and progressive refinement of
a page takes a handful of segments per page, while a PDF JBIG2 stream holds exactly one
page. A thousand is two orders of magnitude above that and still well below the reported
exploit. This is a heuristic (a secondary signal, not proof): the overflow detector is
the one that names the trigger.
"""

from __future__ import annotations

from collections.abc import Iterator

from spywall.detectors.base import Detector, DetectorInfo, Hit
from spywall.formats.base import Parsed
from spywall.formats.jbig2 import Jbig2Stream
from spywall.report import FindingKind, Severity

THRESHOLD = 1000


def detect(parsed: Parsed) -> Iterator[Hit]:
    stream = parsed.structure
    if not isinstance(stream, Jbig2Stream):
        return
    count = stream.refinement_count
    if count < THRESHOLD:
        return
    yield Hit(
        message=(f"{count} generic refinement region segments in one JBIG2 stream of "
                 f"{stream.segment_count} segments (threshold {THRESHOLD})"),
        offset=stream.first_refinement_offset,
        detail={"refinement_segments": count, "segments": stream.segment_count,
                "threshold": THRESHOLD},
    )


DETECTOR = Detector(
    info=DetectorInfo(
        id="jbig2-refinement-flood",
        title="JBIG2 stream with unusually many refinement segments",
        formats=("jbig2", "jbig2-embedded"),
        severity=Severity.MEDIUM,
        kind=FindingKind.HEURISTIC,
        cves=("CVE-2021-30860",),
        references=(
            "https://googleprojectzero.blogspot.com/2021/12/a-deep-dive-into-nso-zero-click.html",
            "https://www.itu.int/rec/T-REC-T.88",
        ),
        description=__doc__ or "",
    ),
    detect=detect,
)
