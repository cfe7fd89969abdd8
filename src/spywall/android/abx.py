"""A bounded reader of Android Binary XML (ABX), the format AOSP's
``BinaryXmlSerializer`` writes (``persist.sys.binary_xml``; adb_temp_keys.xml and other
system files on Android 12+).

Layout, as AOSP describes it: the magic ``ABX\\0``, then tokens. A token is one byte, the
event in its low 4 bits (start/end document, start/end tag, text and the other
XmlPullParser events, 15 for an attribute) and the value's type in its high 4 bits (null,
string, interned string, bytes as hex or base64, int, int as hex, long, long as hex,
float, double, true, false). Multi-byte numbers are big-endian. A string is a 16-bit
length and that many bytes of modified UTF-8; an interned string is a 16-bit index into
the strings interned so far, or 0xFFFF and a new string (then interned). Tag and
attribute names are interned strings; bytes are a 16-bit length and the bytes.

Hostile input is bounded: at most ``MAX_INPUT`` bytes, ``MAX_TOKENS`` tokens, ``MAX_DEPTH``
open tags and ``MAX_INTERNED`` interned strings; every length is checked against the bytes
left. Anything else (truncated, unknown token or type, mismatched end tag, a bad index or
text) is an ``AbxError`` (a ``FormatError``), never another exception."""

from __future__ import annotations

import struct

import msgspec

from spywall.errors import FormatError

MAGIC = b"ABX\x00"
MAX_INPUT = 1 << 20
MAX_TOKENS = 100_000
MAX_DEPTH = 64
MAX_INTERNED = 4096

# events (low nibble)
START_DOCUMENT, END_DOCUMENT, START_TAG, END_TAG = 0, 1, 2, 3
ATTRIBUTE = 15
_CONTENT = frozenset(range(4, 11))  # text, cdata, entity ref, whitespace, PI, comment, doctype
# value types (high nibble)
T_NULL, T_STRING, T_INTERNED, T_HEX, T_BASE64 = 1, 2, 3, 4, 5
T_INT, T_INT_HEX, T_LONG, T_LONG_HEX, T_FLOAT, T_DOUBLE, T_TRUE, T_FALSE = range(6, 14)
_FIXED = {T_INT: ">i", T_INT_HEX: ">i", T_LONG: ">q", T_LONG_HEX: ">q", T_FLOAT: ">f",
          T_DOUBLE: ">d"}

Value = str | bytes | int | float | bool | None


class AbxError(FormatError):
    """Input that is not well-formed binary XML, or over the reader's bounds."""


class Element(msgspec.Struct, frozen=True):
    name: str
    attrs: dict[str, Value]
    depth: int  # 1 for the root element
    parent: str  # the enclosing element's name ("" for the root)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.interned: list[str] = []

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise AbxError(f"binary XML truncated at byte {self.pos} "
                           f"({n} byte(s) wanted, {len(self.data) - self.pos} left)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def utf(self) -> str:
        return _modified_utf8(self.take(self.u16()), self.pos)

    def interned_string(self) -> str:
        index = self.u16()
        if index != 0xFFFF:
            if index >= len(self.interned):
                raise AbxError(f"binary XML interned string {index} not defined "
                               f"(byte {self.pos})")
            return self.interned[index]
        if len(self.interned) >= MAX_INTERNED:
            raise AbxError(f"binary XML has more than {MAX_INTERNED} interned strings")
        text = self.utf()
        self.interned.append(text)
        return text

    def value(self, kind: int) -> Value:
        if kind == T_NULL:
            return None
        if kind == T_STRING:
            return self.utf()
        if kind == T_INTERNED:
            return self.interned_string()
        if kind in (T_HEX, T_BASE64):
            return self.take(self.u16())
        if kind in _FIXED:
            fmt = _FIXED[kind]
            got = struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
            return got if isinstance(got, int | float) else None
        if kind in (T_TRUE, T_FALSE):
            return kind == T_TRUE
        raise AbxError(f"binary XML value type {kind} unknown (byte {self.pos - 1})")


def _modified_utf8(raw: bytes, end: int) -> str:
    """Java's modified UTF-8 (NUL as C0 80, characters past the BMP as two surrogates)."""
    try:
        text = raw.replace(b"\xc0\x80", b"\x00").decode("utf-8", "surrogatepass")
        return text.encode("utf-16-be", "surrogatepass").decode("utf-16-be")
    except UnicodeError as e:
        raise AbxError(f"binary XML string before byte {end} is not modified UTF-8") from e


def read(data: bytes) -> tuple[list[Element], int]:
    """(the elements in document order, the bytes read up to END_DOCUMENT) of binary
    XML starting with ``MAGIC``; bytes after END_DOCUMENT are not read. ``AbxError`` for
    anything not well-formed or over the bounds."""
    if not data.startswith(MAGIC):
        raise AbxError("not binary XML (no ABX\\0 magic)")
    if len(data) > MAX_INPUT:
        data = data[:MAX_INPUT]  # (a document longer than this ends truncated: an error)
    r = _Reader(data)
    r.pos = len(MAGIC)
    out: list[Element] = []
    stack: list[tuple[str, dict[str, Value]]] = []
    started = in_start = False
    for _ in range(MAX_TOKENS):
        token = r.take(1)[0]
        event, kind = token & 0x0F, token >> 4
        if event == ATTRIBUTE:
            if not in_start:
                raise AbxError(f"binary XML attribute outside a start tag (byte {r.pos - 1})")
            name = r.interned_string()
            out[-1].attrs[name] = r.value(kind)
            continue
        in_start = False
        if event == START_DOCUMENT:
            if started:
                raise AbxError(f"binary XML document started twice (byte {r.pos - 1})")
            started = True
            r.value(kind)
            continue
        if not started:
            raise AbxError("binary XML token before the document start")
        if event == END_DOCUMENT:
            if stack:
                raise AbxError(f"binary XML ends with <{stack[-1][0]}> open")
            return out, r.pos
        if event in (START_TAG, END_TAG):
            if kind not in (T_STRING, T_INTERNED):
                raise AbxError(f"binary XML tag name of type {kind} (byte {r.pos - 1})")
            name = r.utf() if kind == T_STRING else r.interned_string()
            if event == START_TAG:
                if len(stack) >= MAX_DEPTH:
                    raise AbxError(f"binary XML nested deeper than {MAX_DEPTH}")
                parent = stack[-1][0] if stack else ""
                attrs: dict[str, Value] = {}
                stack.append((name, attrs))
                out.append(Element(name, attrs, len(stack), parent))
                in_start = True
            else:
                if not stack or stack[-1][0] != name:
                    raise AbxError(f"binary XML end tag </{name}> does not close the open "
                                   "tag")
                stack.pop()
            continue
        if event in _CONTENT:
            r.value(kind)
            continue
        raise AbxError(f"binary XML token {token:#04x} unknown (byte {r.pos - 1})")
    raise AbxError(f"binary XML has more than {MAX_TOKENS} tokens")


def adb_keystore(data: bytes) -> list[tuple[str, int | None]]:
    """(``<base64> user@host``, last connection in ms or None) of each ``<adbKey>`` of
    an adb keystore (adb_temp_keys.xml: ``<keyStore version><adbKey key lastConnection/>
    ...``, as AOSP's AdbKeyStore writes it) in binary XML, in file order. ``AbxError``
    as ``read``."""
    return keystore_keys(read(data)[0])


def keystore_keys(elements: list[Element]) -> list[tuple[str, int | None]]:
    """``adb_keystore`` over elements already read."""
    out: list[tuple[str, int | None]] = []
    for e in elements:
        key = e.attrs.get("key")
        if e.name != "adbKey" or not isinstance(key, str):
            continue
        last = e.attrs.get("lastConnection")
        if isinstance(last, str) and last.isdigit() and len(last) < 19:
            last = int(last)
        out.append((key, last if isinstance(last, int) and not isinstance(last, bool)
                    else None))
    return out
