"""GIF87a / GIF89a: logical screen, colour tables, extensions and image descriptors.

Walks the block stream (GIF89a section 17 onwards): header, logical screen descriptor,
global colour table, then extensions (0x21) and images (0x2C, descriptor, local colour
table, LZW minimum code size, data sub-blocks) up to the trailer (0x3B), which is the
``logical_end``. LZW data is never decoded: only its sub-block lengths are followed.
A file cut short keeps the frames read so far (with a warning), and so does one that
passes a cap (``MAX_BLOCKS``, the element or time budget): the frames read before it are
detected on and the cap is reported (``Parsed.incomplete``); a byte that starts no
block ends the GIF there, as decoders do, so what follows is looked at as appended data.
"""

from __future__ import annotations

import msgspec

from spywall.errors import FormatError, LimitExceeded, TruncatedError
from spywall.formats.base import FormatSpec, ParseContext, Parsed
from spywall.formats.magic import sniff_gif as sniff
from spywall.formats.reader import Reader

EXTENSION, IMAGE, TRAILER = 0x21, 0x2C, 0x3B
MAX_BLOCKS = 200_000


class Frame(msgspec.Struct, frozen=True):
    """One image descriptor. ``lzw_min_code_size`` is ``None`` if the data was cut short."""

    index: int
    offset: int
    left: int
    top: int
    width: int
    height: int
    interlaced: bool
    local_colours: int
    lzw_min_code_size: int | None
    data_bytes: int

    @property
    def area(self) -> int:
        return self.width * self.height


class GifFile(msgspec.Struct, frozen=True):
    version: str
    width: int
    height: int
    global_colours: int
    frames: tuple[Frame, ...]
    extensions: int
    trailer: bool


def _colours(packed: int) -> int:
    """Entries of the colour table a packed field announces (0 if none)."""
    return 2 << (packed & 7) if packed & 0x80 else 0


def _sub_blocks(data: bytes, pos: int) -> tuple[int, int, int]:
    """Follow data sub-blocks from ``pos``: (position after the terminator, data bytes,
    number of sub-blocks). Raises ``TruncatedError`` if the data ends first."""
    total = blocks = 0
    end = len(data)
    while pos < end:
        size = data[pos]
        pos += 1
        if size == 0:
            return pos, total, blocks
        pos += size
        total += size
        blocks += 1
    raise TruncatedError(f"its data sub-blocks run past the end of the file ({end} bytes)")


class _Walk:
    def __init__(self, data: bytes, ctx: ParseContext) -> None:
        self.data = data
        self.ctx = ctx
        self.frames: list[Frame] = []
        self.extensions = 0

    def image(self, r: Reader, at: int) -> None:
        left, top, width, height = r.u16le(), r.u16le(), r.u16le(), r.u16le()
        packed = r.u8()
        frame = Frame(len(self.frames), at, left, top, width, height, bool(packed & 0x40),
                      _colours(packed), None, 0)
        self.frames.append(frame)  # kept even if the data is cut short below
        r.skip(3 * frame.local_colours)
        self.frames[-1] = frame = msgspec.structs.replace(frame, lzw_min_code_size=r.u8())
        pos, total, blocks = _sub_blocks(self.data, r.pos)
        self.ctx.budget.charge_elements(blocks // 256)
        self.frames[-1] = msgspec.structs.replace(frame, data_bytes=total)
        r.seek(pos)

    def extension(self, r: Reader) -> None:
        r.u8()  # label
        pos, _, blocks = _sub_blocks(self.data, r.pos)
        self.ctx.budget.charge_elements(blocks // 256)
        self.extensions += 1
        r.seek(pos)


def parse(data: bytes, ctx: ParseContext) -> Parsed:
    r = Reader(data)
    r.expect(13, "the header and screen descriptor")
    magic = r.read(6)
    if not sniff(magic):
        raise FormatError("the header at offset 0 is not a GIF header")
    version = magic[3:].decode("ascii")
    width, height, packed = r.u16le(), r.u16le(), r.u8()
    r.skip(2)
    global_colours = _colours(packed)
    r.expect(3 * global_colours, "the global colour table")
    r.skip(3 * global_colours)
    walk = _Walk(data, ctx)
    warnings: list[str] = []
    end: int | None = None
    trailer = False
    incomplete: list[str] = []
    at = r.pos
    try:
        for _ in range(MAX_BLOCKS):
            at = r.pos
            block = r.u8()
            ctx.budget.charge_elements()
            if block == TRAILER:
                end, trailer = r.pos, True
                break
            if block == IMAGE:
                walk.image(r, at)
            elif block == EXTENSION:
                walk.extension(r)
            else:
                warnings.append(f"byte 0x{block:02X} at offset {at} starts no GIF block, "
                                "and the file has no trailer")
                end = at
                break
        else:
            raise LimitExceeded(f"more than {MAX_BLOCKS} GIF blocks")
    except TruncatedError as exc:
        warnings.append(f"the block at offset {at} is cut short (no trailer): {exc}")
    except LimitExceeded as exc:  # what was read is kept; the rest is not examined
        incomplete.append(f"the block at offset {r.pos}: {exc}")
    gif = GifFile(version, width, height, global_colours, tuple(walk.frames),
                  walk.extensions, trailer)
    return Parsed(format="gif", structure=gif, logical_end=end, warnings=warnings,
                  incomplete=incomplete)


SPEC = FormatSpec(name="gif", description="GIF image (87a/89a)", sniff=sniff, parse=parse)
