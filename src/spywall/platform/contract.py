"""Events as the contract defines them (``reference/platform.md``): validated, never trusted.

An event is a JSON object with ``id``, ``type`` and ``ts`` (RFC 3339) and the fields its
type needs. Unknown fields are kept, never refused; a missing or mistyped field refuses
the event with a reason that names it. ``parse_line`` is the one entry point for the
three ways events arrive (file, HTTP, NATS), so they refuse the same things.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

MAX_EVENT_BYTES = 1 << 20          # one event's JSON text
MAX_ID_CHARS = 256
MAX_FIELD_CHARS = 512
MAX_RECIPIENTS = 1024
MAX_ATTACHMENTS = 64

STR, LIST_STR, ATTACHMENTS = "string", "list of strings", "list of attachments"

# type -> {field: shape}. The contract's table, as data.
FIELDS: dict[str, dict[str, str]] = {
    "account.registered": {"account": STR, "phone": STR, "ip": STR, "device": STR,
                           "client": STR},
    "account.connected": {"account": STR, "ip": STR, "device": STR, "client": STR},
    "call.offered": {"call": STR, "caller": STR, "callee": STR, "ip": STR},
    "call.answered": {"call": STR},
    "call.ended": {"call": STR},
    "call.media": {"call": STR, "capture": STR},
    "message.sent": {"message": STR, "sender": STR, "recipients": LIST_STR, "ip": STR,
                     "attachments": ATTACHMENTS},
}
# Which field names the acting account, and which the call or message, per type.
ACTOR_FIELD = {"account.registered": "account", "account.connected": "account",
               "call.offered": "caller", "message.sent": "sender"}
REF_FIELD = {"call.offered": "call", "call.answered": "call", "call.ended": "call",
             "call.media": "call", "message.sent": "message"}
# Events that count as the party using the platform (a violation after an order).
ACTIVITY_TYPES = frozenset(ACTOR_FIELD)

E164 = re.compile(r"\+[1-9][0-9]{5,14}")
SHA256 = re.compile(r"[0-9a-f]{64}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_decoder = msgspec.json.Decoder()


class EventError(ValueError):
    """An event the contract refuses; the message says which field and why."""


class Event(msgspec.Struct, frozen=True):
    """A validated event: its text as sent, its fields, and the time in microseconds."""

    id: str
    type: str
    ts_us: int
    fields: dict[str, Any]
    raw: str

    @property
    def actor(self) -> str | None:
        name = ACTOR_FIELD.get(self.type)
        return self.fields[name] if name else None

    @property
    def ref(self) -> str | None:
        name = REF_FIELD.get(self.type)
        return self.fields[name] if name else None

    @property
    def ts(self) -> str:
        return str(self.fields["ts"])


def parse_ts(value: object) -> int:
    """RFC 3339 date-time (``Z`` or a numeric offset) -> microseconds since the epoch, UTC."""
    if not isinstance(value, str) or len(value) > 40 or ("T" not in value
                                                         and "t" not in value):
        raise EventError("ts: not an RFC 3339 date-time")
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z") if "z" in value else value)
    except ValueError:
        raise EventError(f"ts: not an RFC 3339 date-time: {value!r}") from None
    if moment.tzinfo is None:
        raise EventError("ts: no time zone (RFC 3339 needs Z or an offset)")
    if moment.year in (1, 9999):      # only there can the offset leave the calendar
        try:
            moment.astimezone(UTC)
        except OverflowError:
            raise EventError("ts: outside the years 1 to 9999 in UTC") from None
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def us_to_rfc3339(us: int) -> str:
    """Microseconds since the epoch -> RFC 3339 in UTC, as ``2019-04-29T10:00:00Z``."""
    moment = datetime.fromtimestamp(us / 1_000_000, UTC)
    text = moment.isoformat(timespec="microseconds" if us % 1_000_000 else "seconds")
    return text.replace("+00:00", "Z")


def _check_str(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise EventError(f"{name}: must be a non-empty string")
    if len(value) > MAX_FIELD_CHARS:
        raise EventError(f"{name}: longer than {MAX_FIELD_CHARS} characters")
    if "\x00" in value:
        raise EventError(f"{name}: contains a NUL character")


def _check_attachments(value: object) -> None:
    if not isinstance(value, list):
        raise EventError("attachments: must be a list")
    if len(value) > MAX_ATTACHMENTS:
        raise EventError(f"attachments: more than {MAX_ATTACHMENTS}")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise EventError(f"attachments[{i}]: must be an object")
        digest = item.get("sha256")
        if not isinstance(digest, str) or not SHA256.fullmatch(digest.lower()):
            raise EventError(f"attachments[{i}].sha256: must be 64 hexadecimal digits")
        size = item.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool)
                                 or size < 0):
            raise EventError(f"attachments[{i}].size: must be a whole number")
        for key in ("path", "data"):
            if key in item and not isinstance(item[key], str):
                raise EventError(f"attachments[{i}].{key}: must be a string")


def _check_list_str(name: str, value: object) -> None:
    if not isinstance(value, list) or not value:
        raise EventError(f"{name}: must be a non-empty list of strings")
    if len(value) > MAX_RECIPIENTS:
        raise EventError(f"{name}: more than {MAX_RECIPIENTS} entries")
    for i, item in enumerate(value):
        _check_str(f"{name}[{i}]", item)


# type -> (its string fields, whether it has others): the fast path's plan.
_PLANS = {kind: (tuple(n for n, form in shape.items() if form == STR),
                 any(form != STR for form in shape.values()))
          for kind, shape in FIELDS.items()}


def validate(obj: object, raw: str) -> Event:
    """A decoded JSON value -> ``Event``, or ``EventError`` naming what is wrong.

    Most events are plain: a known type whose fields are all short non-empty strings, no
    NUL anywhere (the text has no ``\\u0000``), no ``asn`` or ``country``. Those are
    accepted after one pass of cheap tests; anything else, and every refusal, goes
    through ``validate_fully``, which is the definition."""
    if type(obj) is dict and "\\u0000" not in raw:
        kind = obj.get("type")
        plan = _PLANS.get(kind) if type(kind) is str else None
        ident = obj.get("id")
        if (plan is not None and not plan[1] and type(ident) is str
                and 0 < len(ident) <= MAX_ID_CHARS and "asn" not in obj
                and "country" not in obj):
            for name in plan[0]:
                value = obj.get(name)
                if type(value) is not str or not 0 < len(value) <= MAX_FIELD_CHARS:
                    break
            else:
                if kind != "account.registered" or E164.fullmatch(obj["phone"]):
                    assert isinstance(kind, str)
                    return Event(id=ident, type=kind, ts_us=parse_ts(obj.get("ts")),
                                 fields=obj, raw=raw)
    return validate_fully(obj, raw)


def validate_fully(obj: object, raw: str) -> Event:
    """``validate`` with every test spelled out, in the order its reasons are given."""
    if not isinstance(obj, dict):
        raise EventError("not a JSON object")
    ident = obj.get("id")
    if not isinstance(ident, str) or not ident or len(ident) > MAX_ID_CHARS:
        raise EventError(f"id: must be a non-empty string of at most {MAX_ID_CHARS} characters")
    if "\x00" in ident:
        raise EventError("id: contains a NUL character")
    kind = obj.get("type")
    shape = FIELDS.get(kind) if isinstance(kind, str) else None
    if shape is None:
        raise EventError(f"type: unknown event type {kind!r}")
    ts_us = parse_ts(obj.get("ts"))
    for name, form in shape.items():
        if name not in obj:
            raise EventError(f"{name}: missing (required for {kind})")
        value = obj[name]
        if form == STR:
            _check_str(name, value)
        elif form == LIST_STR:
            _check_list_str(name, value)
        else:
            _check_attachments(value)
    if kind == "account.registered" and not E164.fullmatch(obj["phone"]):
        raise EventError("phone: not an E.164 number (+ and 6 to 15 digits)")
    # Optional fields reach columns too (ip, device...). JSON can only carry a NUL as the
    # escape \u0000, so the text tells whether any value needs looking at.
    if "\\u0000" in raw:
        for name, value in obj.items():
            if isinstance(value, str) and "\x00" in value:
                raise EventError(f"{name[:64]!r}: contains a NUL character")
    for optional in ("asn", "country") if ("asn" in obj or "country" in obj) else ():
        value = obj.get(optional)
        if optional in obj and not isinstance(value, str | int):
            raise EventError(f"{optional}: must be a string or a number")
        if isinstance(value, int) and not 0 <= value < 1 << 32:
            raise EventError(f"{optional}: a number from 0 to 4294967295")
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            raise EventError(f"{optional}: longer than {MAX_FIELD_CHARS} characters")
    assert isinstance(kind, str)
    return Event(id=ident, type=kind, ts_us=ts_us, fields=obj, raw=raw)


def parse_line(line: bytes | str) -> Event:
    """One JSON Lines line -> ``Event`` (``EventError`` for anything the contract refuses)."""
    if len(line) > MAX_EVENT_BYTES:
        raise EventError(f"event larger than {MAX_EVENT_BYTES} bytes")
    data = line.encode() if isinstance(line, str) else line
    try:
        obj = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise EventError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise EventError("not valid JSON: nested too deeply") from None
    if data[:1] == b"{" and data[-2:] == b"}\n":    # the usual line: nothing to strip
        raw = data[:-1].decode("utf-8")
    else:
        raw = data.decode("utf-8").strip()
    return validate(obj, raw)


def from_mapping(obj: Mapping[str, Any]) -> Event:
    """An event that arrived already decoded (HTTP, NATS): re-encoded once as its text."""
    raw = msgspec.json.encode(obj).decode()
    if len(raw) > MAX_EVENT_BYTES:
        raise EventError(f"event larger than {MAX_EVENT_BYTES} bytes")
    return validate(dict(obj), raw)


def asn_of(value: object) -> str | None:
    """The ``asn`` field, normalised to digits (``AS64500`` and ``64500`` are the same)."""
    if value is None:
        return None
    text = str(value).strip().upper()
    return text[2:] if text.startswith("AS") else text
