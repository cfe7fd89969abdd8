"""The list of current iOS releases behind ``ios-outdated``: bundled, dated, refreshed
from Apple's release feed by ``spywall iocs update``."""

from __future__ import annotations

import json
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
