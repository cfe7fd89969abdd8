"""STIX 2.1 bundles (and Amnesty's 2018 CSV) -> ``Indicator`` values.

Patterns are parsed by a strict fast path for the forms every public set uses
(``[type:path = 'value']`` and OR-compounds of them); anything else goes to the official
``stix2-patterns`` parser. Only equality comparisons joined by OR are loaded: an AND, a
``!=``/``LIKE``/``MATCHES`` or an observation operator other than OR cannot be turned into
independent look-ups and is reported as unsupported instead of being half-matched.
``tests/test_iocs_stix.py`` checks the fast path against stix2-patterns on every bundled
pattern.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import msgspec

from spywall.errors import FormatError, InputError
from spywall.iocs.model import Indicator, classify

MAX_OBJECTS = 2_000_000
# JSON values a file may hold, bounded before it is decoded (every value but the first of
# a container follows a comma): 40 million ``{},`` cost 2.8 GB as Python objects, so
# counting after the decoding is too late. The largest published sets hold ~1 M values.
MAX_VALUES = 4_000_000
MAX_INDICATORS = 2_000_000  # per file (a pattern may hold up to MAX_COMPARISONS)
# A value longer than the longest look-up (``index.MAX_QUERY``) can never match; a pattern
# longer than MAX_PATTERN_CHARS is not matched against any regex.
MAX_VALUE_CHARS = 8192
MAX_PATTERN_CHARS = 1 << 20
# Unsupported entries: each message says which object (its id cut to MAX_ID_CHARS) and
# why; a file keeps the first MAX_UNSUPPORTED_LISTED and counts the rest.
MAX_ID_CHARS = 120
MAX_UNSUPPORTED_LISTED = 1000
MAX_PATTERN = 4096          # longer patterns are not handed to the (recursive) ANTLR parser
MAX_COMPARISONS = 1000      # per pattern
MAX_SLOW = 5000             # patterns per file handed to stix2-patterns (~1-80 ms each)
# The loader's budget for the ANTLR parser, per file: its cost grows with the text and
# the nesting (3 MB of patterns nested 500 deep took 54 s and 0.9 GB), so it is given at
# most this much pattern text in all, and no pattern nested deeper than MAX_NESTING;
# the rest is reported as unsupported. The published sets never need it.
MAX_SLOW_CHARS = 256 * 1024
MAX_NESTING = 16

_WS = r"[ \t\r\n]*"
_IDENT = r"[a-z_][a-z0-9_]*"
_QIDENT = r"'[^'\\\r\n]+'"
_COMP = re.compile(
    _WS + r"([a-z][a-z0-9-]*):((?:" + _IDENT + "|" + _QIDENT + r")(?:\.(?:" + _IDENT + "|"
    + _QIDENT + r"))*)" + _WS + "=" + _WS + r"'((?:[^'\\]|\\['\\])*)'" + _WS
)
_SINGLE = re.compile(r"\[" + _COMP.pattern + r"\]")
# The form nearly every published pattern has; five times quicker than _SINGLE.
_SIMPLE = re.compile(
    r"\[([a-z][a-z0-9-]*):(" + _IDENT + r"(?:\.(?:" + _IDENT + "|" + _QIDENT
    + r"))*) ?= ?'([^'\\]*)'\]"
)
_OR = re.compile(r"OR(?=[ \t\r\n])")
_UNESCAPE = re.compile(r"\\(['\\])")
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'")
_AND = re.compile(r"\bAND\b")
# The parser is a third-party library: besides its own ParseException, ANTLR can let these
# escape on hostile text (deep nesting, odd tokens). They all mean "cannot parse".
_PARSER_ERRORS = (RecursionError, ValueError, TypeError, AttributeError, IndexError, KeyError)



class UnsupportedPattern(FormatError):
    """A pattern that is invalid, or valid but not a set of OR-ed equality comparisons."""

    code = "unsupported"


Comparison = tuple[str, str]  # (stix_type as published, unescaped value)


def unescape(literal: str) -> str:
    return _UNESCAPE.sub(r"\1", literal) if "\\" in literal else literal


def fast_comparisons(pattern: str) -> list[Comparison] | None:
    """Comparisons of a simple or OR-compound pattern, or None if the form is not simple."""
    one = _SIMPLE.fullmatch(pattern)
    if one is not None:
        return [(one.group(1) + ":" + one.group(2), one.group(3))]
    one = _SINGLE.fullmatch(pattern)
    if one is not None:
        return [(f"{one.group(1)}:{one.group(2)}", unescape(one.group(3)))]
    if not pattern.startswith("["):
        return None
    out: list[Comparison] = []
    pos = 1
    while True:
        m = _COMP.match(pattern, pos)
        if m is None or len(out) >= MAX_COMPARISONS:
            return None
        out.append((f"{m.group(1)}:{m.group(2)}", unescape(m.group(3))))
        pos = m.end()
        if pattern.startswith("]", pos):
            return out if pos + 1 == len(pattern) else None
        sep = _OR.match(pattern, pos)
        if sep is None:
            return None
        pos = sep.end()


def _path_text(parts: list[Any]) -> str:
    out = []
    for p in parts:
        s = str(p)
        out.append(s if re.fullmatch(_IDENT, s) else f"'{s}'")
    return ".".join(out)


def _nesting(pattern: str) -> int:
    """Deepest bracket nesting outside string literals."""
    depth = deepest = 0
    for ch in _STRINGS.sub("", pattern):
        if ch in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]":
            depth -= 1
    return deepest


def slow_comparisons(pattern: str) -> list[Comparison]:
    """Comparisons via stix2-patterns; raises ``UnsupportedPattern`` saying why not."""
    if len(pattern) > MAX_PATTERN:
        raise UnsupportedPattern(f"pattern longer than {MAX_PATTERN} characters")
    if _nesting(pattern) > MAX_NESTING:
        raise UnsupportedPattern(f"pattern nested deeper than {MAX_NESTING}")
    # Imported here: the ANTLR runtime costs tens of milliseconds of start-up, and the
    # published sets never need it (every pattern takes the fast path).
    from stix2patterns.exceptions import ParseException
    from stix2patterns.v21.pattern import Pattern

    try:
        data = Pattern(pattern).inspect()
    except (ParseException, *_PARSER_ERRORS) as exc:
        raise UnsupportedPattern(f"invalid STIX pattern: {str(exc)[:200]}") from exc
    if data.observation_ops - {"OR"} or data.qualifiers:
        raise UnsupportedPattern("observation operators or qualifiers are not supported")
    if _AND.search(_STRINGS.sub("", pattern)):
        raise UnsupportedPattern("AND comparisons are not supported")
    out: list[Comparison] = []
    for obj, comps in data.comparisons.items():
        for path, op, literal in comps:
            if op != "=" or not (isinstance(literal, str) and literal.startswith("'")):
                raise UnsupportedPattern(f"operator {op} or non-string value is not supported")
            out.append((f"{obj}:{_path_text(path)}", unescape(literal[1:-1])))
    return out


def comparisons(pattern: str, slow: bool = True) -> list[Comparison]:
    """Comparisons of a pattern: fast path, else stix2-patterns when ``slow`` allows."""
    fast = fast_comparisons(pattern)
    if fast is not None:
        return fast
    if not slow:
        raise UnsupportedPattern(f"more than {MAX_SLOW} complex patterns in one file")
    return slow_comparisons(pattern)


class Loaded(msgspec.Struct):
    """What one indicator file gave. ``unsupported`` lists the first
    ``MAX_UNSUPPORTED_LISTED`` entries not loaded, ``unsupported_total`` counts them all."""

    indicators: list[Indicator] = msgspec.field(default_factory=list)
    collections: list[str] = msgspec.field(default_factory=list)
    unsupported: list[str] = msgspec.field(default_factory=list)
    unsupported_total: int = 0

    def refuse(self, ident: object, why: str) -> None:
        """Record an object not loaded: its id (data, cut short) and why."""
        self.unsupported_total += 1
        if len(self.unsupported) < MAX_UNSUPPORTED_LISTED:
            self.unsupported.append(f"{short(ident)}: {why}")


def short(value: object, most: int = MAX_ID_CHARS) -> str:
    """An id or a field as published, cut to ``most`` characters (a hostile file's id
    may be megabytes, or not a string at all)."""
    text = value if isinstance(value, str) else f"<{type(value).__name__}>"
    return text if len(text) <= most else f"{text[:most]}... ({len(text)} characters)"


def _parse_json(data: bytes) -> object:
    """The document, decoded by msgspec (a 50,000-indicator bundle is ~30 MB, and msgspec
    reads it in about 60% of the time of ``json``; it is loaded anyway for the report).
    What msgspec refuses and ``json`` may accept (UTF-16/32 or a byte-order mark, NaN,
    deep nesting) goes to ``json``, so the same files load either way and the error
    message is ``json``'s."""
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return json.loads(data)


def _count_values(data: bytes, source: str) -> None:
    """Refuse a file that may hold more than ``MAX_VALUES`` JSON values, before decoding
    it: an upper bound (commas and brackets, in strings too) at the speed of ``count``."""
    bound = data.count(b",") + data.count(b"[") + data.count(b"{") + 1
    if bound > MAX_VALUES:
        raise InputError(f"{source}: up to {bound} JSON values, over the cap of "
                         f"{MAX_VALUES}: not decoded")


class _Object(msgspec.Struct):
    """The fields of a STIX object that loading reads; decoding skips every other field
    without building it (half the decoding time of a 50,000-indicator bundle). Any JSON
    value is accepted in each: the loader checks what it uses."""

    type: Any = None
    id: Any = None
    name: Any = None
    pattern: Any = None
    pattern_type: Any = "stix"
    relationship_type: Any = None
    source_ref: Any = None
    target_ref: Any = None


class _Bundle(msgspec.Struct):
    objects: list[_Object]


_BUNDLE = msgspec.json.Decoder(_Bundle)
_FIELDS = _Object.__struct_fields__


def _objects(data: bytes, source: str) -> list[_Object]:
    _count_values(data, source)
    try:
        objs = _BUNDLE.decode(data).objects
    except (msgspec.DecodeError, RecursionError):
        # Not a bundle of objects as msgspec reads one (an entry that is not an object,
        # no objects list, an encoding or a JSON form only ``json`` accepts): the
        # document as it is, with its error.
        objs = _objects_of_document(data, source)
    if len(objs) > MAX_OBJECTS:
        raise InputError(f"{source}: {len(objs)} objects, over the cap of {MAX_OBJECTS}")
    return objs


def _objects_of_document(data: bytes, source: str) -> list[_Object]:
    try:
        doc = _parse_json(data)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{source}: not JSON: {str(exc)[:200]}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("objects"), list):
        raise InputError(f"{source}: not a STIX bundle (no objects list)")
    objs = doc["objects"]
    if len(objs) > MAX_OBJECTS:
        raise InputError(f"{source}: {len(objs)} objects, over the cap of {MAX_OBJECTS}")
    return [_Object(**{k: o[k] for k in _FIELDS if k in o}) for o in objs
            if isinstance(o, dict)]


def _by_type(objs: list[_Object]) -> dict[str, list[_Object]]:
    """Malware, relationship and indicator objects, each in bundle order (one pass); an
    object whose type is not a string is none of them."""
    out: dict[str, list[_Object]] = {"malware": [], "relationship": [], "indicator": []}
    get = out.get
    for o in objs:
        t = o.type
        group = get(t) if t.__class__ is str else None
        if group is not None:
            group.append(o)
    return out


def _collections(malware: list[_Object], relationships: list[_Object]
                 ) -> tuple[dict[str, str], list[str]]:
    names: dict[str, str] = {}
    for o in malware:
        if isinstance(o.id, str):
            names[o.id] = str(o.name or o.id)
    owner: dict[str, str] = {}
    for o in relationships:
        if o.relationship_type == "indicates":
            src, dst = o.source_ref, o.target_ref
            if isinstance(src, str) and isinstance(dst, str) and dst in names:
                owner.setdefault(src, names[dst])
    return owner, sorted(set(names.values()))


def load_bundle(data: bytes, source: str, default_collection: str) -> Loaded:
    """Indicators of a STIX 2 bundle. Raises ``InputError`` if it is not a bundle."""
    groups = _by_type(_objects(data, source))
    owner, names = _collections(groups["malware"], groups["relationship"])
    fallback = names[0] if len(names) == 1 else default_collection
    out = Loaded(collections=names or [default_collection])
    slow_left, slow_chars = MAX_SLOW, MAX_SLOW_CHARS
    keep, make, simple = out.indicators.append, Indicator, _SIMPLE.fullmatch
    for o in groups["indicator"]:
        pattern = o.pattern
        if not isinstance(pattern, str):
            continue
        ident = o.id
        if o.pattern_type != "stix":
            out.refuse(ident, f"pattern_type {short(o.pattern_type, 40)}")
            continue
        if len(pattern) > MAX_PATTERN_CHARS:
            out.refuse(ident, f"pattern of {len(pattern)} characters, over the cap of "
                              f"{MAX_PATTERN_CHARS}: not parsed")
            continue
        collection = owner.get(ident if isinstance(ident, str) else str(ident), fallback)
        one = simple(pattern)  # the form of nearly every published pattern
        if one is not None:
            obj, path, raw = one.groups()
            comps: list[Comparison] = [(obj + ":" + path, raw)]
        else:
            try:
                fast = fast_comparisons(pattern)
                if fast is None:
                    slow_left -= 1
                    slow_chars -= len(pattern)
                    if slow_chars < 0:
                        raise UnsupportedPattern(
                            f"complex patterns of this file over {MAX_SLOW_CHARS} "
                            "characters in all: not parsed")
                    fast = comparisons(pattern, slow=slow_left >= 0)
                comps = fast
            except UnsupportedPattern as exc:
                out.refuse(ident, str(exc))
                continue
        for stix_type, value in comps:
            if len(value) > MAX_VALUE_CHARS:
                out.refuse(ident, f"value of {len(value)} characters, longer than any "
                                  f"look-up ({MAX_VALUE_CHARS})")
                continue
            got = classify(stix_type, value)
            if got is None:
                out.refuse(ident, f"{short(stix_type, 80)} not supported")
                continue
            keep(make(got[0], got[1], stix_type, collection, source))
        if len(out.indicators) > MAX_INDICATORS:
            raise InputError(f"{source}: more than {MAX_INDICATORS} indicators, over the "
                             "cap: not loaded")
    return out


CSV_COLUMNS: dict[str, str] = {"domain_name": "domain-name:value", "ip_address": "ipv4-addr:value"}


def load_csv(data: bytes, source: str, collection: str) -> Loaded:
    """Amnesty's 2018 NSO ``indicators.csv`` (columns domain_name, ip_address)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 text") from exc
    rows: Iterator[dict[str, str]] = csv.DictReader(io.StringIO(text))
    out = Loaded(collections=[collection])
    seen: set[tuple[str, str]] = set()
    try:
        for row in rows:
            for column, stix_type in CSV_COLUMNS.items():
                got = classify(stix_type, row.get(column) or "")
                if got is not None and got not in seen:
                    seen.add(got)
                    out.indicators.append(
                        Indicator(got[0], got[1], stix_type, collection, source))
    except csv.Error as exc:
        raise InputError(f"{source}: bad CSV: {exc}") from exc
    if not out.indicators:
        raise InputError(f"{source}: no domain_name / ip_address columns")
    return out
