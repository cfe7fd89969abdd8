"""Data found after a format's logical end. The engine builds it; it has no sniffer.

``AppendedData`` records where the tail starts, how long it is and which archive magic
(if any) opens it or appears within its first bytes.
"""

from __future__ import annotations

import msgspec

from spywall.formats.base import FormatSpec, ParseContext, Parsed
from spywall.formats.magic import sniff_never

ARCHIVE_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"Rar!\x1a\x07", "rar"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x1f\x8b\x08", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)
SEARCH_WINDOW = 4096


class AppendedData(msgspec.Struct, frozen=True):
    host_format: str
    offset: int
    length: int
    archive: str | None
    archive_at: int | None


def classify(tail: bytes) -> tuple[str | None, int | None]:
    """Archive kind and its offset within the first ``SEARCH_WINDOW`` bytes of ``tail``."""
    window = tail[:SEARCH_WINDOW]
    best: tuple[str | None, int | None] = (None, None)
    for magic, kind in ARCHIVE_MAGICS:
        at = window.find(magic)
        if at >= 0 and (best[1] is None or at < best[1]):
            if kind in ("gzip", "bzip2") and at != 0:
                continue
            best = (kind, at)
    return best


def describe(host_format: str, offset: int, tail: bytes) -> AppendedData:
    kind, at = classify(tail)
    return AppendedData(host_format, offset, len(tail), kind, at)


EOCD = b"PK\x05\x06"
EOCD_SEARCH = 22 + 0xFFFF


def trailing_zip_start(data: bytes) -> int | None:
    """Start of a zip archive that ends the data, found from its end record.

    A zip is read from its end: the end-of-central-directory record (within the last
    64 KiB), whose central directory size and offset give where the archive begins even
    when other data precedes it. This finds an archive hidden *inside* what a host
    format claims as its own (a TIFF strip count that covers it, a JPEG with a stray
    EOI after it) at the cost of one bounded backward search.
    """
    n = len(data)
    pos = data.rfind(EOCD, max(0, n - EOCD_SEARCH))
    if pos < 0 or pos + 22 > n:
        return None
    cd_size = int.from_bytes(data[pos + 12 : pos + 16], "little")
    cd_offset = int.from_bytes(data[pos + 16 : pos + 20], "little")
    cd_start = pos - cd_size
    start = cd_start - cd_offset
    if cd_start < 0 or start < 0 or data[cd_start : cd_start + 4] != b"PK\x01\x02":
        return None
    if data[start : start + 4] != b"PK\x03\x04":
        return None
    return start


def _parse(data: bytes, ctx: ParseContext) -> Parsed:  # pragma: no cover - engine-built
    raise NotImplementedError("appended data is built by the engine, not parsed")


SPEC = FormatSpec(name="appended", description="data after a format's logical end",
                  sniff=sniff_never, parse=_parse)
