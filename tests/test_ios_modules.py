"""The iOS modules added for MVT parity: Chrome history, Lockdown Mode, Apple's threat
notification, deleted DataUsage process records, every message in the timeline."""

from __future__ import annotations

import json
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


def test_messages_sqlite_lets_through_without_links_are_in_the_timeline(
        tmp_path: Path, index: IocIndex) -> None:
    """SQLite's pre-filter passes a text with "://" or "www." that holds no link, and any
    attributedBody: such a message is in the timeline all the same, as every message is
    in MVT's; and every message's event is MVT's ``sms_received``, a message without a
    handle (none, or a handle row that is gone) with or without a link too."""
    from spywall.device.output import write_mvt_outputs

    root = write_backup(tmp_path / "b", BackupSpec(planted=False))
    fid = file_id("HomeDomain", "Library/SMS/sms.db")
    with sqlite3.connect(root / fid[:2] / fid) as c:
        c.executemany(
            "INSERT INTO message (ROWID, guid, text, handle_id, date, attributedBody) VALUES "
            "(?, ?, ?, ?, 700000000000000000, ?)",
            [(901, "g1", "meet at www. later, or see ://", 1, None),  # passes LIKE, no link
             (902, "g2", "", 1, b"streamtyped\x00no link here"),     # a body, no link
             (903, "g3", "no handle, no link", 0, None),
             (904, "g4", "no handle: https://news.example.com/a", 0, None),
             (905, "g5", "handle gone", 999, None)])
    c.close()
    out = check_backup(root, index, index.sources, timeline=True, render=True, jobs=1)
    recs = {int(r.data["rowid"]): r for r in out.ctx.records.get("sms", ())  # type: ignore[arg-type]
            if r.event != "handle"}
    batches = [b for _, b in out.ctx.batches.get("sms", ())]
    rows = {int(r): (e, links) for b in batches  # type: ignore[arg-type]
            for r, e, links in zip(b.fields["rowid"], b.events, b.fields["links"], strict=True)}
    rows |= {k: (r.event, r.data["links"]) for k, r in recs.items()}
    assert set(rows) == set(range(1, 21)) | {901, 902, 903, 904, 905}
    assert {e for e, _ in rows.values()} == {"sms_received"}
    assert rows[904][1] == "https://news.example.com/a"
    assert rows[901][1] == rows[902][1] == rows[903][1] == ""
    assert out.ctx.parts is not None
    write_mvt_outputs(out.report, out.ctx.parts, tmp_path / "r")
    timeline = (tmp_path / "r" / "timeline.csv").read_text()
    assert sum(1 for line in timeline.splitlines() if line.split(",")[1:2] == ['"SMS"']) == 25
    items = [json.loads(line.rstrip(",")) for line in
             (tmp_path / "r" / "sms.json").read_text().splitlines()[1:-1]]
    assert sorted(int(i["rowid"]) for i in items if i["event"] != "handle") == sorted(rows)


def test_sms_db_weighs_twice_its_size() -> None:
    """The module order of a check spread over processes: sms.db counts twice its size
    for the messages (their rows cost about twice a byte of History.db), once for the
    attachments; Safari history its size."""
    from types import SimpleNamespace

    from spywall.ios import browsers, messages

    class Evidence:
        def get(self, domain: str, rel: str) -> object:
            return SimpleNamespace(is_file=True, rel=rel)

        def size(self, entry: SimpleNamespace) -> int:
            return 1000 if entry.rel.endswith("sms.db") else 1500

    ctx = SimpleNamespace(evidence=Evidence())
    weights = {m.name: m.weight(ctx)  # type: ignore[arg-type]
               for m in (*messages.MODULES, *browsers.MODULES)
               if m.name in ("sms", "sms_attachments", "safari_history")}
    assert (weights["sms"], weights["sms_attachments"], weights["safari_history"]) == (
        2000, 1000, 1500)
