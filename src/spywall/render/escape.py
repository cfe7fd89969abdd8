"""Evidence strings made safe to show a person: the one escaping helper.

A file name, a zip member, a SIP Call-ID, an SQLite table name: any string that came from
the input is data. Written to a terminal as it is, it could move the cursor, clear the
screen, retitle the window or make a hyperlink (escape sequences), reorder what is shown
(bidi overrides), hide text (zero-width characters) or forge table rows (newlines).
``visible`` turns every such character into a visible escape; everything else is kept.
JSON output keeps the exact value; only what a person reads goes through here.

Escapes (unambiguous, so the original string can be read back):
- ``\\n``, ``\\r``, ``\\t``; other C0 controls and DEL as ``\\xNN``;
- a byte that was not UTF-8 (a file name decoded with ``surrogateescape``, U+DC80-DCFF)
  as ``\\xNN`` with NN >= 80, the byte itself;
- C1 controls, format characters (bidi embeddings, overrides and isolates, zero-width
  characters, the byte order mark, tag characters...), line and paragraph separators and
  other lone surrogates as ``\\uNNNN`` / ``\\UNNNNNNNN``;
- the backslash itself as ``\\\\``.

Standard library only: log lines on standard error use it without importing rich.
"""

from __future__ import annotations

import re

# Unicode categories Cc (controls), Cf (format), Zl, Zp (line/paragraph separators) and
# Cs (surrogates), as of Unicode 15.1, plus the backslash; tests check this class against
# ``unicodedata`` for every code point.
_UNSAFE = re.compile(
    "[\\\\\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\ud800-\udfff\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code < 0x80:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the undecodable byte
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: object) -> str:
    """``text`` (made a string) with every control, format and separator character
    escaped, safe to print on a terminal and to put in one table cell."""
    s = text if isinstance(text, str) else str(text)
    return _UNSAFE.sub(_escape, s)
