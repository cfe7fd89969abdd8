"""The zip family (zip, pkpass, ipa, apk, jar, docx/xlsx/pptx), walked in memory.

Parsing of the central directory is left to the standard library's ``zipfile``; this
module adds the caps: member count, per-member and total decompressed output, ratio and
time. Member names are only ever names: nothing is written to disk, so ``..`` or absolute
names cannot escape anywhere.
"""

from __future__ import annotations

import io
import lzma
import struct
import zipfile
import zlib
from collections.abc import Iterator

from spywall.errors import FormatError, LimitExceeded
from spywall.formats.base import Child, FormatSpec, ParseContext, Parsed
from spywall.formats.magic import sniff_zip as sniff

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


def _subtype(names: list[str]) -> str:
    for marker, sub in _SUBTYPES:
        if marker in names:
            return sub
    if any(n.startswith("Payload/") and n.endswith(".app/") for n in names):
        return "ipa"
    return "zip"


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, ctx: ParseContext) -> bytes:
    budget = ctx.budget
    cap = budget.stream_cap()
    out = bytearray()
    with zf.open(info) as fh:
        while True:
            chunk = fh.read(min(CHUNK, cap + 1 - len(out)))
            if not chunk:
                break
            out += chunk
            if len(out) > cap:
                raise LimitExceeded(f"member {info.filename!r} decompresses past {cap} bytes")
            budget.check_time()
    budget.charge_decompressed(len(out), info.compress_size)
    return bytes(out)


def _children(
    zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], ctx: ParseContext
) -> Iterator[Child]:
    with zf:
        for info in infos:
            if info.filename.endswith("/"):
                continue
            if info.flag_bits & 0x1:
                yield Child(info.filename, b"", format="encrypted")
                continue
            try:
                data = _read_member(zf, info, ctx)
            except ZIP_ERRORS as exc:
                yield Child(info.filename, b"", error=f"cannot extract: {exc}")
                continue
            yield Child(info.filename, data)


def parse(data: bytes, ctx: ParseContext) -> Parsed:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except ZIP_ERRORS as exc:
        raise FormatError(f"bad zip: {exc}") from exc
    if len(infos) > ctx.budget.limits.max_members:
        cap = ctx.budget.limits.max_members
        raise LimitExceeded(f"{len(infos)} members, over the cap of {cap}")
    ctx.budget.charge_elements(len(infos))
    names = [i.filename for i in infos]
    end = _logical_end(data)
    return Parsed(format=_subtype(names), structure=names, logical_end=end,
                  children=_children(zf, infos, ctx))


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
