"""PDF (ISO 32000): every object through pikepdf, every stream decoded under our caps.

pikepdf (qpdf) parses the object structure, repairs damaged cross-reference data and
reaches every object, including those inside compressed object streams (``/Type
/ObjStm``) found through cross-reference streams. qpdf's repairs become warnings. qpdf is
never asked to decode a stream: it has no output caps. Each stream examined is taken raw
(``read_raw_bytes``, after decryption) and decoded by ``pdf_filters`` under the budget.

Children (named like ``obj 12 0 (FontFile2)``), in object order:

- any stream whose filter chain contains ``/JBIG2Decode``, forced to ``jbig2-embedded``
  with the decoded ``/JBIG2Globals`` segments in front of the page segments;
- image XObjects whose chain ends in ``/DCTDecode`` (sniffed, normally as JPEG). JPX and
  CCITT images are not examined, and images with no image codec are not children: their
  decoded bytes are samples, not a format any parser reads, and inflating them would
  spend the decompression budget on pixels;
- font programs (``/FontFile``, ``/FontFile2``, ``/FontFile3`` of a font descriptor, or
  a stream with the keys only a font program has: ``/Length1``, or a font ``/Subtype``)
  and embedded files (``/Type /EmbeddedFile``), decoded and sniffed.

Shadowed definitions: the raw bytes are searched for every ``N G obj`` (outside the
data of the live streams, which is stream content: see ``stream_data_spans``); a definition
the cross-reference table does not point to (an older revision left by an incremental
update, or one a reader that rebuilds the table would pick instead) is examined too, by
reopening the file with a small update section that points at it (up to 256 such
definitions, in up to 4 layers; not for encrypted files). Its children are named like
``obj 5 0 @331 (Image)``.

Page content streams, form XObjects, metadata and the like are skipped: their content
is operators for the renderer, not the attack surface of a parser examined here. Inline
images inside content streams cannot use JBIG2 (ISO 32000-1 Table 94).

Bounds: an object count cap (``charge_elements``, which also checks the time), a filter
chain cap, and capped decoders. A stream that hits a decompression cap is skipped so the
streams after it are still examined; the first such limit is raised at the end, so the
report carries it. An encrypted PDF is opened with the empty user password; any other
password makes it an ``unsupported`` error entry. ``logical_end`` is the end of the line
of the last ``%%EOF``, so data appended after it is examined by the engine.

A file whose data does not end with ``%%EOF`` is handed to qpdf with one appended
(qpdf drops an object that runs to the very end of the file); offsets are unchanged.

Cross-reference streams are decoded under our caps before qpdf opens the file (qpdf
decodes them with none), and object streams before qpdf unpacks them. A file where one
of them passes a cap is not handed to qpdf (or no further): its streams are found in its
raw bytes instead (``formats.pdf_raw``) and examined, and the cap is reported
(``Parsed.incomplete``). A file that qpdf refuses (a page tree that loops, say) is read
the same way, with qpdf's reason as a warning, so no exploit stream hides behind a
structure qpdf will not accept.

qpdf's C++ time cannot be interrupted by the time budget or its SIGALRM backstop: every
call into it is marked (``workers.in_qpdf``), and a scan worker still inside one past the
hard time limit is killed by its supervisor, which scans the input again with
``Limits.use_qpdf`` off: every PDF in it is then read from its raw bytes, and the overrun
is reported (``Parsed.incomplete``).

Known limits: the header is sniffed within the first 64 bytes (viewers accept it within
1024), and a polyglot whose first bytes match an earlier format in the registry (a GIF
header, say) is parsed as that format only; a broken object is skipped with a warning.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from functools import cache
from typing import TYPE_CHECKING, BinaryIO, cast

import msgspec

from spywall.errors import FormatError, LimitExceeded, UnsupportedError
from spywall.formats import pdf_raw
from spywall.formats.base import Child, FormatSpec, ParseContext, Parsed
from spywall.formats.magic import PDF_HEADER as HEADER
from spywall.formats.magic import sniff_pdf as sniff
from spywall.formats.pdf_filters import MAX_FILTERS, Params, codec_of, decode_chain
from spywall.lazy import lazy_module
from spywall.limits import Budget
from spywall.workers import in_qpdf

if TYPE_CHECKING:
    import pikepdf
else:
    pikepdf = lazy_module("pikepdf")  # imported when the first PDF is parsed

# pikepdf raises its own PikepdfError family and lets pybind11's translations of C++
# exceptions through (RuntimeError, ValueError, IndexError, OverflowError, TypeError,
# KeyError, NotImplementedError). All mean "this PDF (or object) is malformed".
@cache
def pikepdf_errors() -> tuple[type[Exception], ...]:
    return (pikepdf.PikepdfError, RuntimeError, ValueError, IndexError,
            OverflowError, TypeError, KeyError, NotImplementedError)


FONT_KEYS = ("/FontFile", "/FontFile2", "/FontFile3")
FONT_SUBTYPES = frozenset({"/Type1C", "/CIDFontType0C", "/OpenType"})
INT_PARAMS = ("Predictor", "Colors", "BitsPerComponent", "Columns", "EarlyChange")
MAX_WARNINGS = 20
MAX_SHADOWS = 256
MAX_OBJ_HITS = 1_000_000
MAX_LAYERS = 4
MAX_DICT_BYTES = 64 * 1024
MAX_RAW_LISTED = 1000  # streams listed in the structure of a PDF read raw
_WS = rb"[\x00\t\n\x0c\r ]+"
_NUMS_BEFORE = re.compile(rb"(?<![0-9])([0-9]{1,10})" + _WS + rb"([0-9]{1,5})" + _WS + rb"\Z")
_OBJ = re.compile(rb"obj")
_QPDF_SOURCE = re.compile(r"^stream <[^>]*>:? ?")
_STARTXREF = re.compile(rb"startxref[\x00\t\n\x0c\r ]+([0-9]{1,12})")
_NAME_BYTES = frozenset(
    bytes([c]) for c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


# Why a PDF is read from its raw bytes when the scan workers' supervisor stopped qpdf.
QPDF_STOPPED = ("not opened with qpdf: qpdf did not finish within the hard time limit "
                "(its scan worker was stopped)")


class EncryptedPdf(UnsupportedError):
    """A PDF that needs a password: reported, not examined."""


class PdfStream(msgspec.Struct, frozen=True):
    number: int
    generation: int
    role: str
    filters: tuple[str, ...]
    shadow_offset: int | None = None


class PdfDocument(msgspec.Struct, frozen=True):
    version: str
    header_offset: int
    objects: int
    encrypted: bool
    streams: tuple[PdfStream, ...]
    shadowed: int = 0


# pikepdf's ``get`` of a missing key costs ~15 us (it raises and catches inside); the key
# set of a dictionary costs ~3 us. Keys are looked up in that set first.

def _params(obj: object) -> Params:
    if not isinstance(obj, pikepdf.Dictionary):
        return {}
    keys = obj.keys()
    out: dict[str, int] = {}
    for key in INT_PARAMS:
        value = obj["/" + key] if "/" + key in keys else None
        if isinstance(value, int) and not isinstance(value, bool):
            out[key] = value
    return out


def _filters(stream: pikepdf.Stream, keys: set[str] | None = None
             ) -> list[tuple[str, pikepdf.Object | None]]:
    """The stream's (filter name, DecodeParms dictionary) pairs."""
    keys = stream.keys() if keys is None else keys
    if "/Filter" not in keys:
        return []
    raw_names = stream["/Filter"]
    raw_parms = stream["/DecodeParms"] if "/DecodeParms" in keys else None
    names: list[object]
    parms: list[pikepdf.Object | None]
    if isinstance(raw_names, pikepdf.Name):
        names, parms = [raw_names], [raw_parms]
    elif isinstance(raw_names, pikepdf.Array):
        if len(raw_names) > MAX_FILTERS:
            raise FormatError(f"its /Filter chains {len(raw_names)} filters, over the cap "
                              f"of {MAX_FILTERS}")
        names = list(raw_names)
        parms = (list(raw_parms) if isinstance(raw_parms, pikepdf.Array)
                 else [raw_parms] if isinstance(raw_parms, pikepdf.Dictionary) else [])
    else:
        return []
    out: list[tuple[str, pikepdf.Object | None]] = []
    for i, name in enumerate(names):
        if not isinstance(name, pikepdf.Name):
            raise FormatError(f"entry {i} of its /Filter is not a filter name")
        out.append((str(name)[1:], parms[i] if i < len(parms) else None))
    return out


def _chain(stream: pikepdf.Stream) -> list[tuple[str, Params]]:
    return [(name, _params(p)) for name, p in _filters(stream)]


def _name(obj: pikepdf.Object, key: str, keys: set[str]) -> str | None:
    """The value of ``key`` if it is a name (with its slash), else ``None``."""
    value = obj[key] if key in keys else None
    return str(value) if isinstance(value, pikepdf.Name) else None


def _stream_role(stream: pikepdf.Stream) -> str | None:
    keys = stream.keys()
    if _name(stream, "/Type", keys) == "/EmbeddedFile":
        return "EmbeddedFile"
    if codec_of([(name, {}) for name, _ in _filters(stream, keys)]) == "JBIG2Decode":
        return "JBIG2"
    subtype = _name(stream, "/Subtype", keys)
    if subtype == "/Image":
        return "Image"
    # A font program whose descriptor was not found (say, written inside an array):
    # FontFile and FontFile2 carry /Length1, FontFile3 a font /Subtype (ISO 32000-1 9.9).
    if subtype in FONT_SUBTYPES:
        return "FontFile3"
    if "/Length1" in keys:
        return "FontFile2" if "/Length2" not in keys else "FontFile"
    return None


_FONT_HOLDER_KEYS = frozenset({*FONT_KEYS, "/FontDescriptor"})


def _font_streams(obj: pikepdf.Object) -> Iterator[tuple[str, pikepdf.Stream]]:
    keys = obj.keys()
    if keys.isdisjoint(_FONT_HOLDER_KEYS):
        return
    descriptor = obj["/FontDescriptor"] if "/FontDescriptor" in keys else None
    for holder in (obj, descriptor):
        if isinstance(holder, pikepdf.Dictionary):
            held = keys if holder is obj else holder.keys()
            for key in FONT_KEYS:
                value = holder[key] if key in held else None
                if isinstance(value, pikepdf.Stream):
                    yield key[1:], value


Key = tuple[int, int, int]  # object number, generation, shadow offset (-1: the live one)


def _object_headers(data: bytes, budget: Budget, spans: Sequence[tuple[int, int]] = ()
                    ) -> Iterator[tuple[int, int, int]]:
    """(number, generation, offset) of every ``N G obj`` in the first ``MAX_OBJ_HITS``
    occurrences of ``obj`` in the raw bytes outside ``spans`` (sorted, disjoint)."""
    i = 0
    for lo, hi in _gaps(spans, len(data)):
        for hit in _OBJ.finditer(data, lo, hi):  # a compiled literal search beats find
            if i >= MAX_OBJ_HITS:
                return
            if not i & 0xFFF:
                budget.check_time()
            i += 1
            pos = hit.start()
            m = _NUMS_BEFORE.search(data, max(0, pos - 40), pos)
            if m is not None and data[pos + 3 : pos + 4] not in _NAME_BYTES:
                yield int(m[1]), int(m[2]), m.start()


def _gaps(spans: Sequence[tuple[int, int]], size: int) -> Iterator[tuple[int, int]]:
    pos = 0
    for lo, hi in spans:
        if lo > pos:
            yield pos, lo
        pos = max(pos, hi)
    if pos < size:
        yield pos, size


Span = tuple[int, int]


def live_offsets(pdf: pikepdf.Pdf) -> dict[tuple[int, int], int]:
    """Object -> offset (from the header) of every definition the table points to."""
    return {k: e.offset for k, e in pdf.get_xref_table().items()
            if e.type == 1 and e.offset is not None}


def stream_data_spans(data: bytes, pdf: pikepdf.Pdf, base: int, live: dict[tuple[int, int], int],
                      budget: Budget) -> dict[tuple[int, int], Span]:
    """Where the data of each live stream lies in the raw bytes, when that is certain.

    A stream's data is bytes of that stream, not objects: an ``N G obj`` inside it is
    no definition that the table or a rebuilding reader would take (qpdf rebuilds a table
    by reading object after object, skipping each stream by its length). The data starts
    after the first ``stream`` keyword and its end-of-line that follow the object's
    ``obj`` (an end-of-line being CR LF or LF, ISO 32000-1 7.3.8.1; anything else gives
    no span), and must be followed, after ``/Length`` bytes and optional white space, by
    ``endstream``; a span is kept only when all of that holds, so a ``stream`` spelled
    inside a string of the dictionary cannot hide bytes from the search. Offsets are
    absolute in ``data``; for an unencrypted file the span holds exactly the stream's
    raw bytes (tests compare them with qpdf's).
    """
    spans: dict[tuple[int, int], Span] = {}
    for objgen, off in live.items():
        budget.charge_elements()
        try:
            obj = pdf.get_object(objgen)
            length = obj.get("/Length") if isinstance(obj, pikepdf.Stream) else None
        except pikepdf_errors():
            continue
        if not isinstance(length, int) or isinstance(length, bool) or length <= 0:
            continue
        at = base + off
        kw = data.find(b"obj", at, at + 64)
        kw = data.find(b"stream", kw, kw + MAX_DICT_BYTES) if kw >= 0 else -1
        if kw < 0:
            continue
        eol = data[kw + 6 : kw + 8]
        if eol[:1] == b"\n":
            start = kw + 7
        elif eol == b"\r\n":
            start = kw + 8
        else:
            continue
        end = start + length
        tail = data[end : end + 32].lstrip(b"\x00\t\n\x0c\r ")
        if tail[:9] == b"endstream":
            spans[objgen] = (start, end)
    return spans


def _base(data: bytes) -> int:
    """Where offsets count from: qpdf takes a header found within 1024 bytes as 0."""
    return max(0, data.find(HEADER, 0, 1024))


def shadow_layers(
    data: bytes, pdf: pikepdf.Pdf, budget: Budget, spans: Sequence[Span] = (),
    offsets: dict[tuple[int, int], int] | None = None,
) -> tuple[list[dict[tuple[int, int], int]], int]:
    """Object definitions the cross-reference table does not point to, in layers.

    Layer ``i`` holds the ``i``-th such definition of each object number: older revisions
    left by incremental updates, or objects a reconstructing reader would find instead.
    ``spans`` (sorted) are the live streams' data, not searched; ``offsets`` are
    ``live_offsets(pdf)`` when the caller has them.
    """
    live = set((live_offsets(pdf) if offsets is None else offsets).values())
    found: dict[tuple[int, int], list[int]] = {}
    total = 0
    base = _base(data)
    for num, gen, off in _object_headers(data, budget, spans):
        if off - base not in live:
            found.setdefault((num, gen), []).append(off - base)
            total += 1
            if total >= MAX_SHADOWS:
                break
    depth = min(MAX_LAYERS, max((len(v) for v in found.values()), default=0))
    return [{k: v[i] for k, v in found.items() if i < len(v)} for i in range(depth)], total


def _overlay(data: bytes, pdf: pikepdf.Pdf, layer: dict[tuple[int, int], int]) -> bytes | None:
    """``data`` plus an update section whose table points at ``layer``'s definitions.

    Offsets count from the ``%PDF-`` header, as qpdf counts them."""
    m = _STARTXREF.match(data, max(0, data.rfind(b"startxref")))
    root = pdf.trailer.get("/Root")
    if m is None or not isinstance(root, pikepdf.Dictionary) or not root.is_indirect:
        return None
    declared = pdf.trailer.get("/Size")
    size = max(declared if isinstance(declared, int) else 0, *(n + 1 for n, _ in layer))
    rows = "".join(f"{n} 1\n{off:010d} {g:05d} n\r\n" for (n, g), off in sorted(layer.items()))
    root_num, root_gen = root.objgen
    section = (f"\nxref\n{rows}trailer\n<< /Size {size} /Root {root_num} {root_gen} R "
               f"/Prev {int(m[1])} >>\nstartxref\n{len(data) + 1 - _base(data)}\n%%EOF\n")
    return data[:] + section.encode()  # [:]: a mapped input becomes bytes here


def check_object_streams(pdf: pikepdf.Pdf, budget: Budget) -> int:
    """Decode every object stream under our caps before qpdf unpacks it without any.

    Raises ``LimitExceeded`` for an object stream that would pass a cap: qpdf would
    inflate it in full as soon as one of its objects is read. Returns how many there are.
    """
    numbers = {e.obj_stream_number for e in pdf.get_xref_table().values()
               if e.type == 2 and e.obj_stream_number is not None}
    for num in sorted(numbers):
        budget.charge_elements()
        stream = pdf.get_object((num, 0))
        if isinstance(stream, pikepdf.Stream):
            try:
                decode_chain(stream.read_raw_bytes(), _chain(stream), budget)
            except LimitExceeded as exc:
                raise LimitExceeded(f"object stream {num}: {exc}") from exc
            except FormatError:
                pass  # qpdf reports (and repairs) what it can
    return len(numbers)


class _BufferReader(io.RawIOBase):
    """A read-only file over a buffer (``bytes`` or a mapped input), for qpdf.

    ``io.BytesIO`` shares a ``bytes`` object but copies anything else, and a mapped input
    may be gigabytes of image data that qpdf never reads (streams needing no decoding
    are sliced from the input): this reads only what qpdf asks for.
    """

    def __init__(self, buf: bytes) -> None:
        super().__init__()
        self._buf = buf
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = (0, self._pos, len(self._buf))[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, out: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._buf[self._pos : self._pos + len(out)]
        out[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


class _Streams:
    """Selects the streams to examine and turns each into a child."""

    def __init__(self, pdf: pikepdf.Pdf, ctx: ParseContext) -> None:
        self.pdf = pdf
        self.ctx = ctx
        self.selected: dict[Key, tuple[str, pikepdf.Stream]] = {}
        self.globals: dict[tuple[int, int, int], bytes] = {}
        self.overlays: list[pikepdf.Pdf] = []
        self.notes: list[str] = []
        # Where live streams' raw bytes lie in the input (unencrypted files only): a
        # stream that needs no decoding is then sliced from the input, not copied out of
        # qpdf (which costs three copies of what may be megabytes of image data).
        self.data = b""
        self.spans: dict[tuple[int, int], Span] = {}

    def _take(self, obj: pikepdf.Object, shadow: int = -1) -> None:
        """Select ``obj`` (or the font programs it names); a broken object is noted."""
        try:
            self._classify(obj, shadow)
        except pikepdf_errors() as exc:
            self.notes.append(f"object skipped: {_qpdf_text(exc)}")

    def _classify(self, obj: pikepdf.Object, shadow: int) -> None:
        if isinstance(obj, pikepdf.Stream):
            try:
                role = _stream_role(obj)
            except FormatError:  # reported when the stream is examined
                role = "Stream"
            if role is not None:
                self.selected.setdefault((*obj.objgen, shadow), (role, obj))
        elif isinstance(obj, pikepdf.Dictionary):
            for role, stream in _font_streams(obj):
                self.selected[(*stream.objgen, -1)] = (role, stream)

    def select(self) -> int:
        count = 0
        for obj in self.pdf.objects:
            count += 1
            self.ctx.budget.charge_elements()
            self._take(obj)
        return count

    def select_shadows(self, data: bytes) -> int:
        """Examine definitions the table does not point to; encrypted files are skipped."""
        if self.pdf.is_encrypted:
            return 0
        self.data = data
        offsets = live_offsets(self.pdf)
        self.spans = stream_data_spans(data, self.pdf, _base(data), offsets, self.ctx.budget)
        layers, total = shadow_layers(data, self.pdf, self.ctx.budget,
                                      sorted(self.spans.values()), offsets)
        for layer in layers:
            overlay = _overlay(data, self.pdf, layer)
            if overlay is None:
                break
            try:
                other = pikepdf.open(io.BytesIO(overlay))
            except pikepdf_errors() as exc:
                self.notes.append(f"shadowed definitions not examined: {_qpdf_text(exc)}")
                break
            self.overlays.append(other)
            for (num, gen), off in layer.items():
                self.ctx.budget.charge_elements()
                try:
                    obj = other.get_object((num, gen))
                except pikepdf_errors() as exc:
                    self.notes.append(f"shadowed object {num} {gen} @{off}: {_qpdf_text(exc)}")
                    continue
                self._take(obj, off)
        return total

    def describe(self) -> tuple[PdfStream, ...]:
        out = []
        for (num, gen, off), (role, stream) in sorted(self.selected.items()):
            try:
                names = tuple(name for name, _ in _filters(stream))
            except FormatError:
                names = ("<bad filter chain>",)
            out.append(PdfStream(num, gen, role, names, None if off < 0 else off))
        return tuple(out)

    def _jbig2_globals(self, stream: pikepdf.Stream) -> bytes:
        parms = [p for name, p in _filters(stream) if name == "JBIG2Decode"]
        glob = parms[0].get("/JBIG2Globals") if isinstance(parms[0], pikepdf.Dictionary) else None
        if not isinstance(glob, pikepdf.Stream):
            return b""
        owners = (self.pdf, *self.overlays)
        key = (*glob.objgen, next(i for i, p in enumerate(owners) if glob.is_owned_by(p)))
        if key not in self.globals:
            with in_qpdf():
                raw = glob.read_raw_bytes()
            data, codec = decode_chain(raw, _chain(glob), self.ctx.budget)
            if codec is not None:
                raise FormatError(f"its /JBIG2Globals stream is encoded with /{codec}, an "
                                  "image codec, not data a JBIG2 decoder reads")
            self.globals[key] = data
        return self.globals[key]

    def raw(self, stream: pikepdf.Stream, live: bool, chain: list[tuple[str, Params]]) -> bytes:
        """The stream's raw bytes: sliced from the input when it is a live stream with a
        known span and no filter to undo first (an image's codec is not undone)."""
        span = self.spans.get(stream.objgen) if live else None
        if span is not None and all(name == "DCTDecode" for name, _ in chain):
            return self.data[span[0] : span[1]]
        return stream.read_raw_bytes()

    def child(self, name: str, role: str, stream: pikepdf.Stream, live: bool = False
              ) -> Child | None:
        chain = _chain(stream)
        codec = codec_of(chain)
        if codec in ("JPXDecode", "CCITTFaxDecode") or (role == "Image" and codec is None):
            return None
        with in_qpdf():
            raw = self.raw(stream, live, chain)
        data, codec = decode_chain(raw, chain, self.ctx.budget)
        if codec == "JBIG2Decode":
            return Child(name, self._jbig2_globals(stream) + data, format="jbig2-embedded")
        return Child(name, data)

    def children(self) -> Iterator[Child]:
        deferred: LimitExceeded | None = None
        budget = self.ctx.budget
        for (num, gen, off), (role, stream) in sorted(self.selected.items()):
            name = f"obj {num} {gen}{'' if off < 0 else f' @{off}'} ({role})"
            try:
                child = self.child(name, role, stream, off < 0 and stream.is_owned_by(self.pdf))
            except LimitExceeded as exc:
                # Skipped; the streams after it are still examined (one that needs no
                # decoding costs no budget, so a bomb cannot hide it), while time lasts.
                budget.check_time()
                deferred = deferred or LimitExceeded(f"{name}: {exc}")
                continue
            except FormatError as exc:
                yield Child(name, b"", error=str(exc))
                continue
            except pikepdf_errors() as exc:
                yield Child(name, b"", error=f"the stream cannot be read: {_qpdf_text(exc)}")
                continue
            if child is not None:
                yield child
        for pdf in (self.pdf, *self.overlays):
            pdf.close()
        if deferred is not None:
            raise deferred


def _qpdf_text(message: object) -> str:
    """A qpdf message without the name of the in-memory stream it was read from."""
    return _QPDF_SOURCE.sub("", str(message))


def logical_end(data: bytes) -> int | None:
    """End of the line that holds the last ``%%EOF``."""
    pos = data.rfind(b"%%EOF")
    if pos < 0:
        return None
    end = pos + 5
    if data[end : end + 2] == b"\r\n":
        return end + 2
    return end + 1 if data[end : end + 1] in (b"\r", b"\n") else end


def parse(data: bytes, ctx: ParseContext) -> Parsed:
    end = logical_end(data)
    # qpdf drops an object that runs to the very end of a file with no %%EOF after it
    # ("EOF after endobj"): give it one, past the data, where no offset can point.
    if not data[-64:].rstrip().endswith(b"%%EOF"):
        data = data[:] + b"\n%%EOF\n"  # [:]: a mapped input becomes bytes here
    if not ctx.budget.limits.use_qpdf:
        return _raw_parse(data, ctx, end, incomplete=QPDF_STOPPED)
    try:
        pdf_raw.check_xref_streams(data, ctx.budget)
    except LimitExceeded as exc:
        return _raw_parse(data, ctx, end, incomplete=f"not opened with qpdf: {exc}")
    with in_qpdf():  # C++ time: only the scan workers' supervisor can stop it
        return _parse_with_qpdf(data, ctx, end)


def _parse_with_qpdf(data: bytes, ctx: ParseContext, end: int | None) -> Parsed:
    try:
        # BytesIO shares a bytes object and seeks in C; qpdf seeks hundreds of times
        source = io.BytesIO(data) if isinstance(data, bytes) else _BufferReader(data)
        pdf = pikepdf.open(cast(BinaryIO, source), password="")
    except pikepdf.PasswordError as exc:
        raise EncryptedPdf("encrypted PDF with a user password: not examined") from exc
    except pikepdf_errors() as exc:
        return _raw_parse(data, ctx, end, warning=f"the PDF library (qpdf) could not open it: "
                                                    f"{_qpdf_text(exc)}")
    streams = _Streams(pdf, ctx)
    try:
        check_object_streams(pdf, ctx.budget)
    except LimitExceeded as exc:
        pdf.close()
        return _raw_parse(data, ctx, end, incomplete=f"qpdf stopped: {exc}")
    except pikepdf_errors() as exc:
        pdf.close()
        return _raw_parse(data, ctx, end, warning=f"the PDF library (qpdf) could not read an "
                                                    f"object: {_qpdf_text(exc)}")
    try:
        count = streams.select()
        shadowed = streams.select_shadows(data)
        doc = PdfDocument(version=str(pdf.pdf_version), header_offset=data.find(HEADER),
                          objects=count, encrypted=bool(pdf.is_encrypted),
                          streams=streams.describe(), shadowed=shadowed)
        notes = [str(w) for w in pdf.get_warnings()]
    except pikepdf_errors() as exc:
        raise FormatError(f"the PDF library (qpdf) could not read an object: "
                          f"{_qpdf_text(exc)}") from exc
    notes += streams.notes
    warnings = [f"qpdf: {_qpdf_text(w)}" for w in notes[:MAX_WARNINGS]]
    if len(notes) > MAX_WARNINGS:
        warnings.append(f"qpdf: {len(notes) - MAX_WARNINGS} more warnings")
    return Parsed(format="pdf", structure=doc, logical_end=end,
                  children=streams.children(), warnings=warnings)


def _raw_parse(data: bytes, ctx: ParseContext, end: int | None, warning: str = "",
               incomplete: str = "") -> Parsed:
    """The PDF read from its raw bytes (``pdf_raw``), when qpdf refused it or must not
    go on; what qpdf said is a warning, a cap that stopped it an ``incomplete`` note."""
    found = pdf_raw.streams(data, ctx.budget)
    if warning and not found:
        raise FormatError(warning)  # nothing qpdf refused hides a stream
    doc = PdfDocument(version=_raw_version(data), header_offset=data.find(HEADER),
                      objects=len(found), encrypted=b"/Encrypt" in data[-4096:],
                      streams=tuple(_raw_entry(s) for s in found[:MAX_RAW_LISTED]))
    note = "its streams were found by reading the raw bytes instead"
    return Parsed(format="pdf", structure=doc, logical_end=end,
                  children=pdf_raw.children(data, found, ctx.budget),
                  warnings=[f"{warning}; {note}"] if warning else [note] if not incomplete
                  else [],
                  incomplete=[f"{incomplete}; {note}"] if incomplete else [])


def _raw_entry(s: pdf_raw.RawStream) -> PdfStream:
    try:
        return PdfStream(s.number, s.generation, s.role() or "Stream",
                         tuple(n for n, _ in s.chain()))
    except FormatError:
        return PdfStream(s.number, s.generation, "Stream", ("<bad filter chain>",))


def _raw_version(data: bytes) -> str:
    at = data.find(HEADER)
    return data[at + 5 : at + 8].decode("latin-1") if at >= 0 else ""


SPEC = FormatSpec(name="pdf", description="PDF document (ISO 32000)", sniff=sniff,
                  parse=parse, container=True, dense=True)
