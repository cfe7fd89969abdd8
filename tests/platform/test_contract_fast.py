"""The contract's fast path for plain events accepts exactly what the full validation
accepts, with the same event, and leaves every refusal (and its reason) to it: events of
every type, mutated field by field (missing, empty, too long, not a string, a NUL, an
``asn``), compared through ``validate`` and ``validate_fully``."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.platform.contract import (
    FIELDS,
    MAX_FIELD_CHARS,
    MAX_ID_CHARS,
    EventError,
    parse_line,
    validate,
    validate_fully,
)

BASE: dict[str, Any] = {
    "account": "u1", "phone": "+447700900123", "ip": "198.51.100.7", "device": "d1",
    "client": "WA/2.24.1 iOS", "call": "c1", "caller": "u1", "callee": "u2",
    "capture": "x.pcap", "message": "m1", "sender": "u1", "recipients": ["u2"],
    "attachments": [{"sha256": "a" * 64, "size": 10}],
}
EDGE_STRINGS = ["", "x", "x" * MAX_FIELD_CHARS, "x" * (MAX_FIELD_CHARS + 1), "a\x00b", "+1",
                "+15550100", "é" * MAX_FIELD_CHARS, "x" * (MAX_ID_CHARS + 1)]
STRINGS = st.sampled_from(EDGE_STRINGS)
OTHERS = st.one_of(st.integers(-2, 2**33), st.none(), st.booleans(),
                   st.lists(st.text(max_size=3), max_size=2), st.text(max_size=20))
VALUES = st.one_of(STRINGS, STRINGS, STRINGS, OTHERS)     # mostly the edges of a string
TS = st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z",
                      "2024-01-01t00:00:00z", "2024-01-01 00:00:00Z",
                      "2024-01-01T00:00:00", "0001-01-01T00:00:00+01:00",
                      "9999-12-31T23:59:59-01:00", "2024-01-01T00:00:00.123456+05:30",
                      "yesterday", ""])


def _outcome(fn: Any, obj: Any, raw: str) -> tuple[str, Any]:
    try:
        ev = fn(obj, raw)
    except EventError as exc:
        return "refused", str(exc)
    return "event", (ev.id, ev.type, ev.ts_us, ev.fields, ev.raw)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """An event of some type with up to two of its own fields (or id, type, asn,
    country) changed and up to one dropped."""
    kind = draw(st.sampled_from(sorted(FIELDS)))
    obj = {"id": "e1", "type": kind, "ts": draw(TS),
           **{k: v for k, v in BASE.items() if k in FIELDS[kind]}}
    names = [*FIELDS[kind], "id", "type", "asn", "country"]
    obj.update(draw(st.dictionaries(st.sampled_from(names), VALUES, max_size=2)))
    for name in draw(st.sets(st.sampled_from([*FIELDS[kind], "id", "ts"]), max_size=1)):
        obj.pop(name, None)
    return obj


@settings(max_examples=500)
@given(obj=events())
def test_the_fast_path_agrees_with_the_full_validation(obj: dict[str, Any]) -> None:
    raw = msgspec.json.encode(obj).decode()
    fast = _outcome(validate, dict(obj), raw)
    assert fast == _outcome(validate_fully, dict(obj), raw)
    assert _outcome(lambda o, r: parse_line(r.encode() + b"\n"), None, raw) == fast


def test_every_field_of_every_type_at_its_edges() -> None:
    """Each field (and id, type, ts, asn, country) of each type set to each edge value,
    or dropped, one at a time: the two paths agree on all of them."""
    edges = [*EDGE_STRINGS, 0, 2**32, -1, None, True, ["x"], {"a": 1}]
    checked = 0
    for kind in sorted(FIELDS):
        base = {"id": "e1", "type": kind, "ts": "2024-01-01T00:00:00Z",
                **{k: v for k, v in BASE.items() if k in FIELDS[kind]}}
        for name in [*FIELDS[kind], "id", "type", "ts", "asn", "country", "extra"]:
            for value in [*edges, "drop"]:
                obj = dict(base)
                if value == "drop":
                    obj.pop(name, None)
                else:
                    obj[name] = value
                raw = msgspec.json.encode(obj).decode()
                assert _outcome(validate, dict(obj), raw) == \
                    _outcome(validate_fully, dict(obj), raw), (kind, name, value)
                checked += 1
    assert checked > 500


def test_a_plain_event_takes_the_fast_path_and_a_bad_one_gets_its_reason() -> None:
    line = b'{"id":"e1","type":"call.answered","ts":"2024-01-01T00:00:00Z","call":"c1"}\n'
    assert parse_line(line).raw == line[:-1].decode()
    assert parse_line(b"  " + line).raw == line[:-1].decode()
    with pytest.raises(EventError, match=r"^call: must be a non-empty string$"):
        parse_line(line.replace(b'"c1"', b'""'))
