"""check-ios on a dump: the iOS versions the phone ran (MVT's version_history from
analyticsd's journals, analytics_ios_versions from keychain analytics events): times
against an independent conversion, journals and events that are not what iOS writes,
bounded reading, versions by build, and the result folder's files."""

from __future__ import annotations

import json
import plistlib
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.cli import main
from spywall.iocs import IocIndex
from spywall.ios import releases
from spywall.ios.check import check_dump
from spywall.ios.versions import MAX_HEADER, parse_header
from spywall.samples.ios import T0, apple, sqlite_bytes
from spywall.samples.ios_fs import ANALYTICS_BUILDS, JOURNALS, DumpSpec, put_file, write_dump

ANALYTICSD = "private/var/db/analyticsd"


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load(())


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dump(tmp_path_factory.mktemp("versions") / "d", DumpSpec(prefix=""))


def header(stamp: str, version: str = "iPhone OS 17.0 (21A329)") -> bytes:
    return json.dumps({"timestamp": stamp, "os_version": version}).encode() + b"\n{}\n"


def test_header_times_to_utc() -> None:
    plus2 = datetime(2023, 6, 1, 2, 0, 4, 370_000, tzinfo=timezone(timedelta(hours=2)))
    want = plus2.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert parse_header(header("2023-06-01 02:00:04.37 +0200")) == (
        want, "iPhone OS 17.0 (21A329)")
    assert parse_header(header("2023-06-01 17:00:00.00 -0700"))[0] == "2023-06-02T00:00:00Z"


@pytest.mark.parametrize(("data", "why"), [
    (b"not json\n", "not JSON"),
    (b"[1, 2]\n", "not a JSON object"),
    (b'{"timestamp": "2023-06-01 02:00:04.37 +0200"}\n', "no timestamp and os_version"),
    (b'{"timestamp": 5, "os_version": "x"}\n', "no timestamp and os_version"),
    (header("yesterday"), "is not a time"),
    (header("2023-06-01 02:00:04 +0200"), "is not a time"),
    (b"", "not JSON"),
])
def test_bad_headers_say_why(data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_header(data)


def test_journals_of_the_dump(dump: Path, index: IocIndex) -> None:
    out = check_dump(dump, index, index.sources)
    mods = {m.name: (m.status, m.records) for m in out.report.modules}
    assert mods["version_history"] == ("ok", len(JOURNALS))
    recs = out.ctx.records["version_history"]
    want = sorted((datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f %z").astimezone(UTC), v)
                  for _, stamp, v in JOURNALS)
    assert [r.data for r in recs] == [{"os_version": v} for _, v in want]
    assert [r.timestamp for r in recs] == [
        w.strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z") for w, _ in want]
    assert all(r.event == "ios_version" for r in recs)


def test_a_bad_journal_among_good_ones(tmp_path: Path, index: IocIndex) -> None:
    folder = tmp_path / ANALYTICSD
    put_file(folder / "Analytics-Journal-2023-06-02-020000.ips", header(
        "2023-06-02 02:00:00.00 +0000", "iPhone OS 16.5.1 (20F75)"))
    put_file(folder / "Analytics-Journal-2023-06-03-020000.ips", b"\x00\xff garbage")
    out = check_dump(tmp_path, index, index.sources)
    run = next(m for m in out.report.modules if m.name == "version_history")
    assert (run.status, run.records, run.message) == ("ok", 1, "1 journal(s) unreadable")
    (err,) = [e for e in out.report.subjects[0].errors if "version_history" in e.message]
    assert err.path.endswith("Analytics-Journal-2023-06-03-020000.ips")
    assert out.report.summary.errors >= 1  # never reported as examined completely


def test_only_bad_journals_is_an_error_and_reading_is_bounded(tmp_path: Path,
                                                             index: IocIndex) -> None:
    folder = tmp_path / ANALYTICSD
    put_file(folder / "Analytics-Journal-a.ips", b'{"timestamp": "' + b"9" * (2 * MAX_HEADER))
    out = check_dump(tmp_path, index, index.sources)
    run = next(m for m in out.report.modules if m.name == "version_history")
    assert run.status == "error"
    assert run.message.startswith("no journal header could be read: Analytics-Journal-a.ips")


def test_absent_journals_skip(tmp_path: Path, index: IocIndex) -> None:
    put_file(tmp_path / ANALYTICSD / "Analytics-Day-1.ips", b"{}\n")
    out = check_dump(tmp_path, index, index.sources)
    run = next(m for m in out.report.modules if m.name == "version_history")
    assert run.status == "skipped"


def test_result_folder(dump: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["check-ios", str(dump), "-q", "-o", str(out), "-j", "1",
                 "-m", "version_history"]) == 0
    recs = json.loads((out / "ios_version_history.json").read_text(encoding="utf-8"))
    assert [r["os_version"] for r in recs] == [v for _, _, v in JOURNALS]
    assert recs[0]["timestamp"] == "2023-05-20 00:00:01.000000"
    assert '"IOSVersionHistory","ios_version"' in (out / "timeline.csv").read_text(
        encoding="utf-8")


# -- analytics_ios_versions -----------------------------------------------------------------

KEYCHAIN_DB = "private/var/Keychains/Analytics/security_analytics.db"


def test_first_time_each_build_appears(dump: Path, index: IocIndex) -> None:
    out = check_dump(dump, index, index.sources)
    first: dict[str, int] = {}
    for at, build in ANALYTICS_BUILDS:
        first[build] = min(at, first.get(build, at))
    want = sorted((datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), b)
                  for b, at in first.items())
    recs = out.ctx.records["analytics_ios_versions"]
    assert [(r.timestamp, r.data["build"]) for r in recs] == want
    # 20F66 is the dump's own build (SystemVersion.plist: 16.5); 20E252 is not known
    assert {r.data["build"]: r.data["version"] for r in recs} == {"20F66": "16.5",
                                                                   "20E252": ""}
    assert all(r.event == "analytics_ios_version" for r in recs)


def test_versions_from_the_release_list(dump: Path, tmp_path: Path) -> None:
    """The release list refreshed beside the indicator files a check loads (``iocs
    update --dest DIR``, then ``--iocs DIR``) names the builds it knows."""
    known = releases.Releases("2099-01-01", "test", [releases.Release("16.4.1", "", "20e252")])
    (tmp_path / releases.FILENAME).write_bytes(msgspec.json.encode(known))
    bundled = Path(releases.__file__).parent.parent / "data/iocs/amnesty_pegasus.stix2"
    (tmp_path / bundled.name).write_bytes(bundled.read_bytes())
    index = IocIndex.load([tmp_path])
    out = check_dump(dump, index, index.sources)
    assert {r.data["build"]: r.data["version"]
            for r in out.ctx.records["analytics_ios_versions"]}["20E252"] == "16.4.1"


def test_builds_that_are_not_builds(tmp_path: Path, index: IocIndex) -> None:
    """Hostile or odd values: a build that is not build-shaped, no time, a NULL plist, a
    text time; each ignored, counted when it is a build value."""
    def fill(c: sqlite3.Connection) -> None:
        rows = [(apple(T0), {"build": "20F66\x1b[31m"}), (None, {"build": "20G75"}),
                ("later", {"build": "20G75"}), (apple(T0 + 9), {"build": "21A329"}),
                (apple(T0 + 5), None)]
        for stamp, ev in rows:
            c.execute("INSERT INTO all_events (timestamp, data) VALUES (?, ?)",
                      (stamp, plistlib.dumps(ev, fmt=plistlib.FMT_BINARY) if ev else None))

    data, _ = sqlite_bytes("CREATE TABLE all_events (id INTEGER PRIMARY KEY, timestamp "
                           "REAL, data BLOB);", fill)
    put_file(tmp_path / KEYCHAIN_DB, data)
    (tmp_path / "private/var/mobile").mkdir()
    out = check_dump(tmp_path, index, index.sources)
    run = next(m for m in out.report.modules if m.name == "analytics_ios_versions")
    assert (run.status, run.records) == ("ok", 1)
    assert "1 event(s) with a build that is not one" in run.message
    assert [r.data["build"] for r in out.ctx.records["analytics_ios_versions"]] == ["21A329"]


def test_no_analytics_database_skips(tmp_path: Path, index: IocIndex) -> None:
    put_file(tmp_path / "private/var/mobile/Library/x", b"")
    out = check_dump(tmp_path, index, index.sources)
    assert next(m for m in out.report.modules
                if m.name == "analytics_ios_versions").status == "skipped"


def test_analytics_result_folder(dump: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["check-ios", str(dump), "-q", "-o", str(out), "-j", "1",
                 "-m", "analytics_ios_versions"]) == 0
    recs = json.loads((out / "analytics_ios_versions.json").read_text(encoding="utf-8"))
    assert [(r["build"], r["version"]) for r in recs] == [("20E252", ""), ("20F66", "16.5")]
    assert '"AnalyticsIOSVersions","analytics_ios_version"' in (
        out / "timeline.csv").read_text(encoding="utf-8")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.builds(
    lambda stamp, version: header(stamp, version), st.text(max_size=40), st.text(max_size=40)))
def test_any_header_is_read_or_refused(data: bytes) -> None:
    try:
        when, version = parse_header(data)
    except ValueError:
        return
    assert when is None or when.endswith("Z")
    assert isinstance(version, str)
    assert len(version) <= 1024
