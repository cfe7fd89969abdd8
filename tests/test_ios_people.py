"""check-ios: calls, contacts, CoreDuet interactions, Firefox favicons and WhatsApp
contacts (MVT's calls, contacts, interactionc, firefox_favicon and whatsapp_contacts):
MVT's field names, times against an
independent conversion, rows read as SQLite's own query gives them, indicators, schema
drift (missing columns, older Core Data join tables), hostile values, missing and broken
artifacts, and the files --output writes for them."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spywall.cli import main
from spywall.iocs import IocIndex
from spywall.ios import people, whatsapp_contacts
from spywall.ios.check import MODULES, Outcome, check_backup
from spywall.samples.ios import PLANTED, BackupSpec, file_id, write_backup
from spywall.samples.ios_people import HOSTILE_NAME, WA_CONTACTS

CALLS = ("HomeDomain", "Library/CallHistoryDB/CallHistory.storedata")
CONTACTS = ("HomeDomain", "Library/AddressBook/AddressBook.sqlitedb")
INTERACTIONC = ("HomeDomain", "Library/CoreDuet/People/interactionC.db")
FIREFOX = ("AppDomainGroup-group.org.mozilla.ios.Firefox", "profile.profile/browser.db")
NEW = ("calls", "contacts", "interactionc", "firefox_favicon")


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load(())


@pytest.fixture(scope="module")
def backups(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("people")
    return {"planted": write_backup(root / "p", BackupSpec()),
            "clean": write_backup(root / "c", BackupSpec(planted=False))}


@pytest.fixture(scope="module")
def runs(backups: dict[str, Path], index: IocIndex) -> dict[str, Outcome]:
    return {k: check_backup(v, index, index.sources) for k, v in backups.items()}


def stored(root: Path, where: tuple[str, str]) -> Path:
    fid = file_id(*where)
    return root / fid[:2] / fid


def modules(out: Outcome) -> dict[str, tuple[str, str]]:
    return {m.name: (m.status, m.message) for m in out.report.modules}


def apple_iso(seconds: float) -> str:
    """Apple-epoch seconds as ISO-8601 UTC, by datetime (not spywall's converter)."""
    when = datetime(2001, 1, 1, tzinfo=UTC).timestamp() + seconds
    text = datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")
    return text.replace(".000000", "")


def test_planted_findings_and_clean_twin(runs: dict[str, Outcome]) -> None:
    found = {(f.location.module, f.rule, f.indicator.matched if f.indicator else "")
             for f in runs["planted"].report.all_findings() if f.location.module in NEW}
    assert found == {
        ("calls", "ioc-email", PLANTED["call_email"]),
        ("contacts", "ioc-email", PLANTED["contact_email"]),
        ("interactionc", "ioc-email", PLANTED["interaction_email"]),
        ("firefox_favicon", "ioc-domain", f"https://{PLANTED['firefox_favicon_domain']}"
                                          "/icon.png"),
    }
    assert not [f for f in runs["clean"].report.all_findings() if f.location.module in NEW]
    for out in runs.values():
        assert all(modules(out)[m][0] == "ok" for m in NEW)


def test_calls_fields_times_and_blob_address(runs: dict[str, Outcome],
                                             backups: dict[str, Path]) -> None:
    recs = runs["planted"].ctx.records["calls"]
    assert all(set(r.data) == {"duration", "location", "number", "provider"} for r in recs)
    with sqlite3.connect(stored(backups["planted"], CALLS)) as conn:
        rows = conn.execute("SELECT ZDATE, CAST(ZADDRESS AS TEXT) FROM ZCALLRECORD "
                            "ORDER BY Z_PK").fetchall()
    conn.close()
    assert [r.timestamp for r in recs] == [apple_iso(d) for d, _ in rows]
    assert [r.data["number"] for r in recs] == [a for _, a in rows]
    assert recs[1].data["provider"] == "com.apple.FaceTime"  # (ZADDRESS was a blob)
    assert recs[2].data == {"duration": None, "location": None, "number": None,
                            "provider": None}


def test_contacts_rows_as_sqlite_joins_them(runs: dict[str, Outcome],
                                            backups: dict[str, Path]) -> None:
    with sqlite3.connect(stored(backups["planted"], CONTACTS)) as conn:
        want = conn.execute(
            "SELECT multi.value, person.first, person.middle, person.last, "
            "person.organization FROM ABPerson person, ABMultiValue multi "
            "WHERE person.rowid = multi.record_id AND multi.value NOT NULL "
            "ORDER BY person.rowid ASC").fetchall()
    conn.close()
    recs = runs["planted"].ctx.records["contacts"]
    keys = ("value", "first", "middle", "last", "organization")
    assert sorted(tuple(r.data[k] for k in keys) for r in recs) == sorted(want)
    assert all(r.timestamp is None for r in recs)
    assert any(r.data["first"] == HOSTILE_NAME for r in recs)  # kept exact


def test_interactionc_fields_and_joins(runs: dict[str, Outcome]) -> None:
    recs = runs["planted"].ctx.records["interactionc"]
    assert [set(r.data) for r in recs] == [{f for f, _, _ in people.FIELDS}] * 2
    first, second = (r.data for r in recs)
    assert first["direction"] == "INCOMING"
    assert first["sender_identifier"] == PLANTED["interaction_email"]
    assert first["recipient_identifier"] == "me@example.com"  # Z_2INTERACTIONRECIPIENT
    assert first["content"] == "look at this"  # Z_1INTERACTIONS -> ZATTACHMENT
    assert first["attachment_id"] == "5F3C1A2B00FF"  # a blob, as HEX() gives it
    assert first["start_date"] == apple_iso(1_685_600_900 - 978_307_200).replace(
        "T", " ").replace("Z", ".000000")
    assert second["direction"] == "OUTGOING"
    assert second["sender_identifier"] is None
    # no start date: the record is timed by its creation
    assert recs[1].timestamp == apple_iso(1_685_600_950 - 978_307_200)


def test_interactionc_older_schema(tmp_path: Path, index: IocIndex) -> None:
    """An older interactionC.db: other Core Data numbers for the join tables, no
    ZGROUPNAME or ZDERIVEDINTENTIDENTIFIER; and one without ZATTACHMENT at all."""
    root = write_backup(tmp_path / "b", BackupSpec())
    db = stored(root, INTERACTIONC)
    with sqlite3.connect(db) as conn:
        conn.executescript(
            "ALTER TABLE Z_1INTERACTIONS RENAME TO Z_4INTERACTIONS;"
            "ALTER TABLE Z_4INTERACTIONS RENAME COLUMN Z_1ATTACHMENTS TO Z_4ATTACHMENTS;"
            "ALTER TABLE Z_4INTERACTIONS RENAME COLUMN Z_3INTERACTIONS TO Z_9INTERACTIONS;"
            "ALTER TABLE ZINTERACTIONS DROP COLUMN ZGROUPNAME;"
            "ALTER TABLE ZINTERACTIONS DROP COLUMN ZDERIVEDINTENTIDENTIFIER;")
    conn.close()
    out = check_backup(root, index, index.sources)
    assert modules(out)["interactionc"] == ("ok", "")
    first = out.ctx.records["interactionc"][0].data
    assert first["content"] == "look at this"
    assert first["group_name"] is None
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE ZATTACHMENT")
    conn.close()
    out = check_backup(root, index, index.sources)
    assert modules(out)["interactionc"] == ("ok", "")
    assert out.ctx.records["interactionc"][0].data["content"] is None
    assert ("interactionc", "ioc-email") in {(f.location.module, f.rule)
                                             for f in out.report.all_findings()}


@pytest.mark.parametrize(("where", "module", "sql"), [
    (CALLS, "calls", "ALTER TABLE ZCALLRECORD DROP COLUMN ZADDRESS"),
    (CONTACTS, "contacts", "DROP TABLE ABMultiValue"),
    (INTERACTIONC, "interactionc", "ALTER TABLE ZINTERACTIONS RENAME TO ZOTHER"),
    (FIREFOX, "firefox_favicon", "DROP TABLE favicon_sites"),
])
def test_schema_drift_is_said(tmp_path: Path, index: IocIndex, where: tuple[str, str],
                              module: str, sql: str) -> None:
    root = write_backup(tmp_path / "b", BackupSpec())
    with sqlite3.connect(stored(root, where)) as conn:
        conn.execute(sql)
    conn.close()
    status, message = modules(check_backup(root, index, index.sources))[module]
    assert status == "schema-unknown", message


def test_optional_columns_may_be_missing(tmp_path: Path, index: IocIndex) -> None:
    root = write_backup(tmp_path / "b", BackupSpec())
    for where, sql in ((CALLS, "ALTER TABLE ZCALLRECORD DROP COLUMN ZSERVICE_PROVIDER"),
                       (CONTACTS, "ALTER TABLE ABPerson DROP COLUMN Organization"),
                       (FIREFOX, "ALTER TABLE favicons DROP COLUMN width")):
        with sqlite3.connect(stored(root, where)) as conn:
            conn.execute(sql)
        conn.close()
    out = check_backup(root, index, index.sources)
    mods = modules(out)
    assert all(mods[m] == ("ok", "") for m in ("calls", "contacts", "firefox_favicon"))
    assert {r.data["provider"] for r in out.ctx.records["calls"]} == {None}
    assert len([f for f in out.report.all_findings() if f.location.module in NEW]) == 4


def test_missing_and_broken_artifacts(tmp_path: Path, index: IocIndex) -> None:
    spec = BackupSpec(unstored=(CALLS[1], CONTACTS[1]))
    root = write_backup(tmp_path / "u", spec)
    stored(root, INTERACTIONC).write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    out = check_backup(root, index, index.sources)
    mods = modules(out)
    assert mods["calls"][0] == mods["contacts"][0] == "skipped"
    assert mods["calls"][1].startswith("no data:")
    assert mods["interactionc"][0] == "error"
    assert "file is not a database" in mods["interactionc"][1]
    assert any("module interactionc" in e.message for e in out.report.subjects[0].errors)


def test_hostile_values(tmp_path: Path, index: IocIndex) -> None:
    """Invalid UTF-8 in a blob address, a huge value, NULLs and a non-text value where
    text is expected: read, bounded, never a crash."""
    root = write_backup(tmp_path / "b", BackupSpec())
    with sqlite3.connect(stored(root, CALLS)) as conn:
        conn.execute("INSERT INTO ZCALLRECORD (Z_PK, ZDATE, ZADDRESS, ZDURATION) VALUES "
                     "(9, 'yesterday', ?, 'x')", (b"\xff\xfe+44\x00" + b"9" * 100_000,))
    conn.close()
    with sqlite3.connect(stored(root, CONTACTS)) as conn:
        conn.execute("INSERT INTO ABMultiValue (UID, record_id, value) VALUES (99, 1, ?)",
                     (b"\x00\x01mailto:" + PLANTED["contact_email"].encode(),))
    conn.close()
    out = check_backup(root, index, index.sources)
    assert modules(out)["calls"][0] == "ok"
    last = out.ctx.records["calls"][-1]
    assert last.timestamp is None
    assert isinstance(last.data["number"], str)
    assert len(last.data["number"]) <= 4096
    assert last.data["number"].startswith("\ufffd\ufffd+44\x00")


def test_result_folder_names_and_fields(tmp_path: Path) -> None:
    root = write_backup(tmp_path / "b", BackupSpec())
    out = tmp_path / "out"
    assert main(["check-ios", str(root), "-q", "-o", str(out), "-j", "1",
                 "-m", "calls", "-m", "contacts", "-m", "interactionc",
                 "-m", "firefox_favicon"]) == 1
    names = {p.name for p in out.iterdir()}
    assert {"calls.json", "contacts.json", "interaction_c.json", "firefox_favicon.json",
            "calls_detected.json", "contacts_detected.json", "interaction_c_detected.json",
            "firefox_favicon_detected.json"} <= names
    inter = json.loads((out / "interaction_c.json").read_text(encoding="utf-8"))
    assert {f for f, _, _ in people.FIELDS} <= set(inter[0])
    contacts = json.loads((out / "contacts.json").read_text(encoding="utf-8"))
    assert HOSTILE_NAME in {c["first"] for c in contacts}
    detected = json.loads((out / "interaction_c_detected.json").read_text(encoding="utf-8"))
    assert detected[0]["module"] == "interaction_c"
    assert detected[0]["matched_indicator"]["value"] == PLANTED["interaction_email"]
    timeline = (out / "timeline.csv").read_text(encoding="utf-8")
    assert '"InteractionC","interaction"' in timeline
    assert '"Calls","call"' in timeline
    assert '"FirefoxFavicon","firefox_history"' in timeline


# -- whatsapp_contacts ----------------------------------------------------------------------

WA = ("AppDomainGroup-group.net.whatsapp.WhatsApp.shared", "ContactsV2.sqlite")
WA_FIELDS = {"row_pk", *whatsapp_contacts.COLUMNS, "disappearing_mode_is_on",
             "disappearing_mode_label"}


@pytest.mark.parametrize(("duration", "text"), [
    (None, "off"), (0, "off"), (86_400, "24 hours"), (604_800, "7 days"),
    (7_776_000, "90 days"), (3_600, "3600 seconds"), (3_600.0, "3600 seconds"),
    (-5, "-5 seconds"), (True, "off"), ("7 days", "off"), (float("nan"), "nan seconds"),
    (1e300, "1e+300 seconds"),
])
def test_timer_labels(duration: object, text: str) -> None:
    assert whatsapp_contacts.label(duration) == text


def test_whatsapp_contacts_records(runs: dict[str, Outcome]) -> None:
    recs = runs["planted"].ctx.records["whatsapp_contacts"]
    assert [set(r.data) for r in recs] == [WA_FIELDS] * len(WA_CONTACTS)
    got = [(r.data["row_pk"], r.data["whatsapp_id"], r.data["full_name"],
            r.data["disappearing_mode_label"], r.data["disappearing_mode_is_on"], r.event,
            r.timestamp) for r in recs]
    assert got == [
        (pk, jid, name.decode() if isinstance(name, bytes) else name,
         whatsapp_contacts.LABELS.get(timer, f"{timer} seconds") if timer else "off",
         bool(timer), "disappearing_mode_set" if at else "contact",
         apple_iso(at - 978_307_200) if at else None)
        for pk, jid, name, timer, at in WA_CONTACTS]
    assert recs[0].data["phone_status"] == 1  # (ZPHONENUMBERSTATUS in this version)
    assert recs[0].data["last_updated"] == "2023-06-01 06:13:20.000000"
    assert modules(runs["planted"])["whatsapp_contacts"] == ("ok", "2 with disappearing "
                                                                   "messages on")


def test_whatsapp_contacts_without_timer_column(tmp_path: Path, index: IocIndex) -> None:
    root = write_backup(tmp_path / "b", BackupSpec())
    with sqlite3.connect(stored(root, WA)) as conn:
        conn.executescript(
            "ALTER TABLE ZWAADDRESSBOOKCONTACT DROP COLUMN ZDISAPPEARINGMODEDURATION;"
            "ALTER TABLE ZWAADDRESSBOOKCONTACT ADD COLUMN ZPHONESTATUS INTEGER DEFAULT 7;")
    conn.close()
    out = check_backup(root, index, index.sources)
    assert modules(out)["whatsapp_contacts"] == (
        "ok", "no disappearing-messages column: timer state unknown")
    recs = out.ctx.records["whatsapp_contacts"]
    assert {(r.data["disappearing_mode_is_on"], r.data["disappearing_mode_label"])
            for r in recs} == {(None, None)}
    assert {r.data["phone_status"] for r in recs} == {7}  # ZPHONESTATUS preferred


def test_whatsapp_contacts_in_the_result_folder(tmp_path: Path) -> None:
    root = write_backup(tmp_path / "b", BackupSpec())
    out = tmp_path / "out"
    assert main(["check-ios", str(root), "-q", "-o", str(out), "-j", "1",
                 "-m", "whatsapp_contacts"]) == 0
    recs = json.loads((out / "whatsapp_contacts.json").read_text(encoding="utf-8"))
    assert [r["disappearing_mode_label"] for r in recs] == ["7 days", "off", "3600 seconds"]
    assert recs[1]["full_name"] == "Sam \u2605"
    timeline = (out / "timeline.csv").read_text(encoding="utf-8")
    assert timeline.count('"WhatsappContacts","disappearing_mode_set"') == 2


# -- any SQLite value in any column ------------------------------------------------------

_ANY = (st.none() | st.integers(-(2**63), 2**63 - 1) | st.floats()
        | st.text(max_size=40) | st.binary(max_size=40))
ROWS = {
    CALLS: ("ZCALLRECORD", ("ZDATE", "ZDURATION", "ZLOCATION", "ZADDRESS",
                            "ZSERVICE_PROVIDER")),
    CONTACTS: ("ABMultiValue", ("record_id", "value")),
    INTERACTIONC: ("ZINTERACTIONS", ("ZSTARTDATE", "ZCREATIONDATE", "ZDIRECTION", "ZSENDER",
                                     "ZBUNDLEID", "ZCONTENTURL")),
    FIREFOX: ("favicons", ("url", "width", "type", "date")),
    WA: ("ZWAADDRESSBOOKCONTACT", ("ZFULLNAME", "ZDISAPPEARINGMODEDURATION",
                                   "ZDISAPPEARINGMODETIMESTAMP", "ZABOUTTEXT")),
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_backup(tmp_path_factory.mktemp("hyp") / "b", BackupSpec(messages=2,
                                                                          history=2))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(ROWS)), st.lists(_ANY, min_size=6, max_size=6))
def test_any_value_in_any_column(shared: Path, index: IocIndex, where: tuple[str, str],
                                 values: list[object]) -> None:
    table, cols = ROWS[where]
    path = stored(shared, where)
    original = path.read_bytes()
    with sqlite3.connect(path) as conn:  # (a hostile file has no constraints: drop them)
        conn.executescript(f"CREATE TABLE loose AS SELECT * FROM {table}; DROP TABLE {table}; "
                           f"ALTER TABLE loose RENAME TO {table};")
        conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                     f"({', '.join('?' * len(cols))})", values[:len(cols)])
    conn.close()
    mods = [m for m in MODULES if m.name in (*NEW, "whatsapp_contacts")]
    try:
        out = check_backup(shared, index, index.sources, modules=mods)
    finally:
        path.write_bytes(original)
    assert {m.status for m in out.report.modules} == {"ok"}, out.report.modules
    for recs in out.ctx.records.values():  # every value is a report scalar, JSON data
        assert all(v is None or type(v) in (str, int, float, bool)
                   for r in recs for v in r.data.values())
        msgspec.json.encode([r.data for r in recs])
