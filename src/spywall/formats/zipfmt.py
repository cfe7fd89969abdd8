"""The zip family (zip, pkpass, ipa, apk, jar, docx/xlsx/pptx), walked in memory.

Parsing of the central directory is left to the standard library's ``zipfile``, after
``open_capped`` has walked it with the member cap (only the first ``max_members``
entries are given to ``zipfile``; the rest is reported as not examined). This module
adds the other caps: per-member and total decompressed output, ratio (checked as the
member inflates) and time. A member that passes a cap is an error entry of its own
(code ``limit``) and the members after it are still examined while the total budget
lasts. Member names are only ever names: nothing is written to disk, so ``..`` or
absolute names cannot escape anywhere.
"""

from __future__ import annotations

import io
import lzma
import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from spywall.errors import FormatError, LimitExceeded
from spywall.formats.base import Child, FormatSpec, ParseContext, Parsed
from spywall.formats.magic import sniff_zip as sniff
from spywall.limits import MiB

CHUNK = 1 << 20
# zipfile is not hardened against hostile archives: besides its own BadZipFile it lets
# struct, index, codec and decompressor errors escape. All of them mean "this member (or
# this archive) is malformed", so they are caught here, at the library boundary, and
# become error entries. LimitExceeded is ours and passes through.
ZIP_ERRORS = (zipfile.BadZipFile, NotImplementedError, EOFError, ValueError, OSError,
                  RuntimeError, IndexError, KeyError, struct.error, zlib.error,
                  lzma.LZMAError, UnicodeDecodeError)

_SUBTYPES = (
    ("pass.json", "pkpass"),
    ("AndroidManifest.xml", "apk"),
    ("[Content_Types].xml", "ooxml"),
    ("META-INF/MANIFEST.MF", "jar"),
)


# The central directory, walked with a member cap before ``zipfile`` reads it.
#
# ``zipfile`` builds one ``ZipInfo`` per central-directory entry, as many as the directory
# holds, whatever count the end record declares: three million entries of 46 bytes cost
# gigabytes before any cap could be checked. ``open_capped`` first walks the entry headers
# itself (a fixed 46-byte header and three lengths each, APPNOTE 4.3.12), up to ``cap + 1``;
# when there are more, ``zipfile`` is given a view of the archive that ends after the first
# ``cap`` entries with an end record of its own (offsets unchanged), so the members it can
# reach are examined and the rest is reported as not examined.
EOCD = b"PK\x05\x06"
EOCD64 = b"PK\x06\x06"
LOCATOR64 = b"PK\x06\x07"
CENTRAL = b"PK\x01\x02"
EOCD_SIZE, LOCATOR_SIZE, EOCD64_SIZE, CENTRAL_SIZE = 22, 20, 56, 46
MAX_COMMENT = 0xFFFF


class _Joined(io.RawIOBase):
    """The first ``cut`` bytes of ``fp`` followed by ``tail``, as a seekable file."""

    def __init__(self, fp: BinaryIO, cut: int, tail: bytes) -> None:
        super().__init__()
        self._fp, self._cut, self._tail, self._pos = fp, cut, tail, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = (0, self._pos, self._cut + len(self._tail))[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, out: bytearray | memoryview) -> int:  # type: ignore[override]
        want, got = len(out), b""
        if self._pos < self._cut:
            self._fp.seek(self._pos)
            got = self._fp.read(min(want, self._cut - self._pos))
        if len(got) < want and self._pos + len(got) >= self._cut:
            at = self._pos + len(got) - self._cut
            got += self._tail[at : at + want - len(got)]
        out[: len(got)] = got
        self._pos += len(got)
        return len(got)


def _directory(fp: BinaryIO) -> tuple[int, int, int] | None:
    """(start of the central directory, its size, its declared offset), or ``None`` when
    there is no end record (``zipfile`` then says why the archive is bad)."""
    size = fp.seek(0, io.SEEK_END)
    span = min(size, EOCD_SIZE + MAX_COMMENT)
    fp.seek(size - span)
    tail = fp.read(span)
    pos = tail.rfind(EOCD)
    if pos < 0 or pos + EOCD_SIZE > len(tail):
        return None
    at = size - span + pos
    cd_size, cd_offset = struct.unpack_from("<II", tail, pos + 12)
    end = at
    if at >= LOCATOR_SIZE + EOCD64_SIZE:
        fp.seek(at - LOCATOR_SIZE - EOCD64_SIZE)
        rec = fp.read(EOCD64_SIZE + LOCATOR_SIZE)
        if rec[EOCD64_SIZE : EOCD64_SIZE + 4] == LOCATOR64 and rec[:4] == EOCD64:
            cd_size, cd_offset = struct.unpack_from("<QQ", rec, 40)
            end = at - LOCATOR_SIZE - EOCD64_SIZE
    return end - cd_size, cd_size, cd_offset


def count_entries(fp: BinaryIO, cap: int) -> tuple[int, int]:
    """Walk up to ``cap + 1`` central-directory entries: (entries walked, bytes of the
    first ``min(cap, entries)``). Stops early at anything that is not an entry header."""
    found = _directory(fp)
    if found is None:
        return 0, 0
    start, cd_size, _ = found
    pos, count, kept = start, 0, 0
    while pos < start + cd_size and count <= cap and pos >= 0:
        fp.seek(pos)
        head = fp.read(CENTRAL_SIZE)
        if len(head) < CENTRAL_SIZE or head[:4] != CENTRAL:
            break
        n, m, k = struct.unpack_from("<HHH", head, 28)
        pos += CENTRAL_SIZE + n + m + k
        count += 1
        if count <= cap:
            kept = pos - start
    return count, kept


def open_capped(fp: BinaryIO, cap: int) -> tuple[zipfile.ZipFile, int]:
    """``zipfile.ZipFile`` over at most ``cap`` members of ``fp``, and how many entries
    the directory holds (``cap + 1`` means "more than ``cap``")."""
    count, kept = count_entries(fp, cap)
    fp.seek(0)
    if count <= cap:
        return zipfile.ZipFile(fp), count
    found = _directory(fp)
    assert found is not None  # count_entries walked it
    start, _, cd_offset = found
    if cd_offset > 0xFFFFFFFF:
        raise FormatError(f"its zip64 end record declares more than {cap} members")
    record = EOCD + struct.pack("<HHHHIIH", 0, 0, min(cap, 0xFFFF), min(cap, 0xFFFF),
                                kept, cd_offset, 0)
    view = io.BufferedReader(_Joined(fp, start + kept, record))
    return zipfile.ZipFile(view), count


def _subtype(names: list[str]) -> str:
    for marker, sub in _SUBTYPES:
        if marker in names:
            return sub
    if any(n.startswith("Payload/") and n.endswith(".app/") for n in names):
        return "ipa"
    return "zip"


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, ctx: ParseContext) -> bytes:
    """A member's bytes under the caps. A stored member inflates nothing: it is a copy of
    input bytes, capped by the stream cap alone and not charged to the decompression
    budget, so a bomb that spends the budget cannot hide a stored member after it."""
    budget = ctx.budget
    stored = info.compress_type == zipfile.ZIP_STORED
    cap = budget.limits.max_stream_bytes if stored else budget.stream_cap()
    out = bytearray()
    ratio = budget.limits.max_ratio * max(info.compress_size, 1)
    with zf.open(info) as fh:
        while True:
            chunk = fh.read(min(CHUNK, cap + 1 - len(out)))
            if not chunk:
                break
            out += chunk
            if len(out) > cap or (not stored and len(out) > MiB and len(out) > ratio):
                budget.decompressed += 0 if stored else len(out)  # spent, not examined
                what = (f"past {cap} bytes" if len(out) > cap else
                        f"at a ratio over {budget.limits.max_ratio}:1")
                raise LimitExceeded(f"member {info.filename!r} decompresses {what}")
            budget.check_time()
    if not stored:
        budget.charge_decompressed(len(out), info.compress_size)
    return bytes(out)


def _children(
    zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], ctx: ParseContext
) -> Iterator[Child]:
    skipped = 0
    with zf:
        for info in infos:
            if info.filename.endswith("/"):
                continue
            if info.flag_bits & 0x1:
                yield Child(info.filename, b"", format="encrypted")
                continue
            if ctx.budget.stream_cap() == 0 and info.compress_type != zipfile.ZIP_STORED:
                skipped += 1  # the decompression budget is spent; stored ones still read
                continue
            try:
                data = _read_member(zf, info, ctx)
            except ZIP_ERRORS as exc:
                yield Child(info.filename, b"", error=f"the member at offset {info.header_offset} "
                            f"cannot be extracted: {exc}")
                continue
            except LimitExceeded as exc:
                # This member is not examined; the next ones are, while time remains.
                ctx.budget.check_time()
                yield Child(info.filename, b"", error=str(exc), code="limit")
                continue
            yield Child(info.filename, data)
    if skipped:
        yield Child(f"<{skipped} members>", b"", code="limit",
                    error=f"{skipped} compressed members not examined: the decompression "
                          "budget is spent")


def parse(data: bytes, ctx: ParseContext) -> Parsed:
    cap = ctx.budget.limits.max_members
    try:
        zf, entries = open_capped(io.BytesIO(data), cap)
        infos = zf.infolist()
    except ZIP_ERRORS as exc:
        raise FormatError(f"its directory of members cannot be read: {exc}") from exc
    incomplete = []
    if entries > cap:
        incomplete.append(f"more than {cap} members in the central directory: only the "
                          f"first {len(infos)} examined")
    ctx.budget.charge_elements(len(infos))
    names = [i.filename for i in infos]
    end = _logical_end(data)
    return Parsed(format=_subtype(names), structure=names, logical_end=end,
                  children=_children(zf, infos, ctx), incomplete=incomplete)


def _logical_end(data: bytes) -> int | None:
    """End of the end-of-central-directory record (with its comment), if found."""
    pos = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if pos < 0 or pos + 22 > len(data):
        return None
    comment = int.from_bytes(data[pos + 20 : pos + 22], "little")
    return min(len(data), pos + 22 + comment)


SPEC = FormatSpec(
    name="zip",
    description="zip family: zip, pkpass, ipa, apk, jar, docx/xlsx/pptx",
    sniff=sniff,
    parse=parse,
    container=True,
    dense=True,  # zipfile reads through io.BytesIO, which copies anything but bytes
)
