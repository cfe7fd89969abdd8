"""Data found after a format's logical end. The engine builds it; it has no sniffer.

``AppendedData`` records where the tail starts, how long it is and which archive magic
(if any) opens it or appears within its first bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from spywall.formats.base import FormatSpec, ParseContext, Parsed

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


@dataclass(frozen=True)
class AppendedData:
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


def _parse(data: bytes, ctx: ParseContext) -> Parsed:  # pragma: no cover - engine-built
    raise NotImplementedError("appended data is built by the engine, not parsed")


SPEC = FormatSpec(name="appended", description="data after a format's logical end",
                  sniff=lambda head: False, parse=_parse)
