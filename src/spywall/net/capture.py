"""Stream packet records out of a pcap or pcapng file, never reading it whole.

pcap (draft-ietf-opsawg-pcap): microsecond and nanosecond magic, either byte order.
pcapng (draft-ietf-opsawg-pcapng): SHB in either byte order and any number of sections,
IDB (several interfaces, ``if_tsresol``, ``if_tsoffset``), EPB, SPB and the obsolete packet
block; NRB, ISB, custom and unknown blocks are skipped by their length (custom and
systemd journal blocks still take a frame number, as they do in Wireshark).

Iterating a ``CaptureReader`` yields ``(frame, ts, linktype, data, orig_len)`` with frame
numbers counted as Wireshark counts them. Problems confined to one record go to
``on_error`` and the reading goes on; a problem that loses the record framing (a bogus
length) raises ``FormatError`` / ``TruncatedError`` after the records before it were yielded.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO, Protocol

from spywall.errors import FormatError, TruncatedError


class NotACapture(FormatError):
    """The file is not a capture at all: an input error (exit status 2), not a capture
    with damaged records."""

    code = "input"

Record = tuple[int, float, int, bytes, int]
ErrorSink = Callable[[int, str, str], None]   # (frame, code, message)

CHUNK = 1 << 20
MAX_CAPLEN = 262_144          # Wireshark's standard maximum packet size
MAX_BLOCK = 4 * MAX_CAPLEN    # a packet block with generous options
MAX_INTERFACES = 4096
MAX_OPTIONS = 256
RESYNC_WINDOW = 1 << 20       # how far to look for the next record after a bogus one
MAX_RESYNCS = 32              # per capture, then the reading stops

PCAP_MAGICS: dict[bytes, tuple[str, int]] = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000), b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000), b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
BOM = 0x1A2B3C4D
SHB, IDB, OPB, SPB, EPB = 0x0A0D0D0A, 1, 2, 3, 6
# Blocks Wireshark (3.6+) shows as frames of their own though they hold no packet: custom
# blocks and systemd journal exports. Counting them keeps frame numbers equal to Wireshark's.
BLOCK_KINDS: dict[int, str] = {
    SHB: "meta", IDB: "meta", EPB: "packet", SPB: "packet", OPB: "packet",
    0x00000BAD: "numbered", 0x40000BAD: "numbered", 0x00000009: "numbered"}
BOMS = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
_BLOCK_STRUCTS = {bo: (struct.Struct(bo + "II").unpack_from, struct.Struct(bo + "I").unpack_from,
                       struct.Struct(bo + "IIIII").unpack_from) for bo in "<>"}


def sniff(head: bytes) -> str | None:
    """``pcap``, ``pcapng`` or None from the first bytes."""
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_MAGIC:
        return "pcapng"
    return None


class ReadTap(Protocol):
    def __call__(self, chunk: bytes) -> None: ...


class _Source:
    """Chunked reads with a sliding buffer; every chunk goes to ``tap`` (hash, progress).
    ``base`` is the offset in the capture of the buffer's first byte (for messages)."""

    __slots__ = ("base", "eof", "stream", "tap")

    def __init__(self, stream: BinaryIO, tap: ReadTap | None) -> None:
        self.stream, self.tap, self.eof, self.base = stream, tap, False, 0

    def fill(self, buf: bytes, pos: int, need: int) -> bytes:
        """``buf[pos:]`` extended by whole chunks until it holds ``need`` bytes (or EOF)."""
        self.base += pos
        out = buf[pos:]
        while len(out) < need and not self.eof:
            chunk = self.stream.read(max(CHUNK, need - len(out)))
            if not chunk:
                self.eof = True
                break
            if self.tap is not None:
                self.tap(chunk)
            out += chunk
        return out


class _Interface:
    __slots__ = ("linktype", "offset", "scale", "snaplen")

    def __init__(self, linktype: int, snaplen: int, scale: int, offset: int) -> None:
        self.linktype, self.snaplen, self.scale, self.offset = linktype, snaplen, scale, offset


class CaptureReader:
    """One capture file. ``format`` is known after construction (the header is read)."""

    def __init__(self, stream: BinaryIO, on_error: ErrorSink,
                 tap: ReadTap | None = None) -> None:
        self.src = _Source(stream, tap)
        self.on_error = on_error
        self.buf = self.src.fill(b"", 0, 24)
        fmt = sniff(self.buf)
        if fmt is None:
            raise NotACapture("not a pcap or pcapng capture (unknown magic)")
        self.format = fmt
        self.frames = 0

    def __iter__(self) -> Iterator[Record]:
        return self._pcap() if self.format == "pcap" else self._pcapng()

    # ---- pcap ----------------------------------------------------------------------
    def _pcap(self) -> Iterator[Record]:
        buf = self.buf
        if len(buf) < 24:
            raise TruncatedError(f"the pcap file header at offset 0 is cut short ({len(buf)} "
                                 "of 24 bytes)")
        bo, scale = PCAP_MAGICS[buf[:4]]
        major, _minor, _zone, _sig, _snap, network = struct.unpack_from(bo + "HHiIII", buf, 4)
        if major != 2:
            raise FormatError(f"the pcap file header gives major version {major} (2 expected)")
        linktype = network & 0xFFFF
        rec = struct.Struct(bo + "IIII").unpack_from
        fill = self.src.fill
        pos, frame, n = 24, 0, len(buf)
        last_sec = resyncs = 0
        try:
            while True:
                if n - pos < 16:
                    buf = fill(buf, pos, 16)
                    pos, n = 0, len(buf)
                    if n == 0:
                        break
                    if n < 16:
                        raise TruncatedError(f"the record header of frame {frame + 1} at "
                                             f"offset {self.src.base} is cut short ({n} "
                                             "of 16 bytes)")
                sec, frac, incl, orig = rec(buf, pos)
                if incl > MAX_CAPLEN:
                    if frame == 0 or resyncs >= MAX_RESYNCS:
                        raise FormatError(f"the record header of frame {frame + 1} at offset "
                                          f"{self.src.base + pos} gives a captured length "
                                          f"of {incl}, over {MAX_CAPLEN} (framing lost)")
                    resyncs += 1
                    buf, pos = self._pcap_resync(buf, pos, bo, scale, last_sec, frame)
                    n = len(buf)
                    continue
                last_sec = sec
                end = pos + 16 + incl
                if end > n:
                    buf = fill(buf, pos, 16 + incl)
                    pos, n = 0, len(buf)
                    end = 16 + incl
                    if end > n:
                        raise TruncatedError(f"the packet data of frame {frame + 1} at offset "
                                             f"{self.src.base + 16} is cut short "
                                             f"({n - 16} of {incl} bytes)")
                frame += 1
                yield frame, sec + frac / scale, linktype, buf[pos + 16:end], orig
                pos = end
        finally:
            self.frames = frame

    def _pcap_resync(self, buf: bytes, pos: int, bo: str, scale: int, last_sec: int,
                     frame: int) -> tuple[bytes, int]:
        """After a bogus record at ``pos``: the buffer and offset of the next plausible
        record header (its seconds near the last good record's, sane lengths, and the
        header after it sane too) within ``RESYNC_WINDOW`` bytes; else ``FormatError``."""
        buf = self.src.fill(buf, pos, RESYNC_WINDOW)
        rec = struct.Struct(bo + "IIII").unpack_from
        top = last_sec.to_bytes(4, "little" if bo == "<" else "big")
        key, shift = (top[2:], 2) if bo == "<" else (top[:2], 0)

        def sane(p: int) -> int:
            """The offset after the record at ``p`` if its header is plausible, else -1."""
            sec, frac, incl, orig = rec(buf, p)
            ok = abs(sec - last_sec) < 86400 and frac < scale and incl <= min(orig, MAX_CAPLEN)
            return p + 16 + incl if ok else -1

        i = 1
        while (hit := buf.find(key, i + shift)) >= 0:
            p = hit - shift
            i = p + 1
            if p + 16 > len(buf):
                break
            nxt = sane(p)
            if nxt < 0 or nxt > len(buf):
                continue
            if (nxt == len(buf) and self.src.eof) or (nxt + 16 <= len(buf) and sane(nxt) >= 0):
                self.on_error(frame + 1, "malformed",
                              f"bogus record length; skipped {p} bytes to the next "
                              "plausible record")
                return buf, p
        raise FormatError(f"frame {frame + 1}: bogus record length and no plausible record "
                          f"in the next {RESYNC_WINDOW} bytes (framing lost)")

    # ---- pcapng --------------------------------------------------------------------
    def _pcapng(self) -> Iterator[Record]:
        buf, pos = self.buf, 0
        bo = "<"
        ifaces: list[_Interface] = []
        frame = 0
        fill = self.src.fill
        hdr, u32, epb = _BLOCK_STRUCTS[bo]
        resyncs = 0
        try:
            while True:
                if len(buf) - pos < 12:
                    buf, pos = fill(buf, pos, 12), 0
                    if not buf:
                        return
                    if len(buf) < 12:
                        raise TruncatedError(f"the block header at offset {self.src.base} is "
                                             f"cut short ({len(buf)} of 12 bytes)")
                btype, blen = hdr(buf, pos)
                if btype == SHB:           # a palindrome: the same in either byte order
                    bo = BOMS.get(buf[pos + 8:pos + 12], "")
                    if not bo:
                        raise FormatError(f"the section header block at offset "
                                          f"{self.src.base + pos} has a bad byte-order magic")
                    hdr, u32, epb = _BLOCK_STRUCTS[bo]
                    blen = hdr(buf, pos)[1]
                    ifaces = []
                bogus = blen < 12 or blen % 4 or blen > MAX_BLOCK
                if not bogus and len(buf) - pos < blen:
                    buf, pos = fill(buf, pos, blen), 0
                    if len(buf) < blen:
                        raise TruncatedError(f"the block of type {btype:#x} at offset "
                                             f"{self.src.base} is cut short "
                                             f"({len(buf)} of {blen} bytes)")
                if bogus or u32(buf, pos + blen - 4)[0] != blen:
                    if resyncs >= MAX_RESYNCS or not ifaces:
                        raise FormatError(f"the block of type {btype:#x} at offset "
                                          f"{self.src.base + pos} gives a bogus length "
                                          f"{blen} (framing lost)")
                    resyncs += 1
                    buf, pos = self._pcapng_resync(buf, pos, bo, frame)
                    continue
                start, pos = pos, pos + blen
                if btype == EPB and blen >= 32:        # the common case, without copies
                    frame += 1
                    index, hi, lo, incl, orig = epb(buf, start + 8)
                    if incl <= blen - 32 and index < len(ifaces):
                        iface = ifaces[index]
                        yield (frame, ((hi << 32) | lo) / iface.scale + iface.offset,
                               iface.linktype, buf[start + 28:start + 28 + incl], orig)
                        continue
                    frame -= 1
                kind = BLOCK_KINDS.get(btype)
                if kind is None:
                    continue
                if kind != "meta":
                    frame += 1
                    self.frames = frame
                if kind == "packet":
                    rec = self._packet(btype, buf[start:pos], bo, ifaces, frame)
                    if rec is not None:
                        yield rec
                elif kind == "meta":
                    self._meta(btype, buf[start:pos], bo, ifaces, frame)
        finally:
            self.frames = frame

    def _pcapng_resync(self, buf: bytes, pos: int, bo: str, frame: int) -> tuple[bytes, int]:
        """After a block with a bogus length at ``pos``: the next 32-bit aligned enhanced
        packet block whose trailing length matches (within ``RESYNC_WINDOW``)."""
        buf = self.src.fill(buf, pos, RESYNC_WINDOW)
        hdr, u32, _ = _BLOCK_STRUCTS[bo]
        magic = struct.pack(bo + "I", EPB)
        i = 4
        while (p := buf.find(magic, i)) >= 0:
            i = p + 1
            if p % 4 or p + 12 > len(buf):
                continue
            blen = hdr(buf, p)[1]
            if (32 <= blen <= MAX_BLOCK and not blen % 4 and p + blen <= len(buf)
                    and u32(buf, p + blen - 4)[0] == blen):
                self.on_error(frame + 1, "malformed", f"block with a bogus length; skipped {p} "
                                                      "bytes to the next packet block")
                return buf, p
        raise FormatError(f"block with a bogus length after frame {frame} and no packet "
                          f"block in the next {RESYNC_WINDOW} bytes (framing lost)")

    def _meta(self, btype: int, block: bytes, bo: str, ifaces: list[_Interface],
              frame: int) -> None:
        if btype == SHB:
            self._shb(block, bo)
        else:
            self._idb(block, bo, ifaces, frame)

    def _shb(self, block: bytes, bo: str) -> None:
        if len(block) < 28:
            raise FormatError("the section header block is shorter than 28 bytes")
        major = struct.unpack_from(bo + "H", block, 12)[0]
        if major != 1:
            raise FormatError(f"the section header block gives major version {major} "
                              "(1 expected)")

    def _idb(self, block: bytes, bo: str, ifaces: list[_Interface], frame: int) -> None:
        if len(block) < 20:
            self.on_error(frame, "malformed", "interface description block too short")
            ifaces.append(_Interface(-1, 0, 1_000_000, 0))
            return
        if len(ifaces) >= MAX_INTERFACES:
            raise FormatError(f"more than {MAX_INTERFACES} interfaces in one section")
        linktype, _res, snaplen = struct.unpack_from(bo + "HHI", block, 8)
        scale, offset = 1_000_000, 0
        for code, value in _options(block, 16, len(block) - 4, bo):
            if code == 9 and len(value) == 1:
                exp = value[0] & 0x7F
                if exp > 30 and not value[0] & 0x80:
                    self.on_error(frame, "malformed", f"if_tsresol 10^-{exp} is absurd")
                    continue
                scale = (2 if value[0] & 0x80 else 10) ** min(exp, 63)
            elif code == 14 and len(value) == 8:
                offset = struct.unpack(bo + "q", value)[0]
        ifaces.append(_Interface(linktype, snaplen, scale, offset))

    def _iface(self, ifaces: list[_Interface], index: int, frame: int) -> _Interface | None:
        if index >= len(ifaces):
            self.on_error(frame, "malformed", f"packet block names interface {index}, "
                                              f"only {len(ifaces)} described")
            return None
        return ifaces[index]

    def _packet(self, btype: int, block: bytes, bo: str, ifaces: list[_Interface],
                frame: int) -> Record | None:
        body_end = len(block) - 4
        if btype == SPB:
            if len(block) < 16:
                self.on_error(frame, "malformed", "simple packet block too short")
                return None
            iface = self._iface(ifaces, 0, frame)
            if iface is None:
                return None
            orig = struct.unpack_from(bo + "I", block, 8)[0]
            incl = min(orig, body_end - 12)
            if iface.snaplen:
                incl = min(incl, iface.snaplen)
            return frame, 0.0, iface.linktype, block[12:12 + incl], orig
        if btype == EPB:
            head = 28
            if len(block) < 32:
                self.on_error(frame, "malformed", "enhanced packet block too short")
                return None
            index, hi, lo, incl, orig = struct.unpack_from(bo + "IIIII", block, 8)
        else:
            head = 28
            if len(block) < 32:
                self.on_error(frame, "malformed", "obsolete packet block too short")
                return None
            index, _drops, hi, lo, incl, orig = struct.unpack_from(bo + "HHIIII", block, 8)
        if incl > body_end - head:
            self.on_error(frame, "malformed", f"captured length {incl} runs past its block "
                                              f"({body_end - head} bytes of data)")
            return None
        iface = self._iface(ifaces, index, frame)
        if iface is None:
            return None
        ts = ((hi << 32) | lo) / iface.scale + iface.offset
        return frame, ts, iface.linktype, block[head:head + incl], orig


def _options(block: bytes, pos: int, end: int, bo: str) -> Iterator[tuple[int, bytes]]:
    """(code, value) pairs of a pcapng option list, bounded; stops at opt_endofopt."""
    opt = struct.Struct(bo + "HH").unpack_from
    for _ in range(MAX_OPTIONS):
        if pos + 4 > end:
            return
        code, length = opt(block, pos)
        if code == 0:
            return
        pos += 4
        if pos + length > end:
            return
        yield code, block[pos:pos + length]
        pos += length + (-length % 4)
