"""``spywall.render.escape.visible``: the one helper that makes evidence strings safe to
show, checked against ``unicodedata`` for every code point."""

from __future__ import annotations

import re
import sys
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from spywall.render.escape import visible

UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs"}
ESCAPE = re.compile(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[nrt\\])")


def _unescape(text: str) -> str:
    """The inverse of ``visible`` (the escapes are unambiguous)."""
    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e in ("n", "r", "t", "\\"):
            return {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}[e]
        code = int(e[1:], 16)
        if e[0] == "x" and code >= 0x80:
            return chr(0xDC00 + code)  # a surrogateescape byte
        return chr(code)
    return ESCAPE.sub(one, text)


def test_every_unsafe_code_point_is_escaped_and_no_other() -> None:
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        shown = visible(ch)
        if unicodedata.category(ch) in UNSAFE or ch == "\\":
            assert shown.startswith("\\"), hex(code)
            assert len(shown) > 1, hex(code)
            assert all(unicodedata.category(c) not in UNSAFE for c in shown)
        elif unicodedata.category(ch) != "Cn":  # unassigned in this Python's tables
            assert shown == ch, hex(code)


def test_named_examples() -> None:
    assert visible("a\x1b[31mb") == "a\\x1b[31mb"
    assert visible("x\ny\r\tz") == "x\\ny\\r\\tz"
    assert visible("\u202egpj.exe\u2066\u2069") == "\\u202egpj.exe\\u2066\\u2069"
    assert visible("\u200b\u2028\u2029\ufeff\x85\x7f") == (
        "\\u200b\\u2028\\u2029\\ufeff\\u0085\\x7f")
    assert visible("\U000e0041") == "\\U000e0041"
    assert visible("bad\udcffname") == "bad\\xffname"
    assert visible("C:\\dir") == "C:\\\\dir"
    assert visible("[/x][bold]ok[/] caf\u00e9 \u65e5\u672c") == (
        "[/x][bold]ok[/] caf\u00e9 \u65e5\u672c")  # markup is rich's matter, not this
    assert visible(42) == "42"


@given(st.text())
def test_round_trip_and_nothing_unsafe_left(text: str) -> None:
    shown = visible(text)
    assert all(unicodedata.category(c) not in UNSAFE for c in shown)
    assert _unescape(shown) == text
