"""The device-check framework: module isolation, evidence databases, MVT-style output."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import pickle
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.commands.common import finish, new_report
from spywall.device import CheckContext, FnModule, SchemaUnknown, iso_apple, iso_unix, run_modules
from spywall.device.base import ArtifactMissing, load_plist
from spywall.device.output import csv_text, parts_of, write_mvt_outputs
from spywall.device.sqlite import columns, open_evidence, require
from spywall.errors import FormatError
from spywall.iocs import Indicator, IocIndex
from spywall.limits import Limits
from spywall.report import ErrorEntry, Subject


def small_index() -> IocIndex:
    index = IocIndex()
    index.add([Indicator("domain", "evil.example", "domain-name:value", "TestWare", "t.stix2"),
               Indicator("process", "implantd", "process:name", "TestWare", "t.stix2")])
    return index


def ctx_for(evidence: object = None) -> CheckContext[object]:
    return CheckContext(evidence=evidence, index=small_index(), subject=Subject(path="dev"))


def _boom(_: CheckContext[object]) -> tuple[str, int, str]:
    raise sqlite3.DatabaseError("file is not a database")


def _drift(_: CheckContext[object]) -> tuple[str, int, str]:
    raise SchemaUnknown("no table 'message'")


def _sqlite_drift(_: CheckContext[object]) -> tuple[str, int, str]:
    raise sqlite3.OperationalError("no such column: ZHASPROCESS")


def _good(ctx: CheckContext[object]) -> tuple[str, int, str]:
    rec = ctx.record("good", iso_unix(1_700_000_000), "visit", {"url": "https://a.evil.example/x"})
    ctx.check("url", "https://a.evil.example/x", rec=rec, path="dev!/h.db", what="URL")
    ctx.check("process", "launchd", rec=rec, path="dev!/h.db", what="process")
    return ("ok", 1, "")


def test_one_module_failing_does_not_stop_the_others() -> None:
    ctx = ctx_for()
    runs = run_modules([FnModule("bad", "d", _boom), FnModule("drift", "d", _drift),
                        FnModule("sql", "d", _sqlite_drift), FnModule("good", "d", _good)], ctx)
    assert [(r.name, r.status) for r in runs] == [
        ("bad", "error"), ("drift", "schema-unknown"), ("sql", "schema-unknown"), ("good", "ok")]
    assert "not a database" in runs[0].message
    assert [e.code for e in ctx.subject.errors] == ["malformed", "schema", "schema"]
    assert [f.indicator.value for f in ctx.subject.findings if f.indicator] == ["evil.example"]
    assert [f.location.module for f in ctx.subject.findings if f.indicator] == ["good"]
    assert ctx.detected["good"][0].data["url"] == "https://a.evil.example/x"
    # fail closed: an artifact present but not read is not clean (one finding per module)
    unread = [f for f in ctx.subject.findings if f.rule == "incomplete-examination"]
    assert [(f.location.module, f.detail["module"]) for f in unread] == [
        ("bad", "bad"), ("drift", "drift"), ("sql", "sql")]
    assert "not a database" in unread[0].message
    assert "no such column: ZHASPROCESS" in unread[2].message


def _partly(ctx: CheckContext[object]) -> tuple[str, int, str]:
    """Reads two artifacts, one of them broken, and goes on: the broken one is unread."""
    ctx.subject.errors.append(ErrorEntry(path="dev!/b.db", code="malformed",
                                         message="partly: b.db is not a database"))
    ctx.scanned([ErrorEntry(path="dev!/att.gif", code="truncated", message="engine's own")])
    return ("ok", 1, "")


def test_unread_evidence_is_incomplete_unless_allowed() -> None:
    """A module that goes past an artifact it could not read leaves the check incomplete;
    an attachment the scan engine examined (and judged itself) does not; missing data
    does not; ``allow_incomplete`` keeps them as error entries only."""
    def missing(_: CheckContext[object]) -> tuple[str, int, str]:
        raise ArtifactMissing("sms.db listed, not stored")

    for allow, expected in ((False, [("partly", "dev!/b.db")]), (True, [])):
        ctx = CheckContext(evidence=None, index=small_index(), subject=Subject(path="dev"),
                           limits=Limits(allow_incomplete=allow))
        runs = run_modules([FnModule("partly", "d", _partly),
                            FnModule("missing", "d", missing)], ctx)
        assert [r.status for r in runs] == ["ok", "skipped"]
        assert [(f.location.module, f.path) for f in ctx.subject.findings
                if f.rule == "incomplete-examination"] == expected
        assert [e.code for e in ctx.subject.errors] == ["malformed", "truncated"]


def test_programming_errors_are_not_swallowed() -> None:
    def bug(_: CheckContext[object]) -> tuple[str, int, str]:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_modules([FnModule("bug", "d", bug)], ctx_for())


def test_timestamps() -> None:
    assert iso_unix(1_700_000_000) == "2023-11-14T22:13:20Z"
    assert iso_apple(700_000_000) == "2023-03-08T20:26:40Z"
    assert iso_apple(700_000_000 * 10**9) == "2023-03-08T20:26:40Z"
    assert iso_unix(5) is None
    assert iso_apple(None) is None
    assert iso_apple(0) is None


def _hash_tree(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


def _wal_db(folder: Path) -> tuple[Path, sqlite3.Connection]:
    db = folder / "a.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t(x TEXT)")
    conn.execute("INSERT INTO t VALUES ('committed-in-wal')")
    conn.commit()
    return db, conn


def test_wal_content_seen_and_evidence_unchanged(tmp_path: Path) -> None:
    db, writer = _wal_db(tmp_path)
    before = _hash_tree(tmp_path)
    with open_evidence(db) as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [("committed-in-wal",)]
        assert columns(conn, "t") == {"x"}
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("INSERT INTO t VALUES ('no')")
    assert _hash_tree(tmp_path) == before  # before the writer closes (closing checkpoints)
    assert set(before) == {"a.db", "a.db-wal", "a.db-shm"}
    writer.close()


def test_immutable_open_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    c = sqlite3.connect(db)
    c.execute("CREATE TABLE message(ROWID INTEGER, text TEXT)")
    c.commit()
    c.close()
    before = _hash_tree(tmp_path)
    with open_evidence(db) as conn:
        require(conn, "message", ["ROWID", "text"])
        with pytest.raises(SchemaUnknown, match="lacks column"):
            require(conn, "message", ["ROWID", "attributedBody"])
        with pytest.raises(SchemaUnknown, match="no table"):
            require(conn, "handle", ["id"])
    assert _hash_tree(tmp_path) == before


def test_wal_copy_leaves_files_identical(tmp_path: Path) -> None:
    db, writer = _wal_db(tmp_path)
    before = _hash_tree(tmp_path)
    with open_evidence(db) as conn:
        conn.execute("SELECT count(*) FROM t").fetchall()
    assert _hash_tree(tmp_path) == before
    writer.close()


def test_plist_errors_are_format_errors() -> None:
    for bad in (b"bplist00\xff\xff", b"<?xml version='1.0'?><plist><dict><key>", b"\x00" * 40):
        with pytest.raises(FormatError):
            load_plist(bad)


def test_mvt_outputs(tmp_path: Path) -> None:
    ctx = ctx_for()
    report = new_report("check-test")
    report.modules = run_modules([FnModule("good", "d", _good)], ctx)
    report.subjects = [ctx.subject]
    finish(report)
    files = write_mvt_outputs(report, parts_of(ctx.records, ctx.detected), tmp_path / "out",
                              {"dev/h.db": "00" * 32})
    names = {p.name for p in files}
    assert {"alerts.json", "timeline.csv", "good.json", "good_detected.json",
            "info.json", "report.json"} <= names
    alerts = json.loads((tmp_path / "out/alerts.json").read_text())
    assert alerts[0]["level"] == "CRITICAL"
    assert alerts[0]["matched_indicator"]["name"] == "TestWare"
    assert alerts[0]["event"]["url"] == "https://a.evil.example/x"
    rows = list(csv.reader((tmp_path / "out/timeline.csv").open()))
    assert rows[0] == ["UTC Timestamp", "Plugin", "Event", "Description"]
    assert rows[1][:3] == ["2023-11-14 22:13:20.000000", "Good", "visit"]  # as MVT writes
    info = json.loads((tmp_path / "out/info.json").read_text())
    assert info["hashes"] == [{"file_path": "dev/h.db", "sha256": "00" * 32}]
    assert info["modules"][0]["status"] == "ok"


_FIELD = st.text(alphabet=st.sampled_from(['a', '"', "\\", ",", "\r", "\n", "\x00", "\x01",
                                           "ü", " ", "\t", "'"]), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_FIELD, min_size=4, max_size=4), min_size=1, max_size=8))
def test_timeline_csv_text_is_what_the_csv_module_writes(rows: list[list[str]]) -> None:
    """The fast timeline writer produces the csv module's bytes in MVT's dialect, also
    when a field holds one of its sentinel characters (it falls back then)."""
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_ALL, escapechar="\\").writerows(rows)
    assert csv_text(rows) == buf.getvalue()
    back = list(csv.reader(io.StringIO(csv_text(rows), newline=""), escapechar="\\"))
    assert back == rows


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), keys
    return dict(pairs)


_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                   st.floats(allow_nan=False), st.text(max_size=8))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["sms", "safari_history", 'odd"mod']),
                          st.one_of(st.none(), st.just("2023-11-14T22:13:20Z"),
                                    st.text(max_size=5)),
                          st.sampled_from(["visit", "sms", "événement"]),
                          st.dictionaries(st.sampled_from(["url", "event", "timestamp", "module",
                                                           "a", "ü", "rowid"]), _SCALAR,
                                          max_size=4)),
                max_size=6))
def test_encoded_events_are_the_event_dicts(recs: list[tuple[str, str | None, str,
                                                               dict[str, object]]]) -> None:
    """A module's JSON text, spliced from columns, reads back as its records' event dicts
    (each as encoded one at a time, no member named twice); its timeline rows are what
    the csv module writes for (MVT time, Plugin, event, the sorted fields as JSON)."""
    from spywall.device.base import Record
    from spywall.device.timeline import (
        Lines,
        enc,
        enc_sorted,
        event_dict,
        mvt_time,
        plugin,
        render,
    )

    records = [Record(*r) for r in recs]  # type: ignore[arg-type]
    text, lines = render(records)
    items = json.loads(text, object_pairs_hook=_unique_keys)
    assert items == [json.loads(enc(event_dict(r))) for r in records]
    assert text.count(b"\n") == (len(records) + 2 if records else 1)  # an item a line
    rows = [[mvt_time(r.timestamp), plugin(r.module), r.event, enc_sorted(r.data)]
            for r in records if r.timestamp]  # (in record order: the folder sorts them)
    assert list(zip(lines.stamps, lines.rows, strict=True)) == [
        (row[0], csv_text([row]).encode()) for row in rows]
    back = list(csv.reader(io.StringIO(b"".join(Lines.merged([lines])).decode(), newline=""),
                           escapechar="\\"))
    assert back == sorted(rows, key=lambda row: row[0])  # (stable) and read back as written
    assert pickle.loads(pickle.dumps(lines)) == lines  # as a worker sends them


def test_result_json_survives_values_the_encoder_refuses() -> None:
    from spywall.device.timeline import enc, enc_sorted, json_array

    value = {"big": 1 << 80, "text": "ü", "b": 1}
    assert json.loads(enc(value)) == value
    assert enc_sorted(value).index('"b"') < enc_sorted(value).index('"big"')
    odd: dict[object, object] = {7: "int key", "s": "lone \ud800 surrogate", "b": b"x"}
    for text in (enc(odd), enc_sorted(odd), json_array([odd, value]).decode()):
        text.encode("utf-8")  # always writable as UTF-8
        back = json.loads(text)
        first = back[0] if isinstance(back, list) else back
        assert first["7"] == "int key"
        assert first["s"] == "lone \ud800 surrogate"


def _oracle(v: float | int) -> str:
    from datetime import UTC, datetime

    text = datetime.fromtimestamp(v, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text.removesuffix(".000000") + "Z"


def test_iso_unix_is_datetime_with_microseconds() -> None:
    import random

    rnd = random.Random(3)
    values: list[float | int] = [rnd.uniform(631_152_000, 4_102_444_800) for _ in range(2000)]
    values += [rnd.randrange(631_152_000, 4_102_444_800) for _ in range(500)]
    values += [631_152_000, 4_102_444_800, 951_782_400, 951_868_799.999, 1_700_000_000,
               1_700_000_000.5, 1_700_000_000.0000004, 1_700_000_000.9999996]
    for v in values:
        assert iso_unix(v) == _oracle(v), v
    assert iso_unix(float("nan")) is None
    assert iso_unix(631_151_999) is None


def test_iso_apple_nanoseconds_exact() -> None:
    import random

    rnd = random.Random(5)
    for _ in range(2000):
        ns = rnd.randrange(10**17, 2 * 10**18)
        whole, rest = divmod(ns, 10**9)
        micro = f".{rest // 1000:06d}" if rest // 1000 else ""
        want = _oracle(whole + 978_307_200).removesuffix("Z") + micro + "Z"
        assert iso_apple(ns) == want, ns
    for _ in range(500):
        secs = rnd.uniform(1e8, 9e8)
        assert iso_apple(secs) == _oracle(secs + 978_307_200), secs


def _iso_apple_reference(value: object) -> str | None:
    """The plain definition: Apple-epoch seconds, or nanoseconds past 1e12 (an integer's
    microseconds exact), as datetime writes them when the time lies in 1990..2100."""
    import math
    from datetime import UTC, datetime, timedelta

    if type(value) is int:
        if value == 0:
            return None
        whole, micro = value, 0
        if abs(value) > 10**12:
            whole, ns = divmod(value, 10**9)
            micro = ns // 1000
        unix = whole + 978_307_200
        if not 631_152_000 <= unix <= 4_102_444_800:
            return None
        when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=unix, microseconds=micro)
        return when.strftime("%Y-%m-%dT%H:%M:%S.%f").removesuffix(".000000") + "Z"
    if type(value) is not float:
        return None
    v = float(value)
    if not math.isfinite(v) or v == 0:
        return None
    if abs(v) > 1e12:
        v /= 1e9
    unix_f = v + 978_307_200
    if not 631_152_000 <= unix_f <= 4_102_444_800:
        return None
    return _oracle(unix_f)


@given(st.one_of(st.integers(min_value=-(10**30), max_value=10**30),
                 st.integers(min_value=-400_000_000, max_value=4_000_000_000),
                 st.integers(min_value=-(4 * 10**18), max_value=4 * 10**18),
                 st.floats(allow_nan=True, allow_infinity=True),
                 st.floats(min_value=-4e8, max_value=4e9),
                 st.none(), st.booleans(), st.text(max_size=3)))
def test_iso_apple_matches_its_definition(value: object) -> None:
    assert iso_apple(value) == _iso_apple_reference(value)  # type: ignore[arg-type]


URLS = ["https://a.evil.example/x", "http://EVIL.example./p?q=1", "evil.example/path",
        "https://user@evil.example:8443/", "https://ok.example/r?to=https://evil.example/",
        "https://bad.example/exact/path", "bad.example/exact/path/", "HTTPS://bad.example/exact/path",
        "https://BAD.Example./exact/path", " bad.example/exact/path",
        "https://[2001:db8::1]/", "http://10.1.2.3:80/x", "https://ok.example#frag",
        "  https://evil.example  ", "x" * 9000, "https://ok.example/" + "y" * 9000, "",
        "https://ok@x@evil.example/", "evil.example@ok.example/", "ok.example/@evil.example"]


@pytest.mark.parametrize("with_urls", [False, True])
def test_memoised_url_lookup_is_match_url(with_urls: bool) -> None:
    index = small_index()
    extra = [Indicator("ipv4", "10.1.2.3", "ipv4-addr:value", "TestWare", "t.stix2"),
             Indicator("ipv6", "2001:db8::1", "ipv6-addr:value", "TestWare", "t.stix2")]
    if with_urls:
        extra.append(Indicator("url", "bad.example/exact/path", "url:value", "TestWare",
                               "t.stix2"))
    index.add(extra)
    ctx = CheckContext(evidence=None, index=index, subject=Subject(path="dev"))
    assert ctx.lookup.url_exact is with_urls
    for url in URLS * 2:  # twice: the second round is answered from the memo
        assert ctx.lookup.match("url", url) == index.match("url", url), url
    short = [u for u in URLS if len(u) < 1000]
    batch = CheckContext(evidence=None, index=index, subject=Subject(path="dev")).lookup
    assert batch.urls(short) == [index.match("url", u) for u in short]
    assert batch.urls(URLS) == [index.match("url", u) for u in URLS]


_URL_PART = st.sampled_from(["https://", "http://", "://", "a.evil.example", "evil.example",
                             "ok.example", "user@", "@", "/", "?", "#", ":8443", " ", ".",
                             "EVIL.example", "[2001:db8::1]", "10.1.2.3", "x", "\t"])


@pytest.mark.parametrize("with_urls", [False, True])
@settings(max_examples=300, deadline=None)
@given(urls=st.lists(st.lists(_URL_PART, max_size=8).map("".join), max_size=12))
def test_batched_url_lookup_is_one_by_one(with_urls: bool, urls: list[str]) -> None:
    """The column-at-once host cut (one regex over the joined URLs) gives what ``url``
    gives for each value, newlines and odd authorities included; with exact URL
    indicators, the host-part filter never skips one that ``match`` finds."""
    index = small_index()
    index.add([Indicator("ipv4", "10.1.2.3", "ipv4-addr:value", "TestWare", "t.stix2")])
    if with_urls:
        index.add([Indicator("url", u, "url:value", "TestWare", "t.stix2") for u in (
            "evil.example/x", "https://ok.example/", "http://EVIL.example./?x",
            "user@evil.example:8443/x", "a.evil.example#x")])
    one = CheckContext(evidence=None, index=index, subject=Subject(path="dev")).lookup
    many = CheckContext(evidence=None, index=index, subject=Subject(path="dev")).lookup
    assert many.urls(urls) == [one.url(u) for u in urls]
    assert [one.url(u) for u in urls] == [index.match("url", u) for u in urls]
    broken = [*urls, "https://a.evil.example/\nx"]  # a newline: one by one instead
    assert many.urls(broken) == [one.url(u) for u in broken]


def _imports(path: object) -> set[str]:
    import ast
    from pathlib import Path

    tree = ast.parse(Path(str(path)).read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_layering_of_the_device_check_code() -> None:
    """Domain modules (ios, android, device) import nothing from the commands; in device/,
    imports run one way: runner -> parallel/timeline -> base, output -> timeline."""
    from pathlib import Path

    import spywall

    root = Path(spywall.__file__).parent
    for area in ("ios", "android", "device"):
        for path in (root / area).glob("*.py"):
            bad = {m for m in _imports(path) if m.startswith("spywall.commands")}
            assert not bad, f"{path.name} imports {bad}"
    dev = {p.stem: {m for m in _imports(p) if m.startswith("spywall.device.")}
           for p in (root / "device").glob("*.py")}
    assert dev["base"] == set()
    assert "spywall.device.runner" not in dev["parallel"] | dev["output"] | dev["timeline"]
    assert "spywall.device.parallel" not in dev["output"] | dev["timeline"]
    assert dev["timeline"] == {"spywall.device.base"}


def test_mvt_time_and_plugin_names() -> None:
    from spywall.device.output import mvt_time, plugin

    assert mvt_time("2023-06-01T06:13:20Z") == "2023-06-01 06:13:20.000000"
    assert mvt_time("2023-06-01T06:13:20.5Z") == "2023-06-01 06:13:20.500000"
    assert mvt_time("2023-06-01T06:13:20.123456Z") == "2023-06-01 06:13:20.123456"
    assert mvt_time("2024-01-13T21:14:52") == "2024-01-13 21:14:52.000000"  # device local
    assert mvt_time("2023-06-01T06:13:20+00:00") == "2023-06-01 06:13:20.000000"
    assert mvt_time("yesterday") == "yesterday"
    assert plugin("sms") == "SMS"
    assert plugin("safari_history") == "SafariHistory"
    assert plugin("tcc") == "TCC"


def test_readme_lists_every_module() -> None:
    from pathlib import Path

    from spywall.android.check import MODULES as ANDROID
    from spywall.ios.check import DUMP_MODULES, MODULES
    from spywall.ios.sysdiagnose_check import MODULES as SYSDIAGNOSE

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    for m in (*MODULES, *DUMP_MODULES, *ANDROID, *SYSDIAGNOSE):
        assert f"| `{m.name}` | {m.description} |" in readme, m.name


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.integers(min_value=-10, max_value=26 * 10**16),   # (datetime: year 9999)
                 st.integers(min_value=12_600_000_000_000_000, max_value=15_700_000_000_000_000),
                 st.floats(allow_nan=True, allow_infinity=True), st.none(), st.booleans(),
                 st.text(max_size=3)))
def test_iso_chrome_is_exact(value: object) -> None:
    """Chromium's microseconds since 1601 against datetime arithmetic: every microsecond
    of an integer kept (a float conversion lost the last one), absent or implausible
    values None, as ``iso_unix`` bounds them."""
    from datetime import UTC, datetime, timedelta

    from spywall.device.base import iso_chrome, iso_unix

    if value.__class__ is int and value > 0:  # type: ignore[operator]
        moment = datetime(1601, 1, 1, tzinfo=UTC) + timedelta(microseconds=value)  # type: ignore[arg-type]
        unix = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1)
        want = iso_unix(unix)
        if want is not None:
            text = moment.strftime("%Y-%m-%dT%H:%M:%S")
            want = text + (f".{moment.microsecond:06d}" if moment.microsecond else "") + "Z"
        assert iso_chrome(value) == want
    elif value.__class__ is float:
        assert iso_chrome(value) == (iso_unix(value / 1e6 - 11_644_473_600)  # type: ignore[operator]
                                     if value > 0 else None)  # type: ignore[operator]
    else:
        assert iso_chrome(value) is None


_TIMES = st.sampled_from(["2023-06-01T06:13:20Z", "2023-06-01T06:13:20.123456Z", None, "",
                          "2024-01-13T21:14:52", "2023-06-01X06:13:20Z", "20TT-06-01T06:13:20Z",
                          "2023-06-01T06:13:20ZZ", "2023-06-01T06:1\n:20Z",
                          "2023-06-01T06:13:20.12345Z", "1999-12-31T23:59:59.000001Z"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_TIMES, max_size=40), st.integers(min_value=0, max_value=200))
def test_times_of_a_column_are_each_times_mvt_form(picked: list[str | None], common: int) -> None:
    """The whole-column rewrite of times gives ``mvt_time`` of each (None and empty kept),
    whatever the mix of forms: runs of the common form with odd ones among them."""
    from spywall.device.timeline import mvt_time, mvt_times

    for stamps in (picked, ["2023-06-01T06:13:20Z"] * common + picked,
                   picked + ["2023-06-01T06:13:20.000001Z"] * common):
        assert mvt_times(stamps) == [mvt_time(t) if t else t for t in stamps]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([("rowid", "url"), ("a", "ü", "event"), ("q\"uote",), ()]),
       st.lists(st.tuples(st.one_of(st.none(), st.just("2023-11-14T22:13:20Z"),
                                    st.just("2023-11-14T22:13:20.000500Z"),
                                    st.text(max_size=5)),
                          st.sampled_from(["visit", "sms", "événement"]),
                          st.lists(_SCALAR, min_size=4, max_size=4)),
                max_size=6),
       st.integers(min_value=0, max_value=3))
def test_a_batch_renders_as_its_records(names: tuple[str, ...],
                                        rows: list[tuple[str | None, str, list[object]]],
                                        before: int) -> None:
    """A module's records given as columns (``Batch``) make the same JSON text, timeline
    rows and part as the same records given one by one, among records added before and
    after it; ``Batch.records`` are those records."""
    from spywall.device.base import Batch, Record
    from spywall.device.timeline import module_part

    batch = Batch("sms", [r[0] for r in rows], [r[1] for r in rows],
                  {k: [r[2][i] for r in rows] for i, k in enumerate(names)})  # type: ignore[misc]
    recs = batch.records()
    assert [(r.timestamp, r.event, r.data) for r in recs] == [
        (ts, ev, dict(zip(names, values, strict=False))) for ts, ev, values in rows]
    around = [Record("sms", "2023-11-14T22:13:20Z", "handle", {"handle": f"h{i}"})
              for i in range(3)]
    one_by_one = module_part("sms", around[:before] + recs + around[before:], recs[:1])
    as_columns = module_part("sms", around[:before] + around[before:], recs[:1],
                             [(min(before, 3), batch)] if rows else [])
    assert as_columns == one_by_one
    assert one_by_one.records.count(b"\n") == len(around) + len(recs) + 2


def test_batches_keep_the_order_modules_recorded_in() -> None:
    """With the result folder rendered, a module whose records are a batch keeps its
    place among the modules (the timeline orders equal times by it); without, the batch
    is made into records."""
    from spywall.device.base import Batch

    for as_columns in (False, True):
        ctx: CheckContext[None] = CheckContext(None, IocIndex.load(()), Subject(path="x"))
        ctx.columns = as_columns
        ctx.record("a", None, "e", {})
        ctx.batch(Batch("b", ["2023-11-14T22:13:20Z"], ["e"], {"x": [1]}))
        ctx.record("c", None, "e", {})
        assert list(ctx.records) == ["a", "b", "c"]
        assert ctx.count("b") == 1
        assert len(ctx.records["b"]) == (0 if as_columns else 1)
