"""Differential fuzz of the compiled byte searches and the TrueType walk against their
Python oracles: every JPEG marker ``_bytescan.next_marker`` finds from every start the
fuzzer picks is the plain pattern's; ``find`` is ``bytes.find``; a TrueType decode with
the compiled walk is the decode without it. A difference is a crash. (Without the
compiled helpers there is nothing to compare: the target returns at once.)"""

import sys

import atheris

with atheris.instrument_imports():
    import re

    from spywall.formats import tt_bytecode, tt_flow

    try:
        from spywall.formats import _bytescan
    except ImportError:
        _bytescan = None

_PLAIN = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")
_SETS = (tt_bytecode.ADJUST_OPCODES, tt_flow.JUMP_OPCODES)


def _decodes(code: bytes, start: int, end: int, opcodes: frozenset[int]) -> None:
    fast = tt_bytecode.decode(code, start, end, opcodes, 4)
    saved, tt_bytecode._glyphs = tt_bytecode._glyphs, None
    try:
        slow = tt_bytecode.decode(code, start, end, opcodes, 4)
    finally:
        tt_bytecode._glyphs = saved
    assert fast == slow, (fast, slow)


def TestOneInput(data: bytes) -> None:
    if _bytescan is None or len(data) < 3:
        return
    start, body = data[0] % len(data), data[2:]
    pos = start
    while True:  # every marker from ``start`` on, as the JPEG parser walks them
        got = _bytescan.next_marker(body, pos)
        m = _PLAIN.search(body, pos)
        assert got == (None if m is None else (m.start(), m[1][0], m.end())), (got, pos)
        if got is None:
            break
        pos = got[2]
    needle = body[: 1 + data[1] % 6] or b"\xff"
    assert _bytescan.find(body, needle, start) == body.find(needle, start)
    assert _bytescan.find(body, b"/Type", start) == body.find(b"/Type", start)
    for opcodes in _SETS:
        _decodes(body, min(start, len(body)), len(body) - data[1] % 4, opcodes)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
