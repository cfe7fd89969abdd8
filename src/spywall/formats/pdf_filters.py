"""Capped decoders for the PDF stream filters (ISO 32000-1 7.4).

pikepdf/qpdf decode without any output cap, so the PDF parser takes each stream's raw
bytes and decodes its filter chain here. Every stage writes into a ``_Sink`` that stops
it as soon as the output passes the budget's stream cap, or passes 1 MiB while being
more than ``max_ratio`` times the input consumed so far, so a bomb is refused after a
few MiB of output, never after it has been produced in full. Each finished stage is
charged to the budget.

General filters: FlateDecode (zlib, PNG and TIFF predictors), LZWDecode (EarlyChange),
ASCIIHexDecode, ASCII85Decode, RunLengthDecode (read past its end-of-data byte, as qpdf
does, so segments hidden there are seen), and Crypt (identity here: qpdf has
already decrypted the raw bytes). The abbreviations of inline images (ISO 32000-1 Table
94) are accepted too, since lenient readers accept them in streams. Image codecs end the
chain: ``decode_chain`` returns the bytes that go into the codec and the codec's name,
and never decodes pixels.

At C speed, each giving exactly what its reference beside it gives (errors and caps
included): Flate (zlib), ASCIIHex (``bytes.fromhex``), ASCII85 (numpy, in 4 MiB steps;
reference ``base64.a85decode``), RunLength (imagecodecs' PackBits when the output cannot
pass the cap; reference ``run_length_runs``) and LZW (imagecodecs when ``pdf_lzw.plan``
shows that is exact; reference ``lzw_codes``).
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn

from spywall.errors import FormatError, LimitExceeded
from spywall.formats import pdf_lzw
from spywall.lazy import lazy_module
from spywall.limits import Budget, MiB

if TYPE_CHECKING:
    import imagecodecs
    import numpy as np
else:
    np = lazy_module("numpy")  # imported when the first ASCII85 stream is decoded
    imagecodecs = lazy_module("imagecodecs")  # ... and the first RunLength stream

MAX_FILTERS = 8
MAX_ROW = 1 << 20  # bytes in one predictor row (rows are undone in Python)
IMAGE_CODECS = frozenset({"DCTDecode", "JBIG2Decode", "JPXDecode", "CCITTFaxDecode"})
ALIASES = {"AHx": "ASCIIHexDecode", "A85": "ASCII85Decode", "LZW": "LZWDecode",
           "Fl": "FlateDecode", "RL": "RunLengthDecode", "CCF": "CCITTFaxDecode",
           "DCT": "DCTDecode"}
_IN_CHUNK = 64 * 1024
_BIG_PIECE = 4096  # bytes: a piece at least this long is kept as it is, not copied
_WHITESPACE = b"\x00\t\n\x0c\r "
_A85_CHUNK = 4 * MiB  # characters decoded per step (bounds memory; the cap is checked per step)
_A85_REST82 = 0xFFFFFFFF - 82 * 85**4
_A85_LO, _A85_Z = 0x21, 0x7A  # "!", "z"
_A85_DIGITS_Z = bytes(range(_A85_LO, 0x76)) + b"z"
_M7 = 0x7F
_M8 = 0x80

Params = Mapping[str, int]


class _Sink:
    """Output of one stage, refused past the cap or the ratio cap.

    Big pieces are kept as they come and joined once at the end (a stream decoded in
    one piece is returned as that very object, not copied); small ones, as per-run
    decoders make them, are gathered in a buffer first.
    """

    def __init__(self, budget: Budget, name: str) -> None:
        self.budget = budget
        self.steps = 0
        self.parts: list[bytes] = []
        self.small = bytearray()
        self.size = 0
        self.cap = budget.stream_cap()
        self.ratio = budget.limits.max_ratio
        self.name = name

    def refuse(self, cap: str) -> NoReturn:
        """Raise the error of the cap (``"cap"`` or ``"ratio"``) an output would pass."""
        if cap == "cap":
            raise LimitExceeded(f"{self.name} output past the stream cap of {self.cap} bytes")
        raise LimitExceeded(f"{self.name} expands past {self.ratio}:1")

    def add(self, piece: bytes | bytearray, consumed: int) -> None:
        if len(piece) >= _BIG_PIECE and type(piece) is bytes:
            if self.small:
                self.parts.append(bytes(self.small))
                self.small.clear()
            self.parts.append(piece)
        else:
            self.small += piece
        self.size += len(piece)
        n = self.size
        if n > self.cap:
            self.refuse("cap")
        if n > MiB and n > self.ratio * max(consumed, 1):
            self.refuse("ratio")

    def result(self) -> bytes:
        """Everything added, as one ``bytes``."""
        if self.small:
            self.parts.append(bytes(self.small))
            self.small.clear()
        if len(self.parts) > 1:
            self.parts = [b"".join(self.parts)]
        return self.parts[0] if self.parts else b""

    def clear(self) -> None:
        self.parts.clear()
        self.small.clear()
        self.size = 0

    def tick(self) -> None:
        """Check the time budget every 64 Ki steps of a per-byte loop."""
        self.steps += 1
        if not self.steps & 0xFFFF:
            self.budget.check_time()

    @property
    def room(self) -> int:
        return max(1, self.cap + 1 - self.size)


def _inflate(data: bytes, sink: _Sink, wbits: int) -> None:
    d = zlib.decompressobj(wbits)
    pos = 0
    while pos < len(data) and not d.eof:
        buf = data[pos : pos + _IN_CHUNK]
        pos += len(buf)
        while buf and not d.eof:
            sink.add(d.decompress(buf, min(sink.room, 4 * MiB)), pos - len(d.unconsumed_tail))
            buf = d.unconsumed_tail
    sink.add(d.flush(), len(data))


def flate(data: bytes, params: Params, sink: _Sink) -> None:
    try:
        _inflate(data, sink, 15)
    except zlib.error:
        # A bad header or checksum: readers still show such streams, so read raw deflate.
        sink.clear()
        try:
            _inflate(data[2:], sink, -15)
        except zlib.error as exc:
            raise FormatError(f"its FlateDecode (zlib) data is damaged: {exc}") from exc


def lzw(data: bytes, params: Params, sink: _Sink) -> None:
    """In C when ``pdf_lzw.plan`` shows that gives this decoder's exact result."""
    early = 1 if params.get("EarlyChange", 1) else 0
    planned = pdf_lzw.plan(data, early, sink.room, sink.ratio)
    if planned is not None:
        size, refused = planned
        if refused is not None:
            sink.refuse(refused)
        out = pdf_lzw.decode(data, size)
        if out is not None:
            sink.add(out, len(data))
            return
    lzw_codes(data, early, sink)


def lzw_codes(data: bytes, early: int, sink: _Sink) -> None:
    """LZWDecode one code at a time: the reference for what a stream decodes to."""
    table: list[bytes] = [bytes([i]) for i in range(256)] + [b"", b""]
    width, acc, bits, prev = 9, 0, 0, b""
    for i, byte in enumerate(data):
        sink.tick()
        acc = (acc << 8) | byte
        bits += 8
        while bits >= width:
            bits -= width
            code = (acc >> bits) & ((1 << width) - 1)
            acc &= (1 << bits) - 1
            if code == 256:
                del table[258:]
                width, prev = 9, b""
                continue
            if code == 257:
                return
            if code < len(table):
                entry = table[code]
            elif code == len(table) and prev:
                entry = prev + prev[:1]
            else:
                raise FormatError(f"its LZWDecode data holds an undefined code {code} at byte {i}")
            if prev and len(table) < 4096:
                table.append(prev + entry[:1])
            prev = entry
            sink.add(entry, i + 1)
            if len(table) + early >= (1 << width) and width < 12:
                width += 1


def ascii_hex(data: bytes, params: Params, sink: _Sink) -> None:
    end = data.find(b">")
    digits = (data if end < 0 else data[:end]).translate(None, _WHITESPACE)
    if len(digits) % 2:
        digits += b"0"
    try:
        sink.add(bytes.fromhex(digits.decode("ascii")), len(data))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"its ASCIIHexDecode data is damaged: {exc}") from exc


def ascii85(data: bytes, params: Params, sink: _Sink) -> None:
    body = data.translate(None, _WHITESPACE)
    end = body.find(b"~>")
    body = body[:end] if end >= 0 else body
    # base64.a85decode (the reference this decoder matches) also skips vertical tabs
    body = body.removeprefix(b"<~").translate(None, b"\x0b")
    carry = b""
    for lo in range(0, len(body), _A85_CHUNK):
        sink.budget.check_time()
        carry = _a85_chunk(carry + body[lo : lo + _A85_CHUNK], sink, len(data))
    if carry:  # a final partial group: padded with 'u', as many bytes as digits less one
        sink.add(_a85_groups(carry + b"u" * (5 - len(carry)), carry)[: len(carry) - 1],
                 len(data))


def _a85_chunk(text: bytes, sink: _Sink, consumed: int) -> bytes:
    """Decode the whole groups of ``text`` (digits and 'z'), return its partial group.

    ``text`` starts on a group boundary. Any error is the one ``base64.a85decode``
    raises for ``text``: it reads sequentially from the same state, so its first
    error is the one the whole stream would give.
    """
    if text.translate(None, _A85_DIGITS_Z):  # anything but digits and 'z' is left
        _a85_error(text)
    if b"z" in text:
        arr = np.frombuffer(text, np.uint8)
        is_z = arr == _A85_Z
        before = np.cumsum(~is_z, dtype=np.int64)[is_z]  # digits before each 'z'
        if bool((before % 5).any()):
            _a85_error(text)
        text = text.replace(b"z", b"!!!!!")
    whole = len(text) - len(text) % 5
    sink.add(_a85_groups(text[:whole], text), consumed)
    return text[whole:]


def _a85_groups(text: bytes, source: bytes) -> bytes:
    """Whole groups of base-85 digits (length a multiple of 5) to big-endian words.

    The low four digits make at most 85**4 - 1, which fits 32 bits; the group overflows
    32 bits exactly when its first digit is over 82, or 82 with the rest over
    ``_A85_REST82``. Without overflow, 32-bit wrapping arithmetic gives the exact word.
    """
    # one row per digit place, each contiguous
    rows = np.frombuffer(text, np.uint8).reshape(-1, 5).T.astype(np.uint32)
    rows -= _A85_LO
    first, rest = rows[0], rows[1]
    for k in range(2, 5):
        rest *= 85
        rest += rows[k]
    if bool(((first > 82) | ((first == 82) & (rest > _A85_REST82))).any()):
        _a85_error(source)
    first *= 85**4
    first += rest
    words: bytes = first.astype(">u4").tobytes()
    return words


def _a85_error(text: bytes) -> NoReturn:
    """Raise the error that ``base64.a85decode`` gives for ``text`` (a slow, exact pass)."""
    try:
        base64.a85decode(text)
    except ValueError as exc:
        raise FormatError(f"its ASCII85Decode data is damaged: {exc}") from exc
    raise FormatError("its ASCII85Decode data is damaged")


def run_length(data: bytes, params: Params, sink: _Sink) -> None:
    """PackBits (imagecodecs, in C) when the output cannot pass the cap: a run of two
    bytes gives at most 128, so 64 times the input. A final run cut short is an error
    there, and is read as far as it goes here (as qpdf does) by the per-run loop."""
    if len(data) * 64 < sink.room:
        try:
            out = imagecodecs.packbits_decode(data)
        except imagecodecs.PackbitsError:
            pass
        else:
            sink.add(out, len(data))
            return
    run_length_runs(data, params, sink)


def run_length_runs(data: bytes, params: Params, sink: _Sink) -> None:
    """RunLengthDecode one run at a time; 128 (end of data) is read past, like qpdf."""
    pos, n = 0, len(data)
    while pos < n:
        sink.tick()
        length = data[pos]
        pos += 1
        if length == 128:  # end of data; lenient readers (qpdf) read on, so do we
            continue
        if length < 128:
            sink.add(data[pos : pos + length + 1], pos)
            pos += length + 1
        elif pos < n:
            sink.add(data[pos : pos + 1] * (257 - length), pos)
            pos += 1


def identity(data: bytes, params: Params, sink: _Sink) -> None:
    sink.add(data, len(data))


DECODERS: dict[str, Callable[[bytes, Params, _Sink], None]] = {
    "FlateDecode": flate,
    "LZWDecode": lzw,
    "ASCIIHexDecode": ascii_hex,
    "ASCII85Decode": ascii85,
    "RunLengthDecode": run_length,
    "Crypt": identity,
}


def _add_bytes(a: bytes, b: bytes) -> bytes:
    """Byte-wise a + b mod 256 over whole rows at once (SWAR on big integers)."""
    n = len(a)
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    m7 = int.from_bytes(bytes([_M7]) * n, "big")
    m8 = int.from_bytes(bytes([_M8]) * n, "big")
    return (((x & m7) + (y & m7)) ^ ((x ^ y) & m8)).to_bytes(n, "big")


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _png_row(kind: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    if kind == 0:
        return row
    if kind == 2:
        return _add_bytes(row, prev)
    out = bytearray(row)
    for i in range(len(out)):
        left = out[i - bpp] if i >= bpp else 0
        if kind == 1:
            out[i] = (out[i] + left) & 0xFF
        elif kind == 3:
            out[i] = (out[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            up_left = prev[i - bpp] if i >= bpp else 0
            out[i] = (out[i] + _paeth(left, prev[i], up_left)) & 0xFF
        else:
            raise FormatError(f"a row of its PNG predictor data has type {kind} (0-4 defined)")
    return bytes(out)


def _row_shape(params: Params) -> tuple[int, int, int]:
    colors = params.get("Colors", 1)
    bpc = params.get("BitsPerComponent", 8)
    columns = params.get("Columns", 1)
    row_len = (colors * bpc * columns + 7) // 8
    if not (1 <= colors <= 64 and bpc in (1, 2, 4, 8, 16) and 1 <= row_len <= MAX_ROW):
        raise FormatError(f"its /DecodeParms hold unusable predictor values {dict(params)}")
    return row_len, max(1, colors * bpc // 8), bpc


def unpredict(data: bytes, params: Params, budget: Budget) -> bytes:
    """Undo a PNG (10-15) or TIFF (2) predictor; the output is never longer than the input."""
    predictor = params.get("Predictor", 1)
    if predictor == 1:
        return data
    row_len, bpp, bpc = _row_shape(params)
    out = bytearray()
    if predictor >= 10:
        prev = bytes(row_len)
        for start in range(0, len(data) - row_len, row_len + 1):
            prev = _png_row(data[start], data[start + 1 : start + 1 + row_len], prev, bpp)
            out += prev
            budget.check_time()
        return bytes(out)
    if predictor == 2 and bpc == 8:
        for start in range(0, len(data), row_len):
            row = bytearray(data[start : start + row_len])
            for i in range(bpp, len(row)):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
            out += row
            budget.check_time()
        return bytes(out)
    raise FormatError(f"unsupported predictor {predictor} with {bpc} bits per component")


def decode_chain(
    data: bytes, chain: Sequence[tuple[str, Params]], budget: Budget
) -> tuple[bytes, str | None]:
    """Decode ``data`` through ``chain`` up to its first image codec.

    Returns the decoded bytes and the codec's name (``None`` if the chain has none).
    """
    if len(chain) > MAX_FILTERS:
        raise FormatError(f"its /Filter chains {len(chain)} filters, over the cap of "
                          f"{MAX_FILTERS}")
    for raw_name, params in chain:
        name = ALIASES.get(raw_name, raw_name)
        if name in IMAGE_CODECS:
            return data, name
        decoder = DECODERS.get(name)
        if decoder is None:
            raise FormatError(f"unknown filter /{raw_name} in its /Filter")
        sink = _Sink(budget, name)
        decoder(data, params, sink)
        out = sink.result()
        if name in ("FlateDecode", "LZWDecode"):
            out = unpredict(out, params, budget)
        budget.charge_decompressed(len(out), len(data))
        data = out
    return data, None


def codec_of(chain: Sequence[tuple[str, Params]]) -> str | None:
    """The image codec that ends ``chain``, if any (without decoding anything)."""
    for raw_name, _ in chain:
        name = ALIASES.get(raw_name, raw_name)
        if name in IMAGE_CODECS:
            return name
    return None
