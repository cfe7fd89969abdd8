"""A PDF's streams found in its raw bytes, for when qpdf cannot (or must not) be used.

qpdf is the reader of record (``formats.pdf``), but some files make it refuse the whole
document (a page tree that loops: "Loop detected in /Pages structure"), and some must
not reach it at all, because qpdf decodes them without any cap while opening: a
cross-reference stream that inflates to a gigabyte, an object stream past the caps.
Such a file is not given up: every ``N G obj << ... >> stream ... endstream`` in its
bytes is found, and the streams spywall examines (JBIG2 images, embedded files, font
programs, DCT images) become children as qpdf would have yielded them. Streams cannot
live inside object streams (ISO 32000-1 7.5.7), so the search reaches every stream.

This reading is cruder than qpdf's: direct ``/Length`` values only (else the data runs
to the next ``endstream``), filter parameters (predictors) are not read, and an
encrypted file is not decrypted. The PDF parser reports when it was used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial

import msgspec

from spywall.errors import FormatError, LimitExceeded
from spywall.formats.base import Child
from spywall.formats.pdf_filters import ALIASES, MAX_FILTERS, codec_of, decode_chain
from spywall.limits import Budget

try:  # the compiled substring search (setup.py); without it ``bytes.find`` does the work
    from spywall.formats import _bytescan
except ImportError:  # pragma: no cover - a build without a C compiler
    _bytescan = None  # type: ignore[assignment]

MAX_STREAMS = 100_000
MAX_XREF_STREAMS = 64
MAX_DICT_BYTES = 64 * 1024
# Decoded cross-reference data allowed before qpdf is let at the file: a table of a
# million objects (qpdf's rows are 7 to 20 bytes) fits.
MAX_XREF_BYTES = 32 << 20

_OBJ = re.compile(rb"(?<![0-9])([0-9]{1,10})[\x00\t\n\x0c\r ]+([0-9]{1,5})[\x00\t\n\x0c\r ]+obj"
                  rb"(?![A-Za-z0-9_])")
_STREAM = re.compile(rb"stream(\r\n|\n|\r)")
_FILTER = re.compile(rb"/Filter[\x00\t\n\x0c\r ]*(/[A-Za-z0-9]+|\[([^\]]{0,1024})\])")
_NAME = re.compile(rb"/([A-Za-z0-9]+)")
_LENGTH = re.compile(rb"/Length[\x00\t\n\x0c\r ]+([0-9]{1,12})(?![\x00\t\n\x0c\r ]+[0-9]+"
                     rb"[\x00\t\n\x0c\r ]+R)")
_GLOBALS = re.compile(rb"/JBIG2Globals[\x00\t\n\x0c\r ]+([0-9]{1,10})[\x00\t\n\x0c\r ]+"
                      rb"([0-9]{1,5})[\x00\t\n\x0c\r ]+R")
# ``/Type /XRef``, with the type name possibly spelled with #xx escapes (``/X#52ef``),
# which qpdf decodes like any name.
_TYPE = re.compile(rb"/Type[\x00\t\n\x0c\r ]*/((?:[A-Za-z0-9]|#[0-9A-Fa-f]{2}){1,32})"
                   rb"(?![A-Za-z0-9#])")
_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_ROLES = (
    (re.compile(rb"/Type[\x00\t\n\x0c\r ]*/EmbeddedFile(?![A-Za-z0-9])"), "EmbeddedFile"),
    (re.compile(rb"/Length1(?![A-Za-z0-9])"), "FontFile2"),
    (re.compile(rb"/Subtype[\x00\t\n\x0c\r ]*/(Type1C|CIDFontType0C|OpenType)"), "FontFile3"),
    (re.compile(rb"/Subtype[\x00\t\n\x0c\r ]*/Image(?![A-Za-z0-9])"), "Image"),
)


class RawStream(msgspec.Struct, frozen=True):
    number: int
    generation: int
    offset: int
    head: bytes  # the dictionary text, from ``obj`` to ``stream``
    start: int
    end: int

    def chain(self) -> list[tuple[str, dict[str, int]]]:
        m = _FILTER.search(self.head)
        if m is None:
            return []
        names = [n.decode() for n in _NAME.findall(m[1])]
        if len(names) > MAX_FILTERS:
            raise FormatError(f"its /Filter chains {len(names)} filters, over the cap of "
                              f"{MAX_FILTERS}")
        return [(ALIASES.get(n, n), {}) for n in names]

    def role(self) -> str | None:
        if codec_of(self.chain()) == "JBIG2Decode":
            return "JBIG2"
        return next((role for pattern, role in _ROLES if pattern.search(self.head)), None)


def _stream_at(data: bytes, m: re.Match[bytes]) -> RawStream | None:
    """The stream of the object whose header ``m`` matched, if it has one."""
    kw = _STREAM.search(data, m.end(), m.end() + MAX_DICT_BYTES)
    if kw is None:
        return None
    head = data[m.end() : kw.start()]
    if b"endobj" in head or _OBJ.search(head):
        return None  # the keyword belongs to a later object
    start = kw.end()
    length = _LENGTH.search(head)
    end = -1
    if length is not None:
        end = start + int(length[1])
        if data[end : end + 32].lstrip(b"\x00\t\n\x0c\r ")[:9] != b"endstream":
            end = -1
    if end < 0:
        end = data.find(b"endstream", start)
        end = len(data) if end < 0 else end
    return RawStream(int(m[1]), int(m[2]), m.start(), bytes(head), start, min(end, len(data)))


def streams(data: bytes, budget: Budget) -> list[RawStream]:
    """Every object with a stream, in file order (a later definition of the same
    object number is kept too: it may be the one a reader takes)."""
    out: list[RawStream] = []
    for m in _OBJ.finditer(data):
        budget.charge_elements()
        s = _stream_at(data, m)
        if s is None:
            continue
        if len(out) >= MAX_STREAMS:
            raise LimitExceeded(f"more than {MAX_STREAMS} streams")
        out.append(s)
    return out


def check_xref_streams(data: bytes, budget: Budget) -> None:
    """Decode every cross-reference stream under our caps before qpdf decodes it with
    none; ``LimitExceeded`` for one past ``MAX_XREF_BYTES`` (or the budget)."""
    limits = msgspec.structs.replace(budget.limits, max_stream_bytes=min(
        budget.limits.max_stream_bytes, MAX_XREF_BYTES))
    trial = Budget(limits, started=budget.started, decompressed=budget.decompressed)
    hits = (m for m in type_entries(data)
            if _ESCAPE.sub(lambda e: bytes.fromhex(e[1].decode()), m[1]) == b"XRef")
    for i, hit in enumerate(hits):
        if i >= MAX_XREF_STREAMS:
            raise LimitExceeded(f"more than {MAX_XREF_STREAMS} cross-reference streams")
        head = data.rfind(b"obj", max(0, hit.start() - MAX_DICT_BYTES), hit.start())
        m = _OBJ.search(data, max(0, head - 24), head + 3) if head >= 0 else None
        s = _stream_at(data, m) if m is not None else None
        if s is None:
            continue
        try:
            decode_chain(data[s.start : s.end], s.chain(), trial)
        except LimitExceeded as exc:
            raise LimitExceeded(f"cross-reference stream (object {s.number} at offset "
                                f"{s.offset}): {exc}") from exc
        except FormatError:
            continue  # qpdf reports a broken one


def type_entries(data: bytes) -> Iterator[re.Match[bytes]]:
    """The matches of ``_TYPE`` in ``data``, as ``_TYPE.finditer`` yields them: each
    ``/Type`` is found by a substring search at memchr speed and the pattern is tried
    there only (the regex engine's own scan for the literal runs at about 3 GB/s, and
    this search covers every byte of the file, image data included)."""
    find = data.find if _bytescan is None else partial(_bytescan.find, data)
    pos = find(b"/Type", 0)
    while pos >= 0:
        m = _TYPE.match(data, pos)
        pos = find(b"/Type", pos + 1 if m is None else m.end())
        if m is not None:
            yield m


def children(data: bytes, found: list[RawStream], budget: Budget) -> Iterator[Child]:
    """The examined streams as children, named like qpdf's (``obj 4 0 @1234 (JBIG2)``).

    A stream that passes a cap is an error child of code ``limit``; the ones after it
    are still examined while the budget lasts."""
    by_number = {(s.number, s.generation): s for s in found}
    for s in found:
        try:
            role = s.role()
        except FormatError as exc:
            yield Child(f"obj {s.number} {s.generation} @{s.offset}", b"", error=str(exc))
            continue
        if role is None:
            continue
        name = f"obj {s.number} {s.generation} @{s.offset} ({role})"
        try:
            chain = s.chain()
            codec = codec_of(chain)
            if codec in ("JPXDecode", "CCITTFaxDecode") or (role == "Image" and codec is None):
                continue
            decoded, codec = decode_chain(data[s.start : s.end], chain, budget)
            if codec == "JBIG2Decode":
                decoded = _globals(data, s, by_number, budget) + decoded
                yield Child(name, decoded, format="jbig2-embedded")
            else:
                yield Child(name, decoded)
        except LimitExceeded as exc:
            budget.check_time()
            yield Child(name, b"", error=str(exc), code="limit")
        except FormatError as exc:
            yield Child(name, b"", error=str(exc), code=exc.code)


def _globals(data: bytes, s: RawStream, by_number: dict[tuple[int, int], RawStream],
             budget: Budget) -> bytes:
    m = _GLOBALS.search(s.head)
    glob = by_number.get((int(m[1]), int(m[2]))) if m is not None else None
    if glob is None:
        return b""
    out, codec = decode_chain(data[glob.start : glob.end], glob.chain(), budget)
    if codec is not None:
        raise FormatError(f"its /JBIG2Globals stream is encoded with /{codec}, an image "
                          "codec, not data a JBIG2 decoder reads")
    return out
