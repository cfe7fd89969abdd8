"""appended-archive: an archive hidden after an image's logical end (LANDFALL).

Condition: the bytes after the host format's logical end (EOI for JPEG, IEND for PNG,
the RIFF size for WebP, the last referenced strip/tile/IFD for TIFF/DNG, the trailer
for GIF) begin with, or contain within their first 4 KiB, the signature of a zip, RAR,
7z, xz, gzip or bzip2 archive. Plain padding (zeros, a few bytes of junk) is not a
finding. The tail is then scanned as an object of its own, so what the archive holds is
examined too.
"""

from __future__ import annotations

from collections.abc import Iterator

from spywall.detectors.base import Detector, DetectorInfo, Hit
from spywall.formats.appended import AppendedData
from spywall.formats.base import Parsed
from spywall.report import FindingKind, Severity


def detect(parsed: Parsed) -> Iterator[Hit]:
    tail = parsed.structure
    if not isinstance(tail, AppendedData) or tail.archive is None or tail.archive_at is None:
        return
    yield Hit(
        message=(
            f"{tail.archive} archive appended after the end of the {tail.host_format} data "
            f"({tail.length} bytes from offset {tail.offset})"
        ),
        offset=tail.offset + tail.archive_at,
        detail={"host_format": tail.host_format, "archive": tail.archive,
                "appended_bytes": tail.length},
    )


DETECTOR = Detector(
    info=DetectorInfo(
        id="appended-archive",
        title="Archive appended after image data",
        formats=("appended",),
        severity=Severity.HIGH,
        kind=FindingKind.EXPLOIT,
        cves=("CVE-2025-21042",),
        references=(
            "https://unit42.paloaltonetworks.com/landfall-is-new-commercial-grade-android-spyware/",
        ),
        description=__doc__ or "",
    ),
    detect=detect,
)
