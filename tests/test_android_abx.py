"""The bounded Android Binary XML (ABX) reader and its use for the adb keystore.

The ABX files here come from a writer of this test, written from the format's
description (AOSP's BinaryXmlSerializer: ``ABX\\0``; a token byte, the event in the low
nibble and the value's type in the high one; big-endian numbers; strings as a 16-bit
length and modified UTF-8; interned strings as a 16-bit index, or 0xFFFF and the new
string), not from the reader's code."""

from __future__ import annotations

import base64
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.android import abx, dumpsys
from spywall.android.check import MODULES, check_capture
from spywall.errors import SpywallError
from spywall.iocs import IocIndex
from spywall.samples import android as gen

# events and types of the format description
START_DOC, END_DOC, START_TAG, END_TAG, TEXT, CDSECT, COMMENT, ATTR = 0, 1, 2, 3, 4, 5, 9, 15
NULL, STRING, INTERNED, HEX, B64, INT, INT_HEX, LONG, LONG_HEX, FLOAT, DOUBLE, TRUE, FALSE = (
    range(1, 14))
B64_CHARS = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def mutf8(text: str) -> bytes:
    """Java's modified UTF-8: NUL as C0 80, a character past the BMP as its two UTF-16
    surrogates, each as three bytes."""
    out = bytearray()
    for ch in text:
        cp = ord(ch)
        if cp == 0:
            out += b"\xc0\x80"
        elif cp > 0xFFFF:
            cp -= 0x10000
            for s in (0xD800 | cp >> 10, 0xDC00 | cp & 0x3FF):
                out += bytes([0xE0 | s >> 12, 0x80 | (s >> 6) & 0x3F, 0x80 | s & 0x3F])
        else:
            out += ch.encode()
    return bytes(out)


class Writer:
    def __init__(self) -> None:
        self.out = bytearray(b"ABX\x00")
        self.pool: list[str] = []

    def token(self, event: int, kind: int) -> Writer:
        self.out.append(kind << 4 | event)
        return self

    def utf(self, text: str) -> Writer:
        raw = mutf8(text)
        self.out += struct.pack(">H", len(raw)) + raw
        return self

    def interned(self, text: str) -> Writer:
        if text in self.pool:
            self.out += struct.pack(">H", self.pool.index(text))
            return self
        self.pool.append(text)
        self.out += b"\xff\xff"
        return self.utf(text)

    def start_doc(self) -> Writer:
        return self.token(START_DOC, NULL)

    def end_doc(self) -> bytes:
        return bytes(self.token(END_DOC, NULL).out)

    def start(self, name: str) -> Writer:
        return self.token(START_TAG, INTERNED).interned(name)

    def end(self, name: str) -> Writer:
        return self.token(END_TAG, INTERNED).interned(name)

    def attr(self, kind: int, name: str, payload: bytes = b"") -> Writer:
        self.token(ATTR, kind).interned(name)
        self.out += payload
        return self

    def attr_str(self, name: str, value: str) -> Writer:
        self.token(ATTR, STRING).interned(name)
        return self.utf(value)

    def text(self, event: int, value: str) -> Writer:
        return self.token(event, STRING).utf(value)


def keystore(keys: list[tuple[str, int]]) -> bytes:
    """adb_temp_keys.xml as AOSP's AdbKeyStore writes it: <keyStore version="1">, then
    <adbKey key="<base64> user@host" lastConnection="<ms>"/> per key."""
    w = Writer().start_doc().start("keyStore").attr(INT, "version", struct.pack(">i", 1))
    for key, ms in keys:
        w.start("adbKey").attr_str("key", key).attr(LONG, "lastConnection",
                                                      struct.pack(">q", ms)).end("adbKey")
    return w.end("keyStore").end_doc()


def host_key(seed: int, user: str) -> str:
    """A ``<base64> user@host`` adb key text (an RSA public key's 524 bytes of base64,
    as adb's are, from ``seed``)."""
    raw = bytes((seed * 7 + i * 13) & 0xFF for i in range(524))
    return f"{base64.b64encode(raw).decode()} {user}"


def test_every_type_and_interning() -> None:
    w = Writer().start_doc().text(COMMENT, "a comment").start("root")
    w.attr_str("s", "h\u00e9llo\u0000\U0001F600")
    w.token(ATTR, INTERNED).interned("mode").interned("same")
    w.attr(HEX, "hex", b"\x00\x03\x01\x02\xff").attr(B64, "b64", b"\x00\x01\x7f")
    w.attr(INT, "i", struct.pack(">i", -5)).attr(INT_HEX, "ih", struct.pack(">i", 0x1234))
    w.attr(LONG, "l", struct.pack(">q", -(1 << 40))).attr(LONG_HEX, "lh",
                                                          struct.pack(">q", 1 << 62))
    w.attr(FLOAT, "f", struct.pack(">f", 1.5)).attr(DOUBLE, "d", struct.pack(">d", -2.25))
    w.attr(TRUE, "t").attr(FALSE, "no").attr(NULL, "n")
    w.text(TEXT, "body").start("child").token(ATTR, INTERNED).interned("mode").interned(
        "same").text(CDSECT, "<x>").end("child").start("root").end("root").end("root")
    data = w.end_doc() + b"trailing bytes not read"
    elements, used = abx.read(data)
    assert used == len(data) - len(b"trailing bytes not read")
    assert [(e.name, e.depth, e.parent) for e in elements] == [
        ("root", 1, ""), ("child", 2, "root"), ("root", 2, "root")]
    assert elements[0].attrs == {
        "s": "h\u00e9llo\u0000\U0001F600", "mode": "same", "hex": b"\x01\x02\xff",
        "b64": b"\x7f", "i": -5, "ih": 0x1234, "l": -(1 << 40), "lh": 1 << 62, "f": 1.5,
        "d": -2.25, "t": True, "no": False, "n": None}
    assert elements[1].attrs == {"mode": "same"}   # an interned value by its index
    assert b"\xff\xff\x00\x04same" in data
    assert data.count(b"same") == 1


def test_keystore_key_the_heuristic_misses() -> None:
    """A key whose 16-bit length ends in a base64 character: the heuristic (MVT's) reads
    that byte as part of the key (a wrong key, and fingerprint); the reader finds it,
    with its last connection."""
    miss = next(k for i in range(200) if (len(k := host_key(i, "u" * i + "@laptop")) & 0xFF)
                in B64_CHARS)
    other = next(k for i in range(200) if (len(k := host_key(i, "v" * i + "@desk")) & 0xFF)
                 not in B64_CHARS)
    data = keystore([(miss, 1_700_000_000_123), (other, 5)])
    assert abx.adb_keystore(data) == [(miss, 1_700_000_000_123), (other, 5)]
    # the heuristic over the same bytes (as a dump shows them) does not find ``miss``
    head = "ADB MANAGER STATE (dumpsys adb):\n{\n  debugging_manager={\n    keystore="
    text = head + data.decode("utf-8", "replace") + "\n\n  }\n}\n"
    got = dumpsys.adb_keys(text)
    assert got is not None
    heuristic = {k.user: k.key for k in got}
    assert heuristic[other.split(" ")[1]] == other.split(" ")[0]
    # (the length's low byte read as the key's first character: not the phone's key)
    assert heuristic.get(miss.split(" ")[1]) != miss.split(" ")[0]
    assert all(k.last_connected is None for k in got)


def _capture(tmp_path: Path, keystore_bytes: bytes) -> dict[str, dict[str, Any]]:
    """check-android's dumpsys_adb over an androidqf capture (its bugreport's adb
    dump with one key) that also holds the keystore file; records by user."""
    files = gen.androidqf_files(False, with_bugreport=False)
    files["bugreport.zip"] = gen.zip_files(gen.bugreport_files(False))
    files["files/data/misc/adb/adb_temp_keys.xml"] = keystore_bytes
    out = check_capture(gen.write_tree(files, tmp_path / "qf"), IocIndex.load(),
                        modules=[m for m in MODULES if m.name == "dumpsys_adb"])
    CAPTURE_ERRORS[:] = [f"{e.code}: {e.message}" for e in out.report.subjects[0].errors]
    return {str(r.data["user"]): dict(r.data) for r in out.ctx.records["dumpsys_adb"]}


CAPTURE_ERRORS: list[str] = []


def test_capture_keystore_file_is_read(tmp_path: Path) -> None:
    """The keystore file itself in a capture (raw bytes): its keys are records with
    their last connection, beside the dump's, including the key the heuristic misses."""
    miss = next(k for i in range(200) if (len(k := host_key(i, "u" * i + "@laptop")) & 0xFF)
                in B64_CHARS)
    got = _capture(tmp_path, keystore([(miss, 1_700_000_000_123)]))
    user = miss.split(" ")[1]
    assert got[user]["last_connected"] == 1_700_000_000_123
    assert got[user]["key"] == miss.split(" ")[0]
    assert str(got[user]["source"]).endswith("adb_temp_keys.xml")
    assert got[user]["fingerprint"] == dumpsys.adb_fingerprint(miss.split(" ")[0])
    assert len(got) >= 2  # the dump's own key(s) as well
    assert not CAPTURE_ERRORS


def test_capture_hostile_keystore_file_is_an_error_entry(tmp_path: Path) -> None:
    data = keystore([(host_key(5, "h@x"), 9)])
    got = _capture(tmp_path, data[:len(data) // 2])
    assert "h@x" not in got
    assert got  # the dump's keys are still read
    assert any(m.startswith("malformed: adb_temp_keys.xml") and "truncated" in m
               for m in CAPTURE_ERRORS)
    # a file over the reader's input cap is not read: a limit error entry
    got = _capture(tmp_path / "big", abx.MAGIC + b"\x10" * abx.MAX_INPUT)
    assert got
    assert any(m.startswith("limit: adb_temp_keys.xml") for m in CAPTURE_ERRORS)


def test_truncated_at_every_offset() -> None:
    data = keystore([(host_key(1, "a@b"), 7), (host_key(2, "c@d"), 8)])
    assert abx.read(data)[0]
    for cut in range(len(data)):
        with pytest.raises(abx.AbxError):
            abx.read(data[:cut])


def test_depth_bomb_and_token_and_intern_caps() -> None:
    w = Writer().start_doc()
    for _ in range(abx.MAX_DEPTH + 1):
        w.start("d")
    with pytest.raises(abx.AbxError, match="deeper than"):
        abx.read(bytes(w.out))
    w = Writer().start_doc()
    for i in range(abx.MAX_INTERNED + 1):
        w.start(f"n{i}").end(f"n{i}")
    with pytest.raises(abx.AbxError, match="interned strings"):
        abx.read(w.end_doc())
    flat = b"ABX\x00\x10" + b"\x29\x00\x00" * (abx.MAX_TOKENS + 1) + b"\x11"
    with pytest.raises(abx.AbxError, match="tokens"):
        abx.read(flat)


def test_huge_claimed_lengths_and_bad_input() -> None:
    start = b"ABX\x00\x10\x32\xff\xff\x00\x01r"
    cases = {
        "huge string": start + b"\x2f\xff\xff\xff\xf0ab",
        "huge bytes": start + b"\x4f\xff\xff\x00\x01h\xff\xffab",
        "bad index": start + b"\x2f\x00\x07",
        "bad type": start + b"\xef\x00\x00",
        "unknown event": start + b"\x1c",
        "mismatched end": start + b"\x32\xff\xff\x00\x01s\x33\x00\x00\x11",
        "attribute outside a tag": start + b"\x33\x00\x00\x1f\x00\x00\x11",
        "open at end": start + b"\x11",
        "no document start": b"ABX\x00\x32\xff\xff\x00\x01r",
        "bad utf": start + b"\x2f\xff\xff\x00\x02\xc3\x28",
        "no magic": b"<?xml version='1.0'?>",
    }
    for what, data in cases.items():
        with pytest.raises(SpywallError) as err:
            abx.read(data)
        assert isinstance(err.value, abx.AbxError), what
    # a document past the input cap is read no further than the cap (truncated)
    big = Writer().start_doc().start("r").text(TEXT, "x" * 60000)
    while len(big.out) <= abx.MAX_INPUT:
        big.text(TEXT, "x" * 60000)
    with pytest.raises(abx.AbxError, match="truncated"):
        abx.read(big.end("r").end_doc())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=400))
def test_fuzz_never_crashes(noise: bytes, at: int) -> None:
    """Any bytes after the magic, and a valid keystore with bytes spliced in: the result
    is elements or an AbxError, never another exception."""
    base = keystore([(host_key(4, "f@z"), 1)])
    for data in (abx.MAGIC + noise, base[:at] + noise + base[at:]):
        try:
            elements, used = abx.read(data)
        except abx.AbxError:
            continue
        assert 0 < used <= len(data)
        assert all(1 <= e.depth <= abx.MAX_DEPTH for e in elements)
