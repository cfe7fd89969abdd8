"""A bounded, streaming reader of tar archives (a sysdiagnose's ``.tar.gz``).

A sysdiagnose is one gzip-compressed tar of a few hundred megabytes; a check needs a
handful of small files in it. The archive is read once, front to back, without seeking
and without writing anything to disk: each member's header is parsed, the data of the
members the caller wants is kept (each up to a cap), the rest is read past in chunks.

The format (POSIX.1-1988 ustar, with the GNU and POSIX.1-2001 pax extensions tar and
Apple's libarchive write): 512-byte headers, ``name`` (100 bytes) and, for ustar,
``prefix`` (155 bytes) joined by ``/``; ``size`` in octal ASCII or, when its first byte
has the high bit set, base-256; a checksum that is the sum of the header's bytes with
the checksum field counted as spaces; type ``L`` (GNU) holds the next member's long
name, type ``x`` (pax) ``"<length> <key>=<value>\\n"`` records whose ``path`` and
``size`` override the next header's; the data follows each header, padded to 512 bytes;
a zero block ends the archive.

Python's ``tarfile`` reads a pax or long-name header whole into memory, whatever size it
claims; here every length is checked against a cap before it is read: a long name or pax
header over ``MAX_META`` bytes, more than ``max_members`` members, more than ``max_bytes``
read in all, or the time budget spent is a ``LimitExceeded``; a bad header (checksum,
size field) or an archive cut short is a ``FormatError``. Names are only ever names.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Protocol

import msgspec

from spywall.errors import FormatError, LimitExceeded

BLOCK = 512
MAX_META = 64 * 1024  # a long name or a pax header
_CHUNK = 1024 * 1024
# Member types: regular file ("0", NUL, "7" contiguous), directory ("5"); the
# extensions that describe the next member; anything else (links, devices, FIFOs) is
# listed with its type and never read.
FILE_TYPES = frozenset(b"0\x007")
DIRECTORY = ord("5")
_NO_DATA = frozenset(b"123456")
_LONGNAME, _LONGLINK, _PAX, _GLOBAL = ord("L"), ord("K"), ord("x"), ord("g")


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class Member(msgspec.Struct, frozen=True):
    """One member: its name as stored (after the long-name and pax extensions), its
    type byte, its size, its modification time (unix seconds), and its data when the
    caller wanted it (``None`` otherwise, or when it was over the cap: ``over_cap``)."""

    name: str
    type: int
    size: int
    mtime: int
    data: bytes | None = None
    over_cap: bool = False

    @property
    def is_file(self) -> bool:
        return self.type in FILE_TYPES


class Caps(msgspec.Struct, frozen=True):
    max_members: int
    max_bytes: int       # read in all (headers and data, decompressed)
    max_member: int      # data kept for one wanted member
    seconds: float


class _Source:
    """The stream, with the caps on what is read from it."""

    def __init__(self, stream: Readable, caps: Caps) -> None:
        self.stream = stream
        self.caps = caps
        self.read_total = 0
        self.deadline = time.monotonic() + caps.seconds

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes (``FormatError`` when the archive ends first)."""
        if self.read_total + n > self.caps.max_bytes:
            raise LimitExceeded(f"more than {self.caps.max_bytes} bytes in the archive, "
                                "over the cap")
        parts: list[bytes] = []
        left = n
        while left:
            got = self.stream.read(min(left, _CHUNK))
            if not got:
                raise FormatError(f"archive cut short ({self.read_total} bytes read)")
            parts.append(got)
            left -= len(got)
            self.read_total += len(got)
            if time.monotonic() > self.deadline:
                raise LimitExceeded(f"time budget of {self.caps.seconds:g}s spent reading "
                                    "the archive")
        return b"".join(parts) if len(parts) != 1 else parts[0]

    def skip(self, n: int) -> None:
        while n:
            step = min(n, _CHUNK)
            self.read(step)
            n -= step


def _number(field: bytes, what: str) -> int:
    """An octal ASCII number (NUL- or space-terminated) or a base-256 one."""
    if field[:1] and field[0] & 0x80:
        if field[0] & 0x40:
            raise FormatError(f"negative {what} in a tar header")
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise FormatError(f"bad {what} field in a tar header: {text[:20]!r}") from None


def _checksum_ok(header: bytes) -> bool:
    stored = _number(header[148:156], "checksum")
    unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
    if stored == unsigned:
        return True
    signed = unsigned - sum(b for b in header[:148] + header[156:] if b > 127) * 2
    return stored == signed  # (old writers summed signed chars)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def pax_records(data: bytes) -> dict[str, str]:
    """The ``"<length> <key>=<value>\\n"`` records of a pax header (bounded by ``data``:
    each length is checked against what remains)."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos, pos + 21)
        if space < 0:
            if not data[pos:].strip(b"\0"):
                break
            raise FormatError("bad pax record length")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise FormatError("bad pax record length") from None
        end = pos + length
        if length <= space - pos + 1 or end > len(data) or data[end - 1:end] != b"\n":
            raise FormatError("pax record past the end of its header")
        key, eq, value = data[space + 1:end - 1].partition(b"=")
        if eq:
            out[key.decode("utf-8", "surrogateescape")] = value.decode(
                "utf-8", "surrogateescape")
        pos = end
    return out


def members(stream: Readable, caps: Caps,
            wanted: Callable[[str], bool]) -> Iterator[Member]:
    """Every member of the archive in ``stream``, in order; the data of those whose name
    ``wanted`` accepts (regular files up to ``caps.max_member`` bytes) is kept."""
    src = _Source(stream, caps)
    count = 0
    long_name: str | None = None
    pax: dict[str, str] = {}
    while True:
        header = src.read(BLOCK)
        if not header.strip(b"\0"):
            return  # (the end: a zero block; what follows is padding)
        if not _checksum_ok(header):
            raise FormatError(f"tar header checksum mismatch at byte {src.read_total - BLOCK}")
        kind = header[156]
        size = _number(header[124:136], "size")
        if kind in (_LONGNAME, _LONGLINK, _PAX, _GLOBAL):
            if size > MAX_META:
                raise LimitExceeded(f"a tar extension header of {size} bytes (cap "
                                    f"{MAX_META})")
            meta = src.read(size)
            src.skip(-size % BLOCK)
            if kind == _LONGNAME:
                long_name = _text(meta)
            elif kind == _PAX:
                pax = pax_records(meta)
            continue
        count += 1
        if count > caps.max_members:
            raise LimitExceeded(f"more than {caps.max_members} members in the archive")
        name = _text(header[:100])
        if header[257:263] == b"ustar\0" and header[345]:  # POSIX: a prefix
            name = f"{_text(header[345:500])}/{name}"
        name = pax.get("path") or long_name or name
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                raise FormatError("bad pax size") from None
            if size < 0:
                raise FormatError("negative pax size")
        mtime = _number(header[136:148], "mtime")
        long_name, pax = None, {}
        padded = size + (-size % BLOCK)
        if kind in FILE_TYPES and wanted(name):
            if size > caps.max_member:
                src.skip(padded)
                yield Member(name, kind, size, mtime, None, over_cap=True)
                continue
            data = src.read(size)
            src.skip(padded - size)
            yield Member(name, kind, size, mtime, data)
            continue
        # (links, devices, FIFOs and folders carry no data, whatever their size field
        # says, as tar itself reads them; a type no standard defines is read past)
        src.skip(0 if kind in _NO_DATA else padded)
        yield Member(name, kind, size, mtime)
