"""sfnt fonts: TrueType (``00 01 00 00``, ``true``), OpenType-CFF (``OTTO``), ``ttcf`` collections.

The table directory is read for every font; logical_end is the furthest end of any table
(or of a collection's DSIG block). TrueType fonts also have their bytecode located: the
``fpgm`` and ``prep`` tables and each glyph's instructions, found through ``maxp``
(numGlyphs), ``head.indexToLocFormat`` (short ``loca``: u16 * 2, long: u32) and ``glyf``
(simple glyphs: after the contour end points; composite glyphs: after the last component
record, when WE_HAVE_INSTRUCTIONS is set). OpenType-CFF fonts carry no TrueType bytecode.

Glyph programs are located for all glyphs at once (numpy: headers, then component records
one round at a time); fpgm, prep and the glyph programs that hold a byte 0x8F or 0x90 are
decoded with ``tt_bytecode``, and those where ADJUST decodes as an instruction are recorded
in ``Font.adjust``. Glyphs whose ``loca`` range or records fall outside ``glyf`` are skipped
with a warning. Fonts of a collection that share tables are decoded once.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable, Iterator
from functools import cache, partial
from typing import TYPE_CHECKING

import msgspec

from spywall.errors import FormatError, LimitExceeded
from spywall.formats import tt_bytecode, tt_calls, tt_flow
from spywall.formats.base import FormatSpec, ParseContext, Parsed
from spywall.formats.magic import CFF_VERSION, COLLECTION, TRUETYPE_VERSIONS
from spywall.formats.magic import SFNT_MAX_FONTS as MAX_FONTS
from spywall.formats.magic import SFNT_MAX_TABLES as MAX_TABLES
from spywall.formats.magic import sniff_truetype as sniff
from spywall.formats.reader import Reader, check_count
from spywall.lazy import lazy_module

try:  # the compiled glyph selection (setup.py); without it numpy does the same work
    from spywall.formats import _glyphs
except ImportError:  # pragma: no cover - a build without a C compiler
    _glyphs = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    _Ints = npt.NDArray[np.int64]
    _Bools = npt.NDArray[np.bool_]
    _Reader = Callable[[_Ints], _Ints]
else:
    np = lazy_module("numpy")  # imported when the first glyf table is examined

MAX_GLYPHS = 0xFFFF
MAX_COMPONENTS = 1024
MAX_RECORDED = 32
MAX_WARNINGS = 24
MAX_HITS = 16  # offsets recorded per program
MAX_FLOW_STEPS = 1 << 18  # instruction visits of one program's jump analysis
MAX_CALL_STEPS = 1 << 20  # instruction visits of one font's analysis across calls
# Decoded bytecode charged to the element budget: one element per 8 bytes, about 300 ns of
# decoding in the worst case (a program of one-byte pushes, ~35 ns a byte).
BYTES_PER_ELEMENT = 8

# Composite glyph component flags (OpenType 'glyf').
ARG_1_AND_2_ARE_WORDS = 0x0001
WE_HAVE_A_SCALE = 0x0008
MORE_COMPONENTS = 0x0020
WE_HAVE_AN_X_AND_Y_SCALE = 0x0040
WE_HAVE_A_TWO_BY_TWO = 0x0080
WE_HAVE_INSTRUCTIONS = 0x0100

_ADJUST_LOW, _ADJUST_HIGH = sorted(tt_bytecode.ADJUST_OPCODES)
assert _ADJUST_HIGH == _ADJUST_LOW + 1  # _holds_adjust tests both with one comparison
_ADJUST_BYTE = re.compile(b"[\\x8f\\x90]")
# scan_one decodes for ADJUST, follow_jumps for jumps: a program plain for both (most of
# them) is recorded as these two decodes would record it.
_WATCHED = tt_bytecode.ADJUST_OPCODES | tt_flow.JUMP_OPCODES
_PLAIN = tt_bytecode.Decoded((), 0, None, 1)
_I16 = struct.Struct(">h")
_U16 = struct.Struct(">H")
_RECORD = struct.Struct(">4sIII")
_MALFORMED = -2  # components(): records that do not fit ('components_end' says None)
_FEW_COMPOSITES = 16  # composite glyphs left, below which they are walked one by one


def _record_size(flags: int) -> int:
    """Bytes of one composite component record with these flags (the low byte)."""
    size = 4 + (4 if flags & ARG_1_AND_2_ARE_WORDS else 2)
    if flags & WE_HAVE_A_SCALE:
        return size + 2
    if flags & WE_HAVE_AN_X_AND_Y_SCALE:
        return size + 4
    return size + (8 if flags & WE_HAVE_A_TWO_BY_TWO else 0)


@cache
def _record_sizes() -> _Ints:
    """``_record_size`` of every low flag byte, as an array to index with flags."""
    return np.array([_record_size(f) for f in range(256)], dtype=np.int64)


def _u16_reader(data: bytes, offset: int, size: int, odd: bool) -> _Reader:
    """Big-endian u16 at offsets into ``data[offset:offset + size]`` (each at most
    size - 2): one gather from a u16 view when every offset read is even."""
    if odd:
        b = np.frombuffer(data, np.uint8, count=size, offset=offset)
        return lambda at: (b[at].astype(np.int64) << 8) | b[at + 1]
    w = np.frombuffer(data, ">u2", count=size // 2, offset=offset)
    return lambda at: w[at >> 1].astype(np.int64)  # native order, for arithmetic


def _holds_adjust(data: bytes, offset: int, start: _Ints, end: _Ints) -> _Bools:
    """Which of the spans (ascending, disjoint, relative to ``offset``) hold 0x8F/0x90.

    One temporary array the size of the region: a second one alive at the same time
    costs several times more than the arithmetic (fresh pages) on a 300 KB ``glyf``.
    """
    keep = np.zeros(start.size, dtype=np.bool_)
    if not start.size:
        return keep
    lo = int(start[0])
    g = np.frombuffer(data, np.uint8, count=int(end[-1]) - lo, offset=offset + lo)
    x = np.subtract(g, np.uint8(_ADJUST_LOW))  # 0x8F -> 0, 0x90 -> 1, the rest wrap
    is_adjust = x.view(np.bool_)
    np.less(x, 2, out=is_adjust)
    hits = np.flatnonzero(is_adjust) + lo
    span = np.searchsorted(start, hits, side="right") - 1  # the last span starting at or
    keep[span[hits < end[span]]] = True  # before each hit: does it reach past the hit?
    return keep


def _quiet(msg: str) -> None:
    """A warning already given."""


class Table(msgspec.Struct, frozen=True):
    tag: str
    offset: int
    length: int


class Program(msgspec.Struct, frozen=True):
    """One bytecode program in which ADJUST decodes as an instruction.

    ``where`` is ``fpgm``, ``prep`` or ``glyph``; ``glyph`` the glyph id for glyph programs.
    ``offset``/``length`` locate the program in the file; ``hits`` are (offset, opcode) of
    the first ADJUST instructions, ``total`` counts all of them. ``jumped`` are the ADJUST
    offsets reached only through a jump (off the linear decoding, e.g. inside push data);
    ``unresolved`` the offsets of jumps whose target is not a constant, recorded when the
    program also holds a 0x8F/0x90 byte that no decoding reaches (then ``total`` may be 0).
    """

    where: str
    glyph: int | None
    offset: int
    length: int
    hits: tuple[tuple[int, int], ...]
    total: int
    jumped: tuple[int, ...] = ()
    unresolved: tuple[int, ...] = ()


class Font(msgspec.Struct, frozen=True):
    index: int | None
    offset: int
    flavor: str
    tables: tuple[Table, ...]
    num_glyphs: int | None = None
    loca_format: int | None = None
    programs: int = 0  # examined: fpgm, prep, and glyph programs with a candidate byte
    decoded: int = 0
    adjust: tuple[Program, ...] = ()
    adjust_total: int = 0
    jumps: tuple[Program, ...] = ()  # programs with unresolved jumps and a hidden 0x8F/0x90


class Collection(msgspec.Struct, frozen=True):
    version: int
    fonts: tuple[Font, ...]


def fonts_of(structure: object) -> tuple[Font, ...]:
    """The fonts of a parsed TrueType structure: the font, or each font of a collection."""
    if isinstance(structure, Font):
        return (structure,)
    if isinstance(structure, Collection):
        return structure.fonts
    return ()


class _Warnings:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.dropped = 0

    def add(self, msg: str) -> None:
        if len(self.items) < MAX_WARNINGS:
            self.items.append(msg)
        else:
            self.dropped += 1

    def done(self) -> list[str]:
        if self.dropped:
            return [*self.items, f"{self.dropped} more font warnings not shown"]
        return self.items


class _Found(msgspec.Struct):
    programs: int = 0
    decoded: int = 0
    total: int = 0


_Span = tuple[str, int | None, int, int]  # where, glyph id, start, end
_Spans = Callable[[], Iterable[_Span]]
# (start, end) of a program -> ADJUST reached only by jumps, unresolved jumps (absolute)
_Jumps = dict[tuple[int, int], tuple[tuple[int, ...], tuple[int, ...]]]
_Compute = Callable[[], tuple[list[Program], _Found]]


class _Parser:
    def __init__(self, data: bytes, ctx: ParseContext, compiled: bool = True) -> None:
        self.data = data
        self.ctx = ctx
        self.compiled = compiled  # use _glyphs when built (False: the numpy reference)
        self.warn = _Warnings()
        # (kind, offset, length...) -> programs already decoded (shared collection tables)
        self.cache: dict[tuple[int, ...], tuple[list[Program], _Found]] = {}
        # (start, end) -> decode result: glyphs sharing one program are decoded once
        self.decoded: dict[tuple[int, int], tt_bytecode.Decoded] = {}
        # (start, end) -> ADJUST reached only by jumps, unresolved jumps (follow_jumps)
        self.jumps: _Jumps = {}
        # (fpgm, prep, glyf spans) -> the same across calls (None: analysis incomplete)
        self.calls: dict[tuple[int, ...], _Jumps | None] = {}

    def directory(self, off: int, label: str) -> tuple[bytes, list[Table], int]:
        r = Reader(self.data, off)
        r.expect(12, f"{label}the table directory's header")
        version = r.read(4)
        num = check_count(r.u16be(), MAX_TABLES, f"{label}table")
        r.skip(6)
        r.expect(num * _RECORD.size, f"{label}the table directory ({num} records of 16 bytes)")
        self.ctx.budget.charge_elements(num)
        tables: list[Table] = []
        size = len(self.data)
        for tag_b, _checksum, t_off, t_len in _RECORD.iter_unpack(r.read(num * _RECORD.size)):
            tag = tag_b.decode("latin-1")
            if t_off + t_len > size:
                self.warn.add(f"{label}table {tag!r} at offset {t_off} ({t_len} bytes) runs "
                              f"past the end of the file ({size} bytes)")
            tables.append(Table(tag, t_off, t_len))
        return version, tables, r.pos

    def table(self, tables: dict[str, Table], tag: str, label: str, minimum: int = 0
              ) -> Table | None:
        t = tables.get(tag)
        if t is None:
            return None
        if t.offset + t.length > len(self.data) or t.length < minimum:
            self.warn.add(f"{label}table {tag!r} at offset {t.offset} ({t.length} bytes) is "
                          "unusable: skipped")
            return None
        return t

    def font(self, off: int, index: int | None) -> tuple[Font, int]:
        label = "" if index is None else f"font {index}: "
        version, tables, dir_end = self.directory(off, label)
        end = max([dir_end, *(min(t.offset + t.length, len(self.data)) for t in tables)])
        by_tag: dict[str, Table] = {}
        for t in tables:
            by_tag.setdefault(t.tag, t)
        if version == CFF_VERSION:
            return Font(index, off, "opentype-cff", tuple(tables)), end
        if version not in TRUETYPE_VERSIONS:
            self.warn.add(f"{label}unknown font version {version.hex()} at offset {off}; not "
                          "examined")
            return Font(index, off, "unknown", tuple(tables)), end
        found: list[Program] = []
        stats = _Found()
        tops: list[_Span] = []
        for tag in ("fpgm", "prep"):
            prog = self.table(by_tag, tag, label)
            if prog is not None and prog.length:
                key = (0, prog.offset, prog.length)
                self.cached(key, found, stats, partial(self.scan_table, prog, label))
                tops.append((tag, None, prog.offset, prog.offset + prog.length))
        num_glyphs, loca_format, every = self.glyphs(by_tag, label, found, stats)
        if any(p.unresolved for p in found):
            found = self.across_calls(tops, every, label, found, stats)
        adjust = tuple(p for p in found if p.total)[:MAX_RECORDED]
        jumps = tuple(p for p in found if p.unresolved)[:MAX_RECORDED]
        return Font(index, off, "truetype", tuple(tables), num_glyphs, loca_format,
                    stats.programs, stats.decoded, adjust, stats.total, jumps), end

    def cached(self, key: tuple[int, ...], found: list[Program], stats: _Found,
               compute: _Compute) -> None:
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = compute()
        progs, st = hit
        found.extend(progs[: MAX_RECORDED - len(found)])
        stats.programs += st.programs
        stats.decoded += st.decoded
        stats.total += st.total

    def scan_table(self, t: Table, label: str) -> tuple[list[Program], _Found]:
        return self.scan([(t.tag, None, t.offset, t.offset + t.length)], label)

    def scan(self, programs: Iterable[_Span], label: str) -> tuple[list[Program], _Found]:
        """Pre-filter and decode programs; keep those where ADJUST is an instruction.

        Decoding is charged to the element budget step by step; when the budget runs out
        the programs left are not decoded (a warning says so) and what was found is kept.
        """
        out: list[Program] = []
        stats = _Found()
        try:
            for span in programs:
                stats.programs += 1
                self.scan_one(span, label, out, stats)
        except LimitExceeded as exc:
            self.warn.add(f"{label}{exc}: the remaining programs were not examined")
        return out, stats

    def scan_one(self, span: _Span, label: str, out: list[Program], stats: _Found) -> None:
        where, gid, start, stop = span
        kind = tt_bytecode.program_kind(self.data, start, stop, _WATCHED)
        if kind == 0 or (kind is None and not tt_bytecode.may_contain(self.data, start, stop)):
            return
        stats.decoded += 1
        dec = self.decoded.get((start, stop))
        if dec is None and kind == 1 and (start, stop) not in self.jumps:
            # Most programs: neither ADJUST nor a jump decodes as an instruction, nothing
            # is cut short. What the steps below would record and charge, without them.
            self.decoded[start, stop] = _PLAIN
            self.ctx.budget.charge_elements(_PLAIN.steps + (stop - start) // BYTES_PER_ELEMENT)
            self.jumps[start, stop] = ((), ())
            self.ctx.budget.charge_elements(_PLAIN.steps + (stop - start) // BYTES_PER_ELEMENT)
            return
        if dec is None:
            dec = self.decoded[start, stop] = tt_bytecode.decode(self.data, start, stop)
            # Its cost: search steps, and bytes scanned (overlapping hostile programs).
            self.ctx.budget.charge_elements(dec.steps + (stop - start) // BYTES_PER_ELEMENT)
        if dec.truncated is not None:
            name = where if gid is None else f"glyph {gid}"
            self.warn.add(f"{label}{name} instructions: push at offset {dec.truncated} "
                          "runs past the end of the program")
        jumps = self.jumps.get((start, stop))
        if jumps is None:
            jumps = self.jumps[start, stop] = self.follow_jumps(start, stop, label)
        jumped, unresolved = jumps
        hits = (*dec.hits, *((at, self.data[at]) for at in jumped))[:MAX_HITS]
        total = dec.total + len(jumped)
        if total:
            stats.total += 1
        if (total or unresolved) and len(out) < MAX_RECORDED:
            out.append(Program(where, gid, start, stop - start, hits, total, jumped,
                               unresolved))

    def follow_jumps(self, start: int, stop: int, label: str
                     ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """A program that holds a 0x8F/0x90 byte, if it jumps: the ADJUST offsets only a
        jump reaches (absolute), and, if some 0x8F/0x90 byte is reached by no decoding
        while a jump's target is unknown (or the analysis ran out of steps), the offsets
        of those jumps (absolute; the program's own offset when out of steps)."""
        jumps = tt_bytecode.decode(self.data, start, stop, tt_flow.JUMP_OPCODES, 0)
        self.ctx.budget.charge_elements(jumps.steps + (stop - start) // BYTES_PER_ELEMENT)
        if not jumps.total:
            return (), ()
        with memoryview(self.data) as whole, whole[start:stop] as code:
            flow = tt_flow.analyse(code, max_steps=MAX_FLOW_STEPS)
        self.ctx.budget.charge_elements(flow.steps)
        reached = flow.reachable
        hidden = any(m.start() - start not in reached
                     for m in _ADJUST_BYTE.finditer(self.data, start, stop))
        jumped = tuple(start + at for at in flow.jumped)
        if not flow.complete:
            self.warn.add(f"{label}program at offset {start}: jump analysis stopped after "
                          f"{flow.steps} steps")
            return jumped, (start,) if hidden else ()
        if hidden and flow.unresolved:
            return jumped, tuple(start + at for at in flow.unresolved[:MAX_HITS])
        return jumped, ()

    def across_calls(self, tops: list[_Span], every: _Spans, label: str,
                     found: list[Program], stats: _Found) -> list[Program]:
        """``found`` again, the programs with unresolved jumps re-examined with calls
        followed across the font's programs (``tt_calls``): a jump whose offset a caller
        pushed is resolved, and ADJUST it reaches is a hit. If that analysis cannot be
        completed, the programs stay as they are (their unresolved jumps reported)."""
        try:
            glyph_spans = list(every())
        except LimitExceeded as exc:
            self.warn.add(f"{label}{exc}: jumps across calls were not followed")
            return found
        key = (*(x for t in tops for x in t[2:]), -1, *(x for g in glyph_spans for x in g[2:]))
        if key not in self.calls:
            self.calls[key] = self.call_flows([*tops, *glyph_spans], label)
        jumps = self.calls[key]
        if jumps is None:
            return found
        out: list[Program] = []
        for p in found:
            again = jumps.get((p.offset, p.offset + p.length)) if p.unresolved else None
            if again is None:
                out.append(p)
                continue
            linear = [h for h in p.hits if h[0] not in p.jumped]
            jumped = tuple(sorted({*p.jumped, *again[0]}))
            total = p.total - len(p.jumped) + len(jumped)
            stats.total += bool(total) - bool(p.total)
            if total or again[1]:
                hits = (*linear, *((at, self.data[at]) for at in jumped))[:MAX_HITS]
                out.append(Program(p.where, p.glyph, p.offset, p.length, hits, total,
                                   jumped, again[1]))
        return out

    def call_flows(self, spans: list[_Span], label: str) -> _Jumps | None:
        """``follow_jumps`` for every program of a font at once, calls followed."""
        ranges = list(dict.fromkeys((start, stop) for _, _, start, stop in spans))
        try:
            self.ctx.budget.charge_elements(
                sum(stop - start for start, stop in ranges) // BYTES_PER_ELEMENT)
            flows = tt_calls.analyse_font([self.data[a:b] for a, b in ranges],
                                          MAX_CALL_STEPS)
            self.ctx.budget.charge_elements(flows[0].steps if flows else 0)
        except LimitExceeded as exc:
            self.warn.add(f"{label}{exc}: jumps across calls were not followed")
            return None
        if flows and not flows[0].complete:
            self.warn.add(f"{label}the analysis of jumps across calls stopped after "
                          f"{flows[0].steps} steps")
            return None
        out: _Jumps = {}
        for (start, stop), flow in zip(ranges, flows, strict=True):
            hidden = any(m.start() - start not in flow.reachable
                         for m in _ADJUST_BYTE.finditer(self.data, start, stop))
            out[start, stop] = (tuple(start + at for at in flow.jumped),
                                tuple(start + at for at in flow.unresolved[:MAX_HITS])
                                if hidden else ())
        return out

    def glyphs(self, by_tag: dict[str, Table], label: str, found: list[Program],
               stats: _Found) -> tuple[int | None, int | None, _Spans]:
        """Scan the glyph programs; also returns every glyph program's span (a thunk)."""
        glyf = self.table(by_tag, "glyf", label)
        if glyf is None:
            return None, None, tuple
        head = self.table(by_tag, "head", label, 54)
        maxp = self.table(by_tag, "maxp", label, 6)
        loca = self.table(by_tag, "loca", label)
        if head is None or maxp is None or loca is None:
            self.warn.add(f"{label}the 'glyf' table at offset {glyf.offset} comes without usable "
                          "head, maxp and loca tables; its glyphs were skipped")
            return None, None, tuple
        fmt = _I16.unpack_from(self.data, head.offset + 50)[0]
        num = check_count(_U16.unpack_from(self.data, maxp.offset + 4)[0], MAX_GLYPHS, "glyph")
        if fmt not in (0, 1):
            self.warn.add(f"{label}the 'head' table at offset {head.offset} gives "
                          f"indexToLocFormat {fmt}, neither 0 nor 1; the glyphs were skipped")
            return num, fmt, tuple
        key = (1, glyf.offset, glyf.length, loca.offset, loca.length, fmt, num)
        self.cached(key, found, stats,
                    lambda: self.scan(self.glyph_spans(glyf, loca, fmt, num, label), label))
        return num, fmt, lambda: self.glyph_spans(glyf, loca, fmt, num, label, every=True)

    def glyph_spans(self, glyf: Table, loca: Table, fmt: int, num: int, label: str,
                    every: bool = False) -> Iterator[_Span]:
        """The glyph programs that hold a 0x8F/0x90 byte (``every``: all of them, quietly:
        the first pass warned)."""
        size = 2 if fmt == 0 else 4
        warn = self.warn.add if not every else _quiet
        if loca.length < (num + 1) * size:
            have = max(0, loca.length // size - 1)
            warn(f"{label}the 'loca' table at offset {loca.offset} holds {have} "
                 f"glyphs, the 'maxp' table says {num}; the rest were skipped")
            num = have
        if num == 0:
            return
        self.ctx.budget.charge_elements(num)
        offs = np.frombuffer(self.data, dtype=">u2" if fmt == 0 else ">u4", count=num + 1,
                             offset=loca.offset).astype(np.int64) << (1 - fmt)
        bad: list[int] = []
        walked: list[int] = []
        for gid, start, end in self.candidate_glyphs(offs, glyf, num, every):
            if start >= 0:
                yield "glyph", gid, start, end
                continue
            walked = walked or offs.tolist()
            s, e = walked[gid], walked[gid + 1]
            if s == e:
                continue
            if e < s or e > glyf.length:
                bad.append(gid)
                continue
            span = self.glyph_program(glyf.offset + s, glyf.offset + e)
            if span is None:
                bad.append(gid)
            elif span[1] > span[0]:
                yield "glyph", gid, span[0], span[1]
        if bad:
            warn(f"{label}{len(bad)} glyphs (first: glyph {bad[0]}) have 'loca' "
                 f"offsets or records outside the 'glyf' table at offset "
                 f"{glyf.offset}; skipped")

    def candidate_glyphs(self, offs: _Ints, glyf: Table, num: int, every: bool = False
                         ) -> Iterable[tuple[int, int, int]]:
        """(glyph id, start, end) of the glyph programs that could execute ADJUST, in order.

        With ``loca`` in ascending order (every well-formed font) this is what
        ``glyph_program`` would find, computed for all glyphs at once (numpy): each glyph's
        instruction span, read from its header (simple glyphs) or after its component
        records (composite glyphs, walked one component at a time for all of them
        together), kept only if a 0x8F/0x90 byte lies inside it. A glyph whose records do
        not fit comes with start -1: the caller walks it, and warns. A ``loca`` out of
        order makes every glyph one to walk. ``every``: all glyph programs, 0x8F/0x90 or not.
        """
        size = glyf.length
        s, e = offs[:-1], offs[1:]
        if size < 12 or bool((e < s).any()):
            return ((gid, -1, -1) for gid in range(num))
        if _glyphs is not None and self.compiled and not every:
            with memoryview(self.data) as whole, whole[glyf.offset : glyf.offset + size] as g:
                picked = _glyphs.candidates(g, offs, num, glyf.offset, MAX_COMPONENTS)
            self.ctx.budget.charge_elements(len(picked))
            return picked
        u16 = _u16_reader(self.data, glyf.offset, size, odd=bool((s & 1).any()))
        fits = (e - s >= 12) & (e <= size)
        walk = [np.flatnonzero((e > s) & ~fits)]  # too short, or past 'glyf'
        body = np.flatnonzero(fits)
        s, e = s[body], e[body]
        contours = u16(s)
        contours -= (contours & 0x8000) << 1  # int16
        at = s + 10 + 2 * contours  # instructionLength of a simple glyph
        comp = np.flatnonzero(contours < 0)
        if comp.size:
            at[comp] = self.components(u16, glyf.offset, s[comp] + 10, e[comp])
        walk.append(body[(at == _MALFORMED) | (at >= 0) & (at + 2 > e)])
        k = np.flatnonzero((at >= 0) & (at + 2 <= e))
        body, e, at = body[k], e[k], at[k]
        start = at + 2
        end = start + u16(at)
        walk.append(body[end > e])
        k = np.flatnonzero((end <= e) & (end > start))
        if not every:
            k = k[_holds_adjust(self.data, glyf.offset, start[k], end[k])]
        ids, start, end = body[k], start[k] + glyf.offset, end[k] + glyf.offset
        walked = np.concatenate(walk)
        if walked.size:  # merged in glyph order, with start and end -1
            order = np.argsort(np.concatenate([ids, walked]))
            none = np.full(walked.size, -1)
            ids = np.concatenate([ids, walked])[order]
            start = np.concatenate([start, none])[order]
            end = np.concatenate([end, none])[order]
        self.ctx.budget.charge_elements(ids.size)
        return zip(ids.tolist(), start.tolist(), end.tolist(), strict=True)

    def components(self, u16: _Reader, base: int, pos: _Ints, end: _Ints) -> _Ints:
        """``components_end`` of many composite glyphs at once (``_MALFORMED`` for None),
        offsets relative to ``base``: one component of every glyph per round, the last
        few glyphs one by one."""
        first, last = pos, end
        final = np.zeros(pos.size, dtype=np.int64)  # where each glyph's records end
        have = np.zeros(pos.size, dtype=np.int64)  # its flags, OR-ed
        lost = np.zeros(pos.size, dtype=np.bool_)  # a record past the end
        ids = np.arange(pos.size)
        flags_or = np.zeros(pos.size, dtype=np.int64)
        end = end - 4  # a record's first four bytes must fit
        for _ in range(MAX_COMPONENTS):
            if ids.size <= _FEW_COMPOSITES:
                break
            self.ctx.budget.charge_elements(ids.size)
            room = pos <= end
            if not room.all():
                lost[ids[~room]] = True
                ids, pos, end, flags_or = ids[room], pos[room], end[room], flags_or[room]
            flags = u16(pos)
            pos = pos + _record_sizes()[flags & 0xFF]
            flags_or |= flags
            final[ids] = pos
            have[ids] = flags_or
            more = (flags & MORE_COMPONENTS) != 0
            ids, pos, end, flags_or = ids[more], pos[more], end[more], flags_or[more]
        out = np.where(lost | (final > last), _MALFORMED,
                       np.where(have & WE_HAVE_INSTRUCTIONS, final, -1))
        for i in ids.tolist():  # the glyphs with the most components
            self.ctx.budget.charge_elements()
            r = self.components_end(base + int(first[i]), base + int(last[i]))
            out[i] = _MALFORMED if r is None else r - base if r >= 0 else r
        return out

    def glyph_program(self, start: int, end: int) -> tuple[int, int] | None:
        """(start, end) of a glyph's instructions; None if the glyph is malformed."""
        data = self.data
        if end - start < 10:
            return None
        contours = _I16.unpack_from(data, start)[0]
        if contours >= 0:
            pos = start + 10 + 2 * contours
        else:
            pos = self.components_end(start + 10, end)
            if pos is None:
                return None
            if pos < 0:
                return start, start
        if pos + 2 > end:
            return None
        length = _U16.unpack_from(data, pos)[0]
        if pos + 2 + length > end:
            return None
        return pos + 2, pos + 2 + length

    def components_end(self, pos: int, end: int) -> int | None:
        """Offset of a composite glyph's instruction length; -1 if it has none."""
        data = self.data
        have_instructions = 0
        for _ in range(MAX_COMPONENTS):
            if pos + 4 > end:
                return None
            flags = _U16.unpack_from(data, pos)[0]
            pos += 4 + (4 if flags & ARG_1_AND_2_ARE_WORDS else 2)
            if flags & WE_HAVE_A_SCALE:
                pos += 2
            elif flags & WE_HAVE_AN_X_AND_Y_SCALE:
                pos += 4
            elif flags & WE_HAVE_A_TWO_BY_TWO:
                pos += 8
            have_instructions |= flags & WE_HAVE_INSTRUCTIONS
            if not flags & MORE_COMPONENTS:
                break
        else:
            return None
        if pos > end:
            return None
        return pos if have_instructions else -1


def parse(data: bytes, ctx: ParseContext) -> Parsed:
    p = _Parser(data, ctx)
    if data[:4] == COLLECTION:
        r = Reader(data, 4)
        r.expect(8, "the font collection's header")
        version = r.u32be()
        count = check_count(r.u32be(), MAX_FONTS, "collection font")
        r.expect(4 * count, f"the font collection's table of {count} font offsets")
        offsets = struct.unpack_from(f">{count}I", data, r.pos)
        r.skip(4 * count)
        end = r.pos
        if version >= 0x00020000 and r.remaining >= 12 and r.read(4) == b"DSIG":
            d_len, d_off = r.u32be(), r.u32be()
            end = max(end, min(d_off + d_len, len(data)) if d_len else end)
        fonts: list[Font] = []
        for i, off in enumerate(offsets):
            try:
                font, f_end = p.font(off, i)
            except FormatError as exc:
                p.warn.add(f"font {i} at offset {off}: {exc}")
                continue
            except LimitExceeded as exc:
                p.warn.add(f"font {i} at offset {off}: {exc}; it and the fonts after it "
                           "were not examined")
                break
            fonts.append(font)
            end = max(end, f_end)
        return Parsed("ttc", Collection(version, tuple(fonts)), end, warnings=p.warn.done())
    font, end = p.font(0, None)
    return Parsed(font.flavor if font.flavor != "unknown" else "truetype", font, end,
                  warnings=p.warn.done())


SPEC = FormatSpec(
    name="truetype",
    description="sfnt fonts: TrueType, OpenType-CFF (OTTO) and collections (ttcf)",
    sniff=sniff,
    parse=parse,
)
