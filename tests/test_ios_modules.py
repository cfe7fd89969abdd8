"""The iOS modules added for MVT parity: Chrome history, Lockdown Mode, Apple's threat
notification, deleted DataUsage process records, every message in the timeline."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from spywall.iocs import IocIndex
from spywall.ios.browsers import chrome_time
from spywall.ios.check import Outcome, check_backup
from spywall.samples.ios import PLANTED, BackupSpec, file_id, write_backup
from spywall.samples.ios_extra import chrome_time as write_chrome_time


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load(())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, index: IocIndex) -> dict[str, Outcome]:
    root = tmp_path_factory.mktemp("iosmods")
    return {name: check_backup(write_backup(root / name, BackupSpec(planted=planted)), index,
                               index.sources, timeline=True)
            for name, planted in (("planted", True), ("clean", False))}


def test_chrome_time_against_the_windows_epoch() -> None:
    when = datetime(2023, 6, 1, 6, 13, 20, tzinfo=UTC)
    micro = (when - datetime(1601, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert chrome_time(micro) == "2023-06-01T06:13:20Z"
    assert write_chrome_time(when.timestamp()) == micro
    assert chrome_time(0) is None
    assert chrome_time("x") is None


def test_chrome_history_visits(runs: dict[str, Outcome]) -> None:
    recs = runs["planted"].ctx.records["chrome_history"]
    assert [r.data["visit_id"] for r in recs] == [1, 2, 3]
    assert recs[2].data["redirect_source"] == 2
    hits = [f for f in runs["planted"].report.all_findings()
            if f.location.module == "chrome_history"]
    assert [f.indicator.collection for f in hits if f.indicator] == ["Pegasus"]
    assert PLANTED["chrome_domain"] in hits[0].message


def test_lockdown_mode_states(runs: dict[str, Outcome], tmp_path: Path,
                              index: IocIndex) -> None:
    def module(out: Outcome) -> tuple[str, str]:
        m = next(m for m in out.report.modules if m.name == "global_preferences")
        return m.status, m.message

    assert module(runs["planted"]) == ("ok", "Lockdown Mode off")
    assert module(runs["clean"]) == ("ok", "Lockdown Mode on")
    off = [f for f in runs["planted"].report.all_findings()
           if f.rule == "ios-lockdown-mode-off"]
    assert len(off) == 1
    assert off[0].severity.value == "low"
    # without the key: never set, no finding
    root = write_backup(tmp_path / "b", BackupSpec(planted=False))
    fid = file_id("HomeDomain", "Library/Preferences/.GlobalPreferences.plist")
    import plistlib
    (root / fid[:2] / fid).write_bytes(plistlib.dumps({"AppleLocale": "en_GB"}))
    out = check_backup(root, index, index.sources)
    assert module(out) == ("ok", "Lockdown Mode never set")
    assert out.report.all_findings() == []


def test_threat_notification_only_for_apples_wording(runs: dict[str, Outcome],
                                                     tmp_path: Path, index: IocIndex) -> None:
    (hit,) = [f for f in runs["planted"].report.all_findings()
              if f.rule == "ios-apple-threat-notification"]
    assert hit.severity.value == "high"
    assert hit.location.timestamp is not None
    # the same words not at the start, or another ALERT: text, are not the notification
    root = write_backup(tmp_path / "b", BackupSpec(planted=False))
    fid = file_id("HomeDomain", "Library/SMS/sms.db")
    db = root / fid[:2] / fid
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO message (ROWID, guid, text, handle_id, date) VALUES "
                  "(900, 'g1', 'fwd: ALERT: Apple detected a targeted mercenary spyware "
                  "attack against your iPhone', 1, 0), (901, 'g2', 'ALERT: parcel held', 1, 0)")
    c.close()
    out = check_backup(root, index, index.sources)
    assert not [f for f in out.report.all_findings()
                if f.rule == "ios-apple-threat-notification"]


def test_every_message_is_in_the_timeline(runs: dict[str, Outcome]) -> None:
    recs = runs["clean"].ctx.records["sms"]
    rowids = sorted(int(r.data["rowid"]) for r in recs if r.event != "handle")  # type: ignore[arg-type]
    assert rowids == list(range(1, 21))  # 20 messages: with links or not
    assert sum(1 for r in recs if r.data.get("links")) == 7  # every third has a link


def test_deleted_process_records_are_reported(runs: dict[str, Outcome]) -> None:
    (gap,) = [f for f in runs["planted"].report.all_findings()
              if f.rule == "ios-datausage-missing-process"]
    assert gap.detail["first_missing"] == 4
    assert gap.detail["last_missing"] == 4
    assert not [f for f in runs["clean"].report.all_findings()
                if f.rule.startswith("ios-datausage")]


def test_shortcut_links(runs: dict[str, Outcome]) -> None:
    (rec,) = runs["planted"].ctx.records["shortcuts"]
    assert rec.data["shortcut_name"] == "Morning news"
    assert rec.data["action_urls"] == f"https://{PLANTED['shortcut_domain']}/daily"
    assert rec.data["actions"] == "is.workflow.actions.url, is.workflow.actions.openurl"
    assert rec.timestamp == "2023-06-01T06:28:20Z"
    (clean,) = runs["clean"].ctx.records["shortcuts"]
    assert clean.data["action_urls"] == "https://news.example.com/daily"
