# cython: language_level=3, boundscheck=True, wraparound=False, initializedcheck=True
"""Compiled glyph-program selection for ``truetype.py`` (the hot loop of a font scan).

``candidates`` does, in one pass over the glyphs, what ``_Parser.candidate_glyphs``
does with numpy: for each glyph, its instruction span (after the point arrays of a
simple glyph, after the component records of a composite one), kept only when a 0x8F or
0x90 byte lies inside it; a glyph whose records do not fit is returned with start -1 so
the caller walks it (and warns). The numpy version stays as the fallback and as the
reference: tests compare the two on every installed font and on mutated fonts.

``walk`` decodes one program linearly (pushes skip their data) and says where the first
watched instruction or a push cut short by the end lies: where there is neither (most
programs), ``tt_bytecode.decode`` and the font scan skip their regular expressions and
Python steps (tests compare the results and the elements charged with and without it);
``program_kind`` is that question and the ADJUST-byte pre-filter in one call.

Hostile input: every read is bounds-checked (``boundscheck=True``: an index outside the
buffer raises IndexError instead of reading memory, and every index is also checked
against the glyph's own end first). Negative indices cannot wrap (checked before use).
"""

cdef enum:  # composite glyph component flags (OpenType 'glyf')
    ARG_1_AND_2_ARE_WORDS = 0x0001
    WE_HAVE_A_SCALE = 0x0008
    MORE_COMPONENTS = 0x0020
    WE_HAVE_AN_X_AND_Y_SCALE = 0x0040
    WE_HAVE_A_TWO_BY_TWO = 0x0080
    WE_HAVE_INSTRUCTIONS = 0x0100


cdef inline long _u16(const unsigned char[:] g, long at):
    return (<long> g[at] << 8) | g[at + 1]


cdef long _components_end(const unsigned char[:] g, long pos, long end, long max_components):
    """Offset of a composite glyph's instruction length, -1 without instructions,
    -2 when the records do not fit (as ``truetype._Parser.components_end``)."""
    cdef long flags, have = 0, i
    for i in range(max_components):
        if pos + 4 > end:
            return -2
        flags = _u16(g, pos)
        pos += 4 + (4 if flags & ARG_1_AND_2_ARE_WORDS else 2)
        if flags & WE_HAVE_A_SCALE:
            pos += 2
        elif flags & WE_HAVE_AN_X_AND_Y_SCALE:
            pos += 4
        elif flags & WE_HAVE_A_TWO_BY_TWO:
            pos += 8
        have |= flags & WE_HAVE_INSTRUCTIONS
        if not flags & MORE_COMPONENTS:
            break
    else:
        return -2
    if pos > end:
        return -2
    return pos if have else -1


cdef bint _holds_adjust(const unsigned char[:] g, long start, long end):
    cdef long i
    cdef unsigned char b
    for i in range(start, end):
        b = g[i]
        if b == 0x8F or b == 0x90:
            return True
    return False


def candidates(const unsigned char[:] g, const long long[:] offs, long num,
               long base, long max_components):
    """(glyph id, start, end) for ``num`` glyphs of ``glyf`` (``g``, offsets ``offs``
    ascending, relative to ``glyf``); start/end absolute (``base`` added) or -1."""
    cdef long size = g.shape[0]
    cdef long gid, s, e, contours, at, start, end
    if offs.shape[0] < num + 1:
        raise ValueError("loca shorter than the glyph count")
    out = []
    for gid in range(num):
        s = offs[gid]
        e = offs[gid + 1]
        if e <= s:
            continue
        if e - s < 12 or e > size or s < 0:
            out.append((gid, -1, -1))
            continue
        contours = _u16(g, s)
        if contours >= 0x8000:
            at = _components_end(g, s + 10, e, max_components)
            if at == -1:
                continue
            if at == -2:
                out.append((gid, -1, -1))
                continue
        else:
            at = s + 10 + 2 * contours
        if at + 2 > e:
            out.append((gid, -1, -1))
            continue
        start = at + 2
        end = start + _u16(g, at)
        if end > e:
            out.append((gid, -1, -1))
            continue
        if end > start and _holds_adjust(g, start, end):
            out.append((gid, start + base, end + base))
    return out


def walk(const unsigned char[:] data, long start, long end, const unsigned char[:] watched):
    """Decode ``data[start:end]`` linearly as TrueType instructions, as
    ``tt_bytecode.decode`` does (a push's inline data is not code): (offset of the first
    instruction whose opcode is marked in ``watched``, 256 flags, or -1; offset of a push
    whose data runs past ``end``, where the walk stops, or -1)."""
    cdef long pos, size, n = data.shape[0]
    cdef unsigned char op
    if watched.shape[0] != 256:
        raise ValueError("watched holds 256 flags")
    if end > n:
        end = n
    pos = start if start > 0 else 0
    while pos < end:
        op = data[pos]
        if watched[op]:
            return pos, -1
        if op == 0x40 or op == 0x41:  # NPUSHB, NPUSHW: a count, then bytes or words
            if pos + 1 >= end:
                return -1, pos
            size = 2 + (1 if op == 0x40 else 2) * data[pos + 1]
        elif 0xB0 <= op <= 0xB7:  # PUSHB[n]: n + 1 bytes
            size = 2 + (op - 0xB0)
        elif 0xB8 <= op <= 0xBF:  # PUSHW[n]: n + 1 words
            size = 3 + 2 * (op - 0xB8)
        else:
            size = 1
        if size > end - pos:
            return -1, pos
        pos += size
    return -1, -1


def program_kind(const unsigned char[:] data, long start, long end,
                 const unsigned char[:] present, const unsigned char[:] watched):
    """For the font scan, in one call: 0 when no byte of ``data[start:end]`` is marked in
    ``present`` (256 flags; ``tt_bytecode.may_contain``), else 1 when ``walk`` with
    ``watched`` meets neither a watched instruction nor a push cut short, else 2."""
    cdef long i, n = data.shape[0]
    if present.shape[0] != 256:
        raise ValueError("present holds 256 flags")
    if end > n:
        end = n
    if start < 0:
        start = 0
    for i in range(start, end):
        if present[data[i]]:
            break
    else:
        return 0
    return 1 if walk(data, start, end, watched) == (-1, -1) else 2
