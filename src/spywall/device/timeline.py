"""Each module's share of an MVT-compatible result folder, rendered where the module ran.

A module's records become the text of ``<module>.json`` (one JSON object per record: its
time, module and event, then its fields, keys sorted) and its rows of ``timeline.csv``
(``"UTC Timestamp","Plugin","Event","Description"``, the description being the fields as
JSON, keys sorted), in the exact bytes MVT's writers would give. ``device.output`` writes
the folder from these parts; a worker process of a parallel check sends its parts back
instead of its records.

A large backup holds tens of thousands of records (every message and visit), so the
rendering works on the module's records as columns, not one record at a time: the fields
of all records are encoded in one call of msgspec's C encoder (``encode_lines``: one line
a record, JSON holds no raw line break), the line texts are cut, escaped and spliced in
whole-text passes, and each record's JSON item and CSV row is put together by C-level
joins over the columns (``map``, ``zip``): no Python code runs per record there. The
largest modules (SMS, Safari history) hand over their records as columns already
(``Batch``): each record's item and fields are encoded from them as msgspec structs of
the field names, and no record object or field dict is made. Records the batch cannot
take (a field named like a header key or that a struct cannot carry, a value the
encoder refuses, a time that holds a line break) go through the same steps one record
at a time.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain, compress, repeat
from operator import is_, ne
from typing import NamedTuple, cast

import msgspec

from spywall.device.base import Batch, Record, iso_apple
from spywall.report import Scalar

try:  # (as in device.base: the compiled Apple-time column, absent without a C compiler)
    from spywall.device import _times
except ImportError:  # pragma: no cover
    _times = None  # type: ignore[assignment]

# msgspec's C encoder (already loaded for the report): the standard encoder was most of
# the time of writing a large result folder. What msgspec refuses (a key that is not a
# string, a lone surrogate) goes to ``json``.
_ENC = msgspec.json.Encoder(enc_hook=str)
_ENC_SORTED = msgspec.json.Encoder(enc_hook=str, order="sorted")
REFUSED = (TypeError, ValueError, OverflowError, msgspec.EncodeError)


def enc(obj: object) -> str:
    """One JSON value (UTF-8, not ASCII-escaped)."""
    try:
        return _ENC.encode(obj).decode()
    except REFUSED:
        return _json(obj, False)


def enc_sorted(obj: object) -> str:
    """``enc`` with the keys of every object sorted."""
    try:
        return _ENC_SORTED.encode(obj).decode()
    except REFUSED:
        return _json(obj, True)


def _str_keys(obj: object, depth: int = 0) -> object:
    """Dict keys as JSON writes them (text), so that mixed keys can be sorted."""
    if depth > 100:  # (json itself stops at its recursion limit)
        return obj
    if isinstance(obj, dict):
        return {k if isinstance(k, str) else json.dumps(k) if k is None or isinstance(
            k, bool) else str(k): _str_keys(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_str_keys(v, depth + 1) for v in obj]
    return obj


def writable(text: str) -> str:
    """Evidence text as the result folder writes it (UTF-8): a lone surrogate (a JSON
    string's ``\\ud800``, a name that was not UTF-8), which UTF-8 cannot hold, as its
    escape ``\\ud800`` (inside a JSON string: its JSON escape, the exact value); other
    text as it is."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _json(obj: object, sort: bool) -> str:
    if sort:
        obj = _str_keys(obj)
    return writable(json.dumps(obj, ensure_ascii=False, default=str, sort_keys=sort))


def mvt_time(ts: str) -> str:
    """A record's time as MVT writes times: ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC, no zone
    letter; microseconds always). ``2023-06-01T06:13:20.5Z`` -> ``2023-06-01 06:13:20.500000``.
    A time in another form (local device time from a text dump) is kept as it is."""
    n = len(ts)
    if n == 27 and ts[26] == "Z" and ts[19] == "." and ts[10] == "T":  # (the device
        return ts[:10] + " " + ts[11:26]  # modules' own two forms first: a record each)
    if n == 20 and ts[19] == "Z" and ts[10] == "T":
        return ts[:10] + " " + ts[11:19] + ".000000"
    if n < 19 or ts[10] != "T":
        return ts
    rest = ts[19:].removesuffix("Z").removesuffix("+00:00")
    if rest[:1] == ".":
        frac = rest[1:7]
        if frac.isdigit():
            return f"{ts[:10]} {ts[11:19]}.{frac.ljust(6, '0')}"
    elif not rest:
        return f"{ts[:10]} {ts[11:19]}.000000"
    return ts


# MVT names its timeline rows by its module classes; the slug (file names, alerts) is
# the same name in snake case. Where a spywall module has an MVT twin, its class name.
PLUGINS: dict[str, str] = {
    "sms": "SMS", "sms_attachments": "SMSAttachments", "tcc": "TCC",
    "id_status_cache": "IDStatusCache", "os_analytics_ad_daily": "OSAnalyticsADDaily",
    "datausage": "Datausage", "netusage": "Netusage", "webkit_resource_load_statistics":
    "WebkitResourceLoadStatistics", "webkit_session_resource_log": "WebkitSessionResourceLog",
    "dumpsys_appops": "DumpsysAppops", "dumpsys_dbinfo": "DumpsysDBInfo",
    "dumpsys_adb": "DumpsysADBState", "getprop": "AQFGetProp", "settings": "AQFSettings",
    "packages": "AQFPackages", "processes": "AQFProcesses", "files": "AQFFiles",
    "bugreport_timestamps": "BugReportTimestamps", "log_timestamps": "AQFLogTimestamps",
    "dumpstate_getprop": "DumpsysGetProp", "dumpstate_packages": "DumpsysPackages",
    "bugreport_processes": "Processes", "dumpsys_settings": "Settings",
    "interactionc": "InteractionC", "webkit_indexeddb": "WebkitIndexedDB",
    "webkit_localstorage": "WebkitLocalStorage",
    "webkit_safariviewservice": "WebkitSafariViewService",
    "version_history": "IOSVersionHistory", "analytics_ios_versions": "AnalyticsIOSVersions",
    "whatsapp_contacts": "WhatsappContacts",
}


def plugin(module: str) -> str:
    """The timeline's Plugin column for a module: MVT's class name (``PLUGINS``), or the
    module name in CamelCase (``safari_history`` -> ``SafariHistory``)."""
    got = PLUGINS.get(module)
    if got is None:
        got = PLUGINS[module] = "".join(w[:1].upper() + w[1:] for w in module.split("_"))
    return got


_SLUG = re.compile(r"[^a-z0-9_]+")
# The file names (slugs) MVT's own modules write, where a spywall module's name differs
# (MVT names its androidqf modules aqf_*; the slug is its class name in snake case).
MVT_SLUGS: dict[str, str] = {
    "packages": "aqf_packages", "processes": "aqf_processes", "getprop": "aqf_get_prop",
    "settings": "aqf_settings", "files": "aqf_files", "dumpstate_packages": "dumpsys_packages",
    "dumpsys_adb": "dumpsys_adb_state", "dumpsys_dbinfo": "dumpsys_db_info",
    "log_timestamps": "aqf_log_timestamps", "dumpsys_settings": "settings",
    "dumpstate_getprop": "dumpsys_get_prop", "bugreport_processes": "processes",
    "interactionc": "interaction_c", "webkit_localstorage": "webkit_local_storage",
    "webkit_safariviewservice": "webkit_safari_view_service",
    "version_history": "ios_version_history",
}


def slug(name: str) -> str:
    """File-name-safe module name as MVT's results folder names it: MVT's slug where a
    module has an MVT twin of another name (``MVT_SLUGS``), else the module name made
    safe (``sms-links`` -> ``sms_links``)."""
    name = MVT_SLUGS.get(name, name)
    return _SLUG.sub("_", name.lower()).strip("_") or "module"


EMPTY = b"[]\n"


def json_array(items: Sequence[object]) -> bytes:
    """``[``, one item per line, ``]``, encoded in one call (msgspec's ``encode_lines``:
    one item per line, no line break inside an item) and given its commas; an item the
    encoder refuses sends the whole array through ``enc``."""
    if not items:
        return EMPTY
    try:
        lines = _ENC.encode_lines(items)
    except REFUSED:
        body = ",\n".join(map(enc, items))
        return f"[\n{body}\n]\n".encode()
    return comma_lines(b"[\n", lines, b"\n]\n")


def comma_lines(first: bytes, lines: bytes, last: bytes) -> bytes:
    """``first``, the lines of ``lines`` (each ending with a line break, as
    ``encode_lines`` writes them) joined by ``,\n``, then ``last``: copied once after the
    replace (a slice and each ``+`` copied the whole text again: megabytes for a large
    module)."""
    with memoryview(lines.replace(b"\n", b",\n")) as body:
        return b"".join((first, body[:-2], last))


def join_arrays(a: bytes, b: bytes) -> bytes:
    """Two ``json_array`` texts as one (the items of ``a``, then those of ``b``)."""
    if a == EMPTY:
        return b
    if b == EMPTY:
        return a
    with memoryview(a) as head, memoryview(b) as tail:  # (one copy of each)
        return b"".join((head[:-3], b",\n", tail[2:]))


_SEP, _EOL = "\x01", "\x00"


def csv_text(rows: Sequence[Sequence[str]]) -> str:
    """``rows`` as CSV exactly as ``csv.writer(quoting=QUOTE_ALL, escapechar="\\")`` (MVT's
    timeline dialect) writes them: every field quoted, quotes doubled, backslashes
    escaped, CRLF line ends.

    The csv module spends about 3 us a row on a timeline row (90 ms on a 27,000-record
    backup, measured); this joins every field with two sentinel characters and escapes
    the whole text in three C passes. Should a field itself hold a sentinel (counted, not
    assumed), the csv module writes the rows instead.
    """
    if not rows:
        return ""
    width = len(rows[0])
    body = _EOL.join([_SEP.join(r) for r in rows])
    if (any(len(r) != width for r in rows)
            or body.count(_SEP) != (width - 1) * len(rows)
            or body.count(_EOL) != len(rows) - 1):
        return _csv_module(rows)
    body = csv_field(body)
    return '"' + body.replace(_SEP, '","').replace(_EOL, '"\r\n"') + '"\r\n'


def _csv_module(rows: Sequence[Sequence[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_ALL, escapechar="\\").writerows(rows)
    return buf.getvalue()


def csv_field(text: str) -> str:
    """A field's text inside its quotes, as ``csv_text`` escapes it."""
    return text.replace("\\", "\\\\").replace('"', '""')


def _csv_bytes(text: bytes) -> bytes:
    """``csv_field`` of UTF-8 text (the two characters are ASCII: no multi-byte sequence
    holds their bytes)."""
    return text.replace(b"\\", b"\\\\").replace(b'"', b'""')


Key = tuple[str, str, str]
_HEADER_KEYS = frozenset({"timestamp", "module", "event"})
_OPEN, _CLOSE = b'"', b'"\r\n'
_ITEM = b'{"timestamp":'


class Lines:
    """Timeline rows in the order of their records: ``rows[i]`` is a row's CSV line
    (UTF-8) and ``stamps[i]`` its time (MVT's form), by which the rows of all modules are
    put in time order when the folder is written (``merged``: one stable sort, so a
    module's rows need not be sorted where it ran).

    A worker sends them pickled as two texts, a time a line and the rows joined by NUL
    (pickled as 40,000 objects they cost a worker 10 ms, measured); where a time holds a
    line break or a row a NUL (counted, not assumed) they travel as the lists."""

    __slots__ = ("rows", "stamps")

    def __init__(self, stamps: list[str], rows: list[bytes]) -> None:
        self.stamps, self.rows = stamps, rows

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Lines) and self.stamps == other.stamps
                and self.rows == other.rows)

    __hash__ = None  # type: ignore[assignment]  # (mutable)

    def __len__(self) -> int:
        return len(self.rows)

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        n = len(self.rows)
        stamps, rows = "\n".join(self.stamps), b"\0".join(self.rows)
        if n and stamps.count("\n") == rows.count(b"\0") == n - 1:
            return (_split_lines, (stamps, rows))
        return (Lines, (self.stamps, self.rows))

    def __add__(self, other: Lines) -> Lines:
        return Lines(self.stamps + other.stamps, self.rows + other.rows)

    @staticmethod
    def merged(parts: Iterable[Lines]) -> Iterator[bytes]:
        """The rows of all ``parts``, in time order; equal times keep the order of the
        parts, then of their rows (one stable sort over them all: sorting each part
        first, where it was rendered, gave the same order and cost a second sort)."""
        stamps: list[str] = []
        rows: list[bytes] = []
        for p in parts:
            stamps += p.stamps
            rows += p.rows
        order = sorted(range(len(stamps)), key=stamps.__getitem__)
        return map(rows.__getitem__, order)


def _split_lines(stamps: str, rows: bytes) -> Lines:
    return Lines(stamps.split("\n"), rows.split(b"\0"))


NO_LINES = Lines([], [])


class ModulePart(NamedTuple):
    """One timeline module's share of the result folder, rendered where the module ran: a
    worker process of a parallel check sends this back, not its records.

    ``records`` / ``detected`` are the texts of ``<module>.json`` / ``_detected.json``
    (``json_array``); ``lines`` / ``detected_lines`` the timeline rows of its timed
    records (``Lines``, in record order); ``events`` the event of each
    detected record by (module, time, event), which an alert about it quotes."""

    module: str
    records: bytes
    detected: bytes
    lines: Lines
    detected_lines: Lines
    events: dict[Key, dict[str, Scalar]]


def key(module: str | None, ts: str | None, event: str | None) -> Key:
    return (module or "", ts or "", event or "")


def event_dict(rec: Record) -> dict[str, Scalar]:
    """A record as the event of an alert: its MVT time, module and event, then its
    fields."""
    ts = mvt_time(rec.timestamp) if rec.timestamp else rec.timestamp
    return {"timestamp": ts, "module": rec.module, "event": rec.event, **rec.data}


_FILLER = {20: "2000-01-01T00:00:00Z", 27: "2000-01-01T00:00:00.000001Z"}


def mvt_times(stamps: Sequence[str | None]) -> list[str | None]:
    """``mvt_time`` of each time (None and empty ones kept).

    The device modules write two forms, ``YYYY-MM-DDTHH:MM:SSZ`` and the same with
    ``.ffffff`` before the ``Z``. The times of the more frequent length are rewritten in
    three whole-text passes (``_fixed``), the others (absent ones, the other form, text
    from a dump) one by one, put back in their places. With the compiled helper
    (``device._times.mvt_column``), each of the two forms is rewritten in C and any other
    text by ``mvt_time`` (a fifth of the time of the passes, measured)."""
    if _times is not None:
        return _times.mvt_column(stamps, mvt_time)
    return _mvt_passes(stamps)


def _mvt_passes(stamps: Sequence[str | None]) -> list[str | None]:
    """``mvt_times`` without the compiled helper."""
    n = len(stamps)
    texts: list[str] = list(stamps)  # type: ignore[arg-type]  # (its None are replaced)
    if None in stamps:
        for i in compress(range(n), map(is_, stamps, repeat(None))):
            texts[i] = ""
    lens = list(map(len, texts))
    width = 20 if lens.count(20) >= lens.count(27) else 27
    odd = list(compress(range(n), map(ne, lens, repeat(width))))
    if len(odd) * 4 > n:
        return [mvt_time(t) if t else t for t in stamps]
    for i in odd:
        texts[i] = _FILLER[width]
    out: list[str | None] | None = _fixed(texts, width)  # type: ignore[assignment]
    if out is None:
        return [mvt_time(t) if t else t for t in stamps]
    for i in odd:
        t = stamps[i]
        out[i] = mvt_time(t) if t else t
    return out


def _mvt_apple(value: object) -> str | None:
    iso = iso_apple(value)  # type: ignore[arg-type]
    return mvt_time(iso) if iso else None


def mvt_apple_times(values: Sequence[object]) -> list[str | None]:
    """``mvt_time`` of the ``iso_apple`` time of each value (None where it has none), in
    compiled code when ``device._times`` is built (MVT's form written directly)."""
    if _times is None:
        return mvt_times(list(map(iso_apple, values)))
    return _times.iso_apple_column(values, _mvt_apple, mvt=True)


def _fixed(stamps: list[str], width: int) -> list[str] | None:
    """``mvt_time`` of times all ``width`` (20 or 27) long, rewritten as one text: None
    unless the letters ``mvt_time`` looks at stand at their places in each (strided
    slices of the joined text, the line breaks between the times included) and nowhere
    else (counted)."""
    n = len(stamps)
    text = "\n".join(stamps)
    step = width + 1
    if (len(text) != step * n - 1 or text[width::step] != "\n" * (n - 1)
            or text.count("\n") != n - 1 or text[10::step] != "T" * n
            or text.count("T") != n or text[width - 1::step] != "Z" * n
            or text.count("Z") != n or (width == 27 and text[19::step] != "." * n)):
        return None
    return text.replace("T", " ").replace("Z", "" if width == 27 else ".000000").split("\n")


def _heads(pairs: Iterable[tuple[str, str]], rows: bool = True,
           ) -> tuple[dict[tuple[str, str], bytes], dict[tuple[str, str], bytes]]:
    """For each (module, event): what follows an item's time in its JSON
    (``,"module":..,"event":..``), and what stands between a row's time and its
    description in the CSV (``","Plugin","event","``; none unless ``rows``)."""
    kinds = set(pairs)
    return ({p: b',"module":' + enc(p[0]).encode() + b',"event":' + enc(p[1]).encode()
             for p in kinds},
            {p: f'","{csv_field(plugin(p[0]))}","{csv_field(writable(p[1]))}","'.encode()
             for p in kinds} if rows else {})


def _by_pair(table: dict[tuple[str, str], bytes], mods: str | Sequence[str],
             events: Sequence[str]) -> Iterable[bytes]:
    """``table`` looked up for each record's (module, event): a repeat when there is one
    pair only, by event alone when the module is the same for all (a text keeps its
    hash; a pair's is computed again on every look-up)."""
    if len(table) == 1:
        return repeat(next(iter(table.values())), len(events))
    if isinstance(mods, str) or len({m for m, _ in table}) == 1:
        return map({e: v for (_, e), v in table.items()}.__getitem__, events)
    return map(table.__getitem__, zip(mods, events, strict=True))


def _plain_keys(datas: Sequence[dict[str, Scalar]]) -> bool:
    """Whether every field name is text and none is one of the header's (``timestamp``,
    ``module``, ``event``): then a record's fields can follow its header as they are."""
    keys: set[object] = set().union(*datas)
    return _HEADER_KEYS.isdisjoint(keys) and all(k.__class__ is str for k in keys)


# Modules whose record stands in the timeline at each distinct time of three of its
# fields (modification, access, change: in MVT's form) rather than at its own time, as
# MVT's androidqf files module (AQFFiles) writes its rows: one a distinct time, the
# event MVT's MACB column (``MA--``: the letters of the times equal to the row's; B,
# the birth time, is never known); a field that holds no time gives no row. The record
# itself (``<module>.json``, its alerts) keeps its own time.
MACB: dict[str, tuple[str, str, str]] = {
    "files": ("modified_time", "access_time", "changed_time")}
_TIME = "[0-9]{1,4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}"
_MACB_TIME = re.compile(_TIME)
_MACB_COLUMN = re.compile(f"(?:{_TIME}\n)*{_TIME}")


# Modules whose record stands in the timeline a second time: at the time one of its
# fields holds (in MVT's form; none, no row), under another event, with the record's
# description, as MVT's SMS module writes an ``sms_read`` row at the read time of each
# message read. A module's second rows follow its records' rows (the folder's stable
# sort by time puts them in place; MVT orders rows of equal times by no rule: its
# timeline passes through a set).
SECOND_ROW: dict[str, tuple[str, str]] = {"sms": ("isodate_read", "sms_read")}


def _macb_times(values: Sequence[object]) -> Sequence[str | None]:
    """A column of a ``MACB`` field: each value that is a time in MVT's form, else None
    (all checked by one match over the column's text when all are)."""
    if {v.__class__ for v in values} == {str}:
        texts = cast("Sequence[str]", values)
        if _MACB_COLUMN.fullmatch("\n".join(texts)):
            return texts
    return [v if isinstance(v, str) and _MACB_TIME.fullmatch(v) else None for v in values]


def _macb(m: str | None, a: str | None, c: str | None) -> list[tuple[str, bytes]]:
    """The (time, MACB letters) of a record's rows, by time."""
    if m == a:
        if a == c:
            return [(m, b"MAC-")] if m else []
        got = [(m, b"MA--"), (c, b"--C-")]
    elif m == c:
        got = [(m, b"M-C-"), (a, b"-A--")]
    elif a == c:
        got = [(m, b"M---"), (a, b"-AC-")]
    else:
        got = [(m, b"M---"), (a, b"-A--"), (c, b"--C-")]
    return sorted([p for p in got if p[0]])  # type: ignore[misc]  # (None dropped)


def _macb_lines(recs: Sequence[Record], descs: Iterable[bytes]) -> Lines:
    """The timeline rows of a ``MACB`` module's records (``descs``: each record's
    description, escaped), in record order, each record's by time. A row of the same
    time, letters and event as an earlier one (a file listed twice) is written once, as
    MVT drops a module's repeated rows (its Description is the path: the first entry's
    fields are kept)."""
    datas = [r.data for r in recs]
    m, a, c = ([d.get(name) for d in datas] for name in MACB[recs[0].module])
    events = [r.event for r in recs]
    seen: set[tuple[str, bytes, str]] | None = (
        None if len(set(events)) == len(events) else set())
    stamps: list[str] = []
    letters: list[bytes] = []
    texts: list[bytes] = []
    for ms, as_, cs, event, desc in zip(  # (the batch's ``descs`` end with an empty one)
            _macb_times(m), _macb_times(a), _macb_times(c), events, descs, strict=False):
        for t, macb in _macb(ms, as_, cs):
            if seen is not None:
                if (t, macb, event) in seen:
                    continue
                seen.add((t, macb, event))
            stamps.append(t)
            letters.append(macb)
            texts.append(desc)
    head = f'","{csv_field(plugin(recs[0].module))}","'.encode()
    rows = list(map(b"".join, zip(repeat(_OPEN), map(str.encode, stamps), repeat(head),
                                  letters, repeat(b'","'), texts, repeat(_CLOSE))))
    return Lines(stamps, rows)


def _second_rows(module: str, column: Sequence[object], descs: Sequence[bytes]) -> Lines:
    """The ``SECOND_ROW`` rows of a module's records: ``column`` its field in each record
    (a time in MVT's form, else no row), ``descs`` each record's CSV description."""
    at = _macb_times(column)
    idx = list(compress(range(len(at)), at))
    if not idx:
        return NO_LINES
    stamps: list[str] = list(map(at.__getitem__, idx))  # type: ignore[arg-type]
    head = (f'","{csv_field(plugin(module))}","'
            f'{csv_field(writable(SECOND_ROW[module][1]))}","').encode()
    return Lines(stamps, list(map(b"".join, zip(
        repeat(_OPEN), map(str.encode, stamps), repeat(head), map(descs.__getitem__, idx),
        repeat(_CLOSE)))))


def _second_column(recs: Sequence[Record]) -> tuple[str, list[Scalar]] | None:
    """The module of ``recs`` and each one's ``SECOND_ROW`` field (None: no such module)."""
    second = SECOND_ROW.get(recs[0].module)
    if second is None:
        return None
    return recs[0].module, [r.data.get(second[0]) for r in recs]


def _with_second(lines: Lines | None, module: str, column: Sequence[object] | None,
                 descs: Sequence[bytes]) -> Lines | None:
    """``lines`` and the module's ``SECOND_ROW`` rows after them (none without one)."""
    if lines is None or column is None or module not in SECOND_ROW:
        return lines
    extra = _second_rows(module, column, descs)
    return lines + extra if len(extra) else lines


Chunk = tuple[bytes, Lines]


def render(recs: Sequence[Record]) -> tuple[bytes, Lines]:
    """The records' ``<module>.json`` text (``json_array`` of their ``event_dict``s) and
    their timeline rows (the timed ones, in their order; a ``MACB`` module's at the
    times of its fields)."""
    if not recs:
        return EMPTY, NO_LINES
    return _records(recs, b"[\n", b"\n]\n")


def _records(recs: Sequence[Record], first: bytes, last: bytes) -> Chunk:
    """The JSON items of ``recs`` (``first`` before them, ``,\n`` between, ``last``
    after) and their timeline rows; ``recs`` is not empty."""
    mods, stamps = [r.module for r in recs], [r.timestamp for r in recs]
    events, datas = [r.event for r in recs], [r.data for r in recs]
    times = mvt_times(stamps)
    if not _plain_keys(datas):
        return _render_each(recs, times, first, last)
    try:
        blob = _ENC_SORTED.encode_lines(datas)  # the descriptions, one a line
        tblob = _ENC.encode_lines(times)
    except REFUSED:
        return _render_each(recs, times, first, last)
    if recs[0].module in MACB:  # (its rows are made by ``_macb_lines``)
        if any(t is not None and "\n" in t for t in times):
            return _render_each(recs, times, first, last)
        descs = _csv_bytes(blob).split(b"\n")
        lines: Lines | None = _macb_lines(recs, descs)
    else:
        lines = _rows(mods, events, times, tblob, blob, _second_column(recs))
    if lines is None:
        return _render_each(recs, times, first, last)
    heads, _ = _heads(zip(mods, events, strict=True), False)
    # An item: ``{"timestamp":<time>`` + head + the fields' members after their "{", with
    # a comma (an empty object: just its "}"). Each line of ``blob`` starts with "{".
    members = (b"\n" + blob).replace(b"\n{}", b"\n}").replace(b"\n{", b"\n,").split(b"\n")
    items = b"".join(chain(chain.from_iterable(zip(
        chain((first,), repeat(b",\n")), repeat(_ITEM), tblob.split(b"\n"),
        _by_pair(heads, mods, events), members[1:-1])), (last,)))
    return items, lines


_PLAIN_NAME = re.compile(r'[^\\"\x00-\x1f]*')
_STRUCTS: dict[tuple[str, ...], type[msgspec.Struct]] = {}


def _struct_type(names: tuple[str, ...]) -> type[msgspec.Struct] | None:
    """A struct type whose fields are ``names`` in that order (encoded under those
    names), or None when a name is not one a struct may carry (a quote, a backslash, a
    control character: msgspec refuses them)."""
    got = _STRUCTS.get(names)
    if got is None:
        if not all(_PLAIN_NAME.fullmatch(k) for k in names):
            return None
        got = _STRUCTS[names] = msgspec.defstruct(
            "Fields", [(f"f{i}", object) for i in range(len(names))],
            rename={f"f{i}": k for i, k in enumerate(names)}, gc=False)
    return got


_HEADER = ("timestamp", "module", "event")


def _batch(b: Batch, first: bytes, last: bytes) -> Chunk:
    """``_records`` of a batch, read from its columns: each record's item and fields
    encoded by msgspec as structs (the header and the sorted field names; the fields
    alone), without a field dict or an event dict per record."""
    n = len(b.stamps)
    names = tuple(sorted(b.fields))
    columns = [b.fields[k] for k in names]
    if len(b.events) != n or any(len(c) != n for c in columns):  # (a module's bug)
        raise ValueError(f"batch of {b.module}: columns of unequal lengths")
    times = mvt_times(b.stamps)
    if not _HEADER_KEYS.isdisjoint(names) or b.module in MACB:
        return _records(b.records(), first, last)
    fields, item = _struct_type(names), _struct_type(_HEADER + names)
    if fields is None or item is None:
        return _records(b.records(), first, last)
    try:
        blob = _ENC.encode_lines(list(map(fields, *columns)) if names else [fields()] * n)
        tblob = _ENC.encode_lines(times)
        items = _ENC.encode_lines(list(map(item, times, repeat(b.module), b.events,
                                           *columns)))
    except REFUSED:
        return _records(b.records(), first, last)
    second = SECOND_ROW.get(b.module)
    column = b.fields.get(second[0]) if second else None
    lines = _rows(b.module, b.events, times, tblob, blob,
                  None if column is None else (b.module, column))
    if lines is None:
        return _records(b.records(), first, last)
    return comma_lines(first, items, last), lines


def _rows(mods: str | Sequence[str], events: Sequence[str], times: list[str | None],
          tblob: bytes, blob: bytes,
          second: tuple[str, Sequence[object]] | None = None) -> Lines | None:
    """The timeline rows of records given as columns: their module (one for all, or
    each's), events, MVT times (``tblob``: as JSON, one a line) and ``blob``, the JSON
    object of each one's fields, one a line; then, for a ``SECOND_ROW`` module, its
    second rows (``second``: the module and its field's column). None when a time holds
    a line break."""
    n = len(times)
    timed: list[str] = list(compress(times, times))  # type: ignore[arg-type]
    joined = "\n".join(timed)
    if joined.count("\n") != len(timed) - 1:  # a time with a line break inside
        return None
    _, heads = _heads([(mods, e) for e in set(events)] if isinstance(mods, str)
                      else zip(mods, events, strict=True))
    descs = _csv_bytes(blob).split(b"\n")
    descs.pop()
    if b"\\" not in tblob:  # no time needs an escape in JSON (a quote, a backslash, a
        # control character), nor then in the CSV: its JSON text, quoted, is its field
        heads = {p: h[1:] for p, h in heads.items()}
        stamps: list[bytes] = tblob.split(b"\n")
        stamps.pop()
        pieces: list[Iterable[bytes]] = [stamps]
    else:
        texts = csv_field("\n".join(t or "" for t in times)).encode().split(b"\n")
        pieces = [repeat(_OPEN, n), texts]
    pieces += [_by_pair(heads, mods, events), descs, repeat(_CLOSE, n)]
    if len(timed) < n:
        pieces = [compress(p, times) for p in pieces]
    lines = Lines(timed, list(map(b"".join, zip(*pieces, strict=True))))
    return lines if second is None else _with_second(lines, second[0], second[1], descs)


def _render_each(recs: Sequence[Record], times: Sequence[str | None], first: bytes,
                 last: bytes) -> Chunk:
    """``_records`` one record at a time, for the records the batch cannot take."""
    items: list[bytes] = []
    stamps: list[str] = []
    rows: list[bytes] = []
    descs: list[bytes] = []
    macb = recs[0].module in MACB
    heads, csv_heads = _heads(((r.module, r.event) for r in recs), not macb)
    for r, ts in zip(recs, times, strict=True):
        fields = enc_sorted(r.data)
        descs.append(csv_field(fields).encode())
        if not _HEADER_KEYS.isdisjoint(r.data):
            items.append(enc(event_dict(r)).encode())
        else:
            tail = "," + fields[1:] if len(fields) > 2 else "}"
            items.append(_ITEM + enc(ts).encode() + heads[r.module, r.event]
                         + tail.encode())
        if ts and not macb:
            stamps.append(ts)
            rows.append(b"".join((_OPEN, csv_field(writable(ts)).encode(),
                                  csv_heads[r.module, r.event], descs[-1], _CLOSE)))
    if macb:
        return first + b",\n".join(items) + last, _macb_lines(recs, descs)
    second = _second_column(recs)
    lines = Lines(stamps, rows)
    if second is not None:
        lines = _with_second(lines, second[0], second[1], descs) or lines
    return first + b",\n".join(items) + last, lines


def _chunks(recs: Sequence[Record], batches: Sequence[tuple[int, Batch]],
            ) -> list[Record | Batch | list[Record]]:
    """A module's records in their order: runs of records, and the batches among them."""
    out: list[Record | Batch | list[Record]] = []
    at = 0
    for before, b in batches:
        if before > at:
            out.append(list(recs[at:before]))
        out.append(b)
        at = before
    if at < len(recs):
        out.append(list(recs[at:]))
    return out


def _render_all(recs: Sequence[Record], batches: Sequence[tuple[int, Batch]] = (),
                ) -> tuple[bytes, Lines]:
    """``render`` of a module's records and batches, in their order."""
    chunks = _chunks(recs, batches)
    if not chunks:
        return EMPTY, NO_LINES
    texts: list[bytes] = []
    lines: list[Lines] = []
    for i, c in enumerate(chunks):
        first = b"[\n" if i == 0 else b",\n"
        last = b"\n]\n" if i == len(chunks) - 1 else b""
        text, ls = _batch(c, first, last) if isinstance(c, Batch) else _records(
            c, first, last)  # type: ignore[arg-type]
        texts.append(text)
        lines.append(ls)
    return (texts[0] if len(texts) == 1 else b"".join(texts),
            lines[0] if len(lines) == 1 else Lines(
                [s for ls in lines for s in ls.stamps], [r for ls in lines for r in ls.rows]))


def module_part(module: str, recs: Sequence[Record], detected: Sequence[Record] = (),
                batches: Sequence[tuple[int, Batch]] = ()) -> ModulePart:
    """Render one timeline module (``detected``: its records that carry a finding;
    ``batches``: records it gave as columns, each after the records before it)."""
    records, lines = _render_all(recs, batches)
    unique = list({id(r): r for r in detected}.values())  # a record with two findings
    # is listed once; by identity: equal records of two rows are two records
    det, det_lines = render(unique) if unique else (b"", NO_LINES)
    events = {key(r.module, r.timestamp, r.event): event_dict(r) for r in unique}
    return ModulePart(module, records, det, lines, det_lines, events)


def merge_parts(a: ModulePart, b: ModulePart) -> ModulePart:
    """Two parts of one module name (made by different modules, perhaps elsewhere)."""
    det = (join_arrays(a.detected, b.detected) if a.detected and b.detected
           else a.detected or b.detected)
    return ModulePart(a.module, join_arrays(a.records, b.records), det,
                      a.lines + b.lines, a.detected_lines + b.detected_lines,
                      {**a.events, **b.events})


def parts_of(records: Mapping[str, Sequence[Record]],
             detected: Mapping[str, Sequence[Record]],
             batches: Mapping[str, Sequence[tuple[int, Batch]]] | None = None,
             ) -> list[ModulePart]:
    """Render every module of a check, in the order the modules first recorded."""
    batches = batches or {}
    names = list(dict.fromkeys([*records, *batches, *detected]))
    return [module_part(m, records.get(m, ()), detected.get(m, ()), batches.get(m, ()))
            for m in names]
