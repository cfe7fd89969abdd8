"""WebP: the RIFF container, walked chunk by chunk; every lossless bit stream is read.

``RIFF`` le32 size ``WEBP``, then chunks (fourcc, le32 size, payload padded to even).
Simple files hold one ``VP8 `` (lossy) or ``VP8L`` (lossless) chunk; extended files start
with ``VP8X`` (flags, canvas size) and may hold ``ALPH``, ``ANIM`` and ``ANMF`` frames,
each frame holding its own ``ALPH``/``VP8 ``/``VP8L`` chunks. Lossless data is read by
``formats.vp8l``: ``VP8L`` chunks, and ``ALPH`` chunks with compression method 1 (a
headerless VP8L image stream of the frame's or canvas's size). Lossy VP8 data is not
examined. ``logical_end`` is 8 + the RIFF size (padded to even), capped at the data.
A file that passes a cap (``MAX_CHUNKS``, the element or time budget) keeps the chunks
and streams read before it (``Parsed.incomplete`` names the cap).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from spywall.errors import FormatError, LimitExceeded
from spywall.formats import vp8l
from spywall.formats.base import Child, FormatSpec, ParseContext, Parsed
from spywall.formats.magic import sniff_webp as sniff
from spywall.formats.reader import Reader

MAX_CHUNKS = 100_000
ANMF_HEADER = 16


class Chunk(msgspec.Struct, frozen=True):
    fourcc: str
    offset: int
    size: int
    frame: int | None = None


class WebP(msgspec.Struct, frozen=True):
    riff_size: int
    canvas: tuple[int, int] | None
    frames: int
    chunks: tuple[Chunk, ...]
    streams: tuple[vp8l.Bitstream, ...]


class _Walk(msgspec.Struct):
    data: bytes
    ctx: ParseContext
    canvas: tuple[int, int] | None = None
    frames: int = 0
    pixels_left: int = vp8l.MAX_DECODED_PIXELS
    chunks: list[Chunk] = msgspec.field(default_factory=list)
    streams: list[vp8l.Bitstream] = msgspec.field(default_factory=list)
    warnings: list[str] = msgspec.field(default_factory=list)

    def walk(self, start: int, end: int, frame: int | None, size: tuple[int, int] | None
             ) -> None:
        r = Reader(self.data, start, end)
        while r.remaining >= 8:
            off = r.pos
            fourcc = r.read(4)
            length = r.u32le()
            if len(self.chunks) >= MAX_CHUNKS:
                raise LimitExceeded(f"more than {MAX_CHUNKS} chunks (at offset {off})")
            self.ctx.budget.charge_elements()
            name = fourcc.decode("latin-1")
            if length > r.remaining:
                self.warnings.append(f"the {name!r} chunk at offset {off} says it holds "
                                     f"{length} bytes, but only {r.remaining} follow")
                length = r.remaining
            body = r.pos
            r.skip(length)
            if length & 1 and r.remaining:
                r.skip(1)
            self.chunks.append(Chunk(name, off, length, frame))
            handler = _HANDLERS.get(fourcc)
            if handler is not None:
                handler(self, body, body + length, frame, size)
        if r.remaining:
            self.warnings.append(f"{r.remaining} bytes at offset {r.pos} are too few to be a "
                                 "chunk")

    def stream(self, start: int, end: int, source: str, frame: int | None,
               size: tuple[int, int] | None) -> None:
        s = vp8l.read_stream(self.data, start, end, self.ctx, source, frame, size,
                             self.pixels_left)
        self.pixels_left -= s.pixels
        self.streams.append(s)
        if s.error:
            where = f" (frame {frame})" if frame is not None else ""
            self.warnings.append(f"the {source} image data at offset {start}{where}: {s.error}")


def _vp8l(w: _Walk, start: int, end: int, frame: int | None, _: tuple[int, int] | None
          ) -> None:
    w.stream(start, end, "VP8L", frame, None)


def _alph(w: _Walk, start: int, end: int, frame: int | None, size: tuple[int, int] | None
          ) -> None:
    size = size or w.canvas
    if end <= start or size is None:
        return
    method = w.data[start] & 3
    if method == 1:
        w.stream(start + 1, end, "ALPH", frame, size)
    elif method > 1:
        w.warnings.append(f"the 'ALPH' chunk at offset {start - 8} names compression method "
                          f"{method}, which WebP does not define")


def _vp8x(w: _Walk, start: int, end: int, _f: int | None, _s: tuple[int, int] | None
          ) -> None:
    if end - start >= 10:
        d = w.data
        w.canvas = (int.from_bytes(d[start + 4 : start + 7], "little") + 1,
                    int.from_bytes(d[start + 7 : start + 10], "little") + 1)


def _anmf(w: _Walk, start: int, end: int, frame: int | None, _: tuple[int, int] | None
          ) -> None:
    if frame is not None or end - start < ANMF_HEADER:
        return  # frames do not nest
    w.frames += 1
    d = w.data
    size = (int.from_bytes(d[start + 6 : start + 9], "little") + 1,
            int.from_bytes(d[start + 9 : start + 12], "little") + 1)
    w.walk(start + ANMF_HEADER, end, w.frames, size)


_Handler = Callable[[_Walk, int, int, "int | None", "tuple[int, int] | None"], None]
_HANDLERS: dict[bytes, _Handler] = {
    b"VP8L": _vp8l,
    b"ALPH": _alph,
    b"VP8X": _vp8x,
    b"ANMF": _anmf,
}


def parse(data: bytes, ctx: ParseContext) -> Parsed:
    r = Reader(data)
    r.skip(4)
    riff_size = r.u32le()
    if r.read(4) != b"WEBP":
        raise FormatError("the RIFF header at offset 0 does not say WEBP (offset 8)")
    declared = 8 + riff_size + (riff_size & 1)
    end = min(declared, len(data))
    w = _Walk(data, ctx)
    if declared > len(data) + (riff_size & 1):
        w.warnings.append(f"the RIFF header says the file is {declared} bytes long, but only "
                          f"{len(data)} are present (size at offset 4)")
    incomplete: list[str] = []
    try:
        w.walk(12, end, None, None)
    except LimitExceeded as exc:  # the chunks and streams read so far are detected on
        incomplete.append(str(exc))
    structure = WebP(riff_size, w.canvas, w.frames, tuple(w.chunks), tuple(w.streams))
    # an EXIF chunk holds a TIFF: examined as one (DNG/TIFF structures in a WebP's metadata)
    exif = [c for c in (_exif_child(data, ch) for ch in w.chunks if ch.fourcc == "EXIF")
            if c is not None][:MAX_EXIF_CHILDREN]
    return Parsed(format="webp", structure=structure, logical_end=end, children=exif,
                  warnings=w.warnings, incomplete=incomplete)


MAX_EXIF_CHILDREN = 4


def _exif_child(data: bytes, chunk: Chunk) -> Child | None:
    payload = data[chunk.offset + 8 : chunk.offset + 8 + chunk.size]
    if payload[:6] == b"Exif\x00\x00":
        payload = payload[6:]
    if payload[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    return Child(f"EXIF@{chunk.offset}", bytes(payload), format="tiff")


SPEC = FormatSpec(name="webp", description="WebP image (RIFF; VP8L lossless bit streams read)",
                  sniff=sniff, parse=parse)
