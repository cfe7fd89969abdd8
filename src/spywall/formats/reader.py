"""A bounds-checked cursor over bytes. Every short read raises ``TruncatedError``."""

from __future__ import annotations

import struct

from spywall.errors import FormatError, TruncatedError

_U16BE = struct.Struct(">H")
_U16LE = struct.Struct("<H")
_U32BE = struct.Struct(">I")
_U32LE = struct.Struct("<I")
_U64BE = struct.Struct(">Q")
_U64LE = struct.Struct("<Q")


class Reader:
    """Cursor over ``data[start:end]``; offsets are absolute in ``data``."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else min(end, len(data))
        if pos < 0 or pos > self.end:
            raise TruncatedError(f"offset {pos} points outside the {self.end} bytes present")

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.end:
            raise TruncatedError(
                f"{n} bytes are needed at offset {self.pos}, only {self.end - self.pos} remain"
            )

    def expect(self, n: int, what: str) -> None:
        """``need``, naming the structure: "the file header at offset 0 is cut short: ..."."""
        if n < 0 or self.pos + n > self.end:
            raise TruncatedError(f"{what} at offset {self.pos} is cut short: {n} bytes are "
                                 f"needed, only {self.end - self.pos} remain")

    def seek(self, pos: int) -> None:
        if pos < 0 or pos > self.end:
            raise TruncatedError(f"offset {pos} points outside the {self.end} bytes present")
        self.pos = pos

    def skip(self, n: int) -> None:
        self.need(n)
        self.pos += n

    def read(self, n: int) -> bytes:
        self.need(n)
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        self.need(1)
        v = self.data[self.pos]
        self.pos += 1
        return v

    def _unpack(self, st: struct.Struct) -> int:
        self.need(st.size)
        (v,) = st.unpack_from(self.data, self.pos)
        self.pos += st.size
        return int(v)

    def u16be(self) -> int:
        return self._unpack(_U16BE)

    def u16le(self) -> int:
        return self._unpack(_U16LE)

    def u32be(self) -> int:
        return self._unpack(_U32BE)

    def u32le(self) -> int:
        return self._unpack(_U32LE)

    def u64be(self) -> int:
        return self._unpack(_U64BE)

    def u64le(self) -> int:
        return self._unpack(_U64LE)

    def sub(self, n: int) -> Reader:
        """A reader over the next ``n`` bytes; this cursor moves past them."""
        self.need(n)
        r = Reader(self.data, self.pos, self.pos + n)
        self.pos += n
        return r


def check_count(count: int, cap: int, what: str) -> int:
    """Return ``count`` if it is within ``cap``; raise ``FormatError`` otherwise."""
    if count < 0 or count > cap:
        raise FormatError(f"{what} count {count} is over the cap of {cap}")
    return count
