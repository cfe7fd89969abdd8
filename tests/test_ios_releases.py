"""The list of current iOS releases behind ``ios-outdated``: bundled, dated, refreshed
from Apple's release feed by ``spywall iocs update``."""

from __future__ import annotations

import json
import plistlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spywall.iocs import IocIndex
from spywall.ios import releases
from spywall.ios.check import check_backup
from spywall.samples.ios import BackupSpec, write_backup

# Apple's feed as its items look: release titles with the build, betas and other OSes.
FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Releases - Apple Developer</title>
<item><title>iOS 27.0 beta 2 (24A5250f)</title>
<pubDate>Mon, 22 Jun 2026 10:00:00 PDT</pubDate></item>
<item><title>iOS 26.2 (23C55)</title><pubDate>Fri, 12 Dec 2025 10:00:00 PST</pubDate></item>
<item><title>macOS 26.2 (25C56)</title><pubDate>Fri, 12 Dec 2025 10:00:00 PST</pubDate></item>
<item><title><![CDATA[iOS 18.7.3 (22H217)]]></title><pubDate>junk</pubDate></item>
<item><title>iOS 26.2 RC (23C52)</title><pubDate>Tue, 02 Dec 2025 10:00:00 PST</pubDate></item>
</channel></rss>"""


def test_parse_feed_keeps_releases_only() -> None:
    got = releases.parse_feed(FEED)
    assert got == [releases.Release("26.2", "2025-12-12", "23C55"),
                   releases.Release("18.7.3", "", "22H217")]


def test_bundled_list_is_valid_and_dated() -> None:
    known = releases.current(Path("/nonexistent"))
    assert known.updated >= "2025-11-03"
    datetime.strptime(known.updated, "%Y-%m-%d")
    latest = known.latest()
    assert latest is not None
    assert releases.version_tuple(latest.version) >= (26, 1)


def test_refreshed_list_wins_when_newer(tmp_path: Path) -> None:
    data = releases.refreshed(FEED, datetime(2026, 12, 7, tzinfo=UTC))
    (tmp_path / releases.FILENAME).write_bytes(data)
    fresh = releases.current(tmp_path)
    assert fresh.updated == "2026-12-07"
    assert fresh.latest() == releases.Release("26.2", "2025-12-12", "23C55")
    assert {r.version for r in fresh.releases} >= {"26.1", "26.2", "18.7.3"}  # merged
    old = json.loads(data)
    old["updated"] = "2000-01-01"
    (tmp_path / releases.FILENAME).write_text(json.dumps(old))
    assert releases.current(tmp_path).updated != "2000-01-01"  # older: the bundled one
    (tmp_path / releases.FILENAME).write_text("{not json")
    assert releases.current(tmp_path).updated != "2000-01-01"
    with pytest.raises(ValueError, match="no iOS release"):
        releases.refreshed("<rss></rss>")


def test_outdated_message_names_the_list_date(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    index = IocIndex.load(())
    root = write_backup(tmp_path / "b", BackupSpec(planted=False, ios_version="26.1"))
    out = check_backup(root, index, index.sources)
    assert not [f for f in out.report.all_findings() if f.rule == "ios-outdated"]
    # after an update that knows 26.2, the same backup is outdated, and says as of when
    store = tmp_path / "data" / "spywall" / "iocs"
    store.mkdir(parents=True)
    (store / releases.FILENAME).write_bytes(
        releases.refreshed(FEED, datetime(2026, 12, 7, tzinfo=UTC)))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    out = check_backup(root, index, index.sources)
    (f,) = [f for f in out.report.all_findings() if f.rule == "ios-outdated"]
    assert "older than iOS 26.2, released 2025-12-12" in f.message
    assert "as of 2026-12-07" in f.message
    assert f.detail["latest_ios"] == "26.2"


def test_bundled_builds_and_a_feed_without_one() -> None:
    known = releases.current(Path("/nonexistent"))
    builds = known.builds()
    assert builds["23B85"] == "26.1"
    assert builds["22H124"] == "18.7.2"
    assert all(releases.version_tuple(v) for v in builds.values())
    assert known.summary() == f"{known.latest().version} (list of {known.updated})"  # type: ignore[union-attr]
    # a feed title without the build keeps the build the bundled list knows
    feed = ("<rss><channel><item><title>iOS 26.1</title>"
            "<pubDate>Mon, 03 Nov 2025 10:00:00 PST</pubDate></item></channel></rss>")
    fresh = json.loads(releases.refreshed(feed, datetime(2026, 12, 7, tzinfo=UTC)))
    assert {"version": "26.1", "released": "2025-11-03", "build": "23B85"} in fresh["releases"]


def _build_only(root: Path, build: str) -> None:
    info = plistlib.loads((root / "Info.plist").read_bytes())
    info.pop("Product Version", None)
    info["Build Version"] = build
    (root / "Info.plist").write_bytes(plistlib.dumps(info))


def test_list_beside_the_indicators_and_build_only_info(tmp_path: Path) -> None:
    """``iocs update --dest DIR`` then ``check-ios --iocs DIR``: the release list in DIR
    is the one used, and the module says which list it is. An Info.plist that names only
    the build is judged by the version the list gives that build (MVT's check takes a
    build too)."""
    iocs = tmp_path / "iocs"
    iocs.mkdir()
    (iocs / releases.FILENAME).write_bytes(
        releases.refreshed(FEED, datetime(2026, 12, 8, tzinfo=UTC)))
    bundled = Path(releases.__file__).parent.parent / "data/iocs/amnesty_pegasus.stix2"
    (iocs / bundled.name).write_bytes(bundled.read_bytes())
    index = IocIndex.load([iocs])
    root = write_backup(tmp_path / "b", BackupSpec(planted=False, ios_version="26.1"))
    _build_only(root, "23B85")
    out = check_backup(root, index, index.sources)
    run = next(m for m in out.report.modules if m.name == "backup_info")
    assert run.message == "iOS 26.1; newest release known: 26.2 (list of 2026-12-08)"
    (f,) = [f for f in out.report.all_findings() if f.rule == "ios-outdated"]
    assert (f.detail["ios_version"], f.detail["releases_as_of"]) == ("26.1", "2026-12-08")
    _build_only(root, "99Z999")  # a build no list knows: no version, no verdict
    out = check_backup(root, index, index.sources)
    assert not [f for f in out.report.all_findings() if f.rule == "ios-outdated"]
    assert next(m for m in out.report.modules if m.name == "backup_info").message.startswith(
        "build 99Z999; newest release known: 26.2")


def test_builds_accumulate_from_one_update_to_the_next(tmp_path: Path) -> None:
    """Apple's feed names only the last months' releases: a release that left the feed
    keeps its build in the list refreshed before."""
    first = releases.refreshed(FEED, datetime(2026, 1, 5, tzinfo=UTC), dest=tmp_path)
    (tmp_path / releases.FILENAME).write_bytes(first)
    later = ("<rss><channel><item><title>iOS 26.3 (23D60)</title><pubDate>Mon, 02 Feb "
             "2026 10:00:00 PST</pubDate></item></channel></rss>")
    (tmp_path / releases.FILENAME).write_bytes(
        releases.refreshed(later, datetime(2026, 2, 3, tzinfo=UTC), dest=tmp_path))
    builds = releases.current(tmp_path).builds()
    assert {b: builds[b] for b in ("23D60", "23C55", "22H217", "23B85")} == {
        "23D60": "26.3", "23C55": "26.2", "22H217": "18.7.3", "23B85": "26.1"}
