"""dng-opcode-count: a DNG opcode list declaring an absurd number of opcodes
(CVE-2025-21043, Samsung libimagecodec.quram.so, exploited in the wild).

Condition: in any IFD of the tree, an OpcodeList1, OpcodeList2 or OpcodeList3 tag
(0xC740, 0xC741, 0xC74E) whose value starts with a big-endian u32 opcode count above
1,000,000 (critical). The list's own size bounds the real count (each opcode has a
16-byte header: opcode id, DNG version, flags, parameter size); a count above
(size - 4) / 16 but not above 1,000,000 is reported as medium: malformed, not the
published trigger.
"""

from __future__ import annotations

from collections.abc import Iterator

from spywall.detectors.base import Detector, DetectorInfo, Hit
from spywall.formats import tiff as t
from spywall.formats.base import Parsed
from spywall.report import FindingKind, Severity

MAX_OPCODES = 1_000_000
OPCODE_HEADER = 16


def detect(parsed: Parsed) -> Iterator[Hit]:
    tiff = parsed.structure
    if not isinstance(tiff, t.TiffFile):
        return
    for ifd in tiff.ifds:
        for tag, name in t.OPCODE_LISTS.items():
            entry = ifd.entries.get(tag)
            if entry is None or len(entry.head) < 4:
                continue
            count = int.from_bytes(entry.head[:4], "big")
            room = max(0, entry.size - 4) // OPCODE_HEADER
            if count <= room:
                continue
            severity = None if count > MAX_OPCODES else Severity.MEDIUM
            yield Hit(
                message=(f"{ifd.label}: {name} declares {count} opcodes in a list of "
                         f"{entry.size} bytes (room for {room})"),
                offset=entry.offset,
                detail={"ifd": ifd.label, "tag": name, "opcode_count": count,
                        "list_bytes": entry.size},
                severity=severity,
            )


DETECTOR = Detector(
    info=DetectorInfo(
        id="dng-opcode-count",
        title="DNG opcode list with an impossible opcode count",
        formats=("dng", "tiff"),
        severity=Severity.CRITICAL,
        kind=FindingKind.EXPLOIT,
        cves=("CVE-2025-21043",),
        references=(
            "https://nvd.nist.gov/vuln/detail/CVE-2025-21043",
            "https://security.samsungmobile.com/securityUpdate.smsb",
        ),
        description=__doc__ or "",
    ),
    detect=detect,
)
