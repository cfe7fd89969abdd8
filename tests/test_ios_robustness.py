"""Hostile and drifted backups: path containment, unknown schemas, corrupt artifacts,
MBFile blobs (property tests)."""

from __future__ import annotations

import contextlib
import os
import plistlib
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spywall.errors import FormatError, SpywallError
from spywall.iocs import IocIndex
from spywall.ios.backup import Entry, open_backup
from spywall.ios.check import check_backup
from spywall.ios.mbfile import decode
from spywall.report import Severity
from spywall.samples.ios import BackupSpec, file_id, mbfile, write_backup

SMS = ("HomeDomain", "Library/SMS/sms.db")
DATAUSAGE = ("WirelessDomain", "Library/Databases/DataUsage.sqlite")


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load(())


def stored(root: Path, domain: str, rel: str) -> Path:
    fid = file_id(domain, rel)
    return root / fid[:2] / fid


def statuses(root: Path, index: IocIndex) -> dict[str, str]:
    out = check_backup(root, index)
    return {m.name: m.status for m in out.report.modules}


def test_unknown_schema_is_reported_and_others_continue(tmp_path: Path,
                                                        index: IocIndex) -> None:
    root = write_backup(tmp_path / "b", BackupSpec())
    p = stored(root, *SMS)
    conn = sqlite3.connect(p)
    conn.execute("ALTER TABLE message RENAME TO message_v99")
    conn.commit()
    conn.close()
    out = check_backup(root, index)
    runs = {m.name: m for m in out.report.modules}
    assert runs["sms"].status == "schema-unknown"
    assert "message" in runs["sms"].message
    assert runs["datausage"].status == "ok"
    assert any(f.rule == "triangulation-backupagent-network" for f in out.report.all_findings())


def test_corrupt_database_and_plist_fail_alone(tmp_path: Path, index: IocIndex) -> None:
    root = write_backup(tmp_path / "b", BackupSpec())
    stored(root, *DATAUSAGE).write_bytes(b"SQLite format 3\x00" + os.urandom(2000))
    stored(root, "HomeDomain",
           "Library/Preferences/com.apple.osanalytics.addaily.plist").write_bytes(b"bplist00\xff")
    st_ = statuses(root, index)
    assert st_["datausage"] == "error"
    assert st_["os_analytics_ad_daily"] == "error"
    assert st_["sms"] == "ok"


def test_file_outside_the_backup_is_refused(tmp_path: Path, index: IocIndex) -> None:
    root = write_backup(tmp_path / "b", BackupSpec())
    outside = tmp_path / "outside.db"
    target = stored(root, *DATAUSAGE)
    outside.write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(outside)
    assert statuses(root, index)["datausage"] == "error"
    with open_backup(root) as b:
        bad = Entry("../../../../etc/passwd", "HomeDomain", "x", 1, None)
        with pytest.raises(FormatError, match="40 hex"):
            b.local_path(bad)
        e = b.get(*DATAUSAGE)
        assert e is not None
        with pytest.raises(FormatError, match="outside"):
            b.local_path(e)


def test_missing_stored_file_is_no_data_not_a_crash(tmp_path: Path,
                                                    index: IocIndex) -> None:
    root = write_backup(tmp_path / "b", BackupSpec())
    stored(root, *SMS).unlink()
    st_ = statuses(root, index)
    assert st_["sms"] == "skipped"  # listed in Manifest.db, not stored: no data
    assert st_["whatsapp"] == "ok"


def test_manifest_db_without_files_table(tmp_path: Path, index: IocIndex) -> None:
    from spywall.errors import InputError

    root = write_backup(tmp_path / "b", BackupSpec(planted=False))
    (root / "Manifest.db").unlink()
    sqlite3.connect(root / "Manifest.db").execute("CREATE TABLE Other(x)").connection.commit()
    with pytest.raises(InputError, match="Files"):
        check_backup(root, index)
    (root / "Manifest.db").write_bytes(os.urandom(4096))
    with pytest.raises(InputError, match=r"Manifest\.db"):
        check_backup(root, index)


def test_mbfile_roundtrip() -> None:
    m = decode(mbfile("Library/SMS/sms.db", 1234, 1_700_000_000, 0o100644, b"k" * 44))
    assert m is not None
    assert (m.size, m.last_modified, m.birth, m.encrypted, m.key_length) == (
        1234, 1_700_000_000, 1_700_000_000, True, 44)
    assert decode(None) is None


FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=600))
def test_mbfile_random_bytes(data: bytes) -> None:
    with contextlib.suppress(SpywallError):
        decode(data)


@FAST
@given(st.data())
def test_mbfile_mutated(data: st.DataObject) -> None:
    blob = bytearray(mbfile("Library/x", 10, 1_700_000_000, 0o100644))
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    with contextlib.suppress(SpywallError):
        decode(bytes(blob))


_VALUES = (st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20) | st.binary(max_size=50)
           | st.integers(0, 9).map(plistlib.UID) | st.booleans())
_KEYS = st.sampled_from(["Size", "Birth", "LastModified", "EncryptionKey", "NS.data",
                         "ProtectionClass", "$class", "Mode"])


@FAST
@given(st.lists(st.dictionaries(_KEYS, _VALUES, max_size=6) | _VALUES, max_size=6),
       st.integers(-2, 8))
def test_mbfile_odd_archives(objects: list[object], root: int) -> None:
    blob = plistlib.dumps({"$top": {"root": plistlib.UID(max(root, 0))}, "$objects": objects},
                          fmt=plistlib.FMT_BINARY)
    with contextlib.suppress(SpywallError):
        decode(blob)


PLIST_TARGETS = [
    ("HomeDomain", "Library/Preferences/com.apple.osanalytics.addaily.plist"),
    ("HomeDomain", "Library/Preferences/com.apple.identityservices.idstatuscache.plist"),
    ("RootDomain", "Library/Caches/locationd/clients.plist"),
    ("AppDomain-com.apple.mobilesafari",
     "Library/WebKit/WebsiteData/ResourceLoadStatistics/full_browsing_session_resourceLog.plist"),
    ("SysSharedContainerDomain-systemgroup.com.apple.configurationprofiles",
     "Library/ConfigurationProfiles/profile-7a1b.stub"),
]
_KEYS_ANY = st.sampled_from(["netUsageBaseline", "browsingStatistics", "BundleId", "Executable",
                             "PayloadUUID", "InstallDate", "mailto:a@b.c", "LookupDate",
                             "topFrameUniqueRedirectsTo", "PrevalentResourceOrigin",
                             "LocationTimeStopped", "x"])
_PLIST_VALUES = st.recursive(
    st.integers(-(2**63), 2**63 - 1) | st.text(max_size=12) | st.binary(max_size=12)
    | st.booleans() | st.floats(allow_nan=False) | st.datetimes(),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(_KEYS_ANY, c, max_size=4),
    max_leaves=25)


@pytest.fixture(scope="module")
def shared_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_backup(tmp_path_factory.mktemp("hyp") / "b",
                        BackupSpec(messages=4, history=4, extra_processes=1))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from(PLIST_TARGETS), st.dictionaries(_KEYS_ANY, _PLIST_VALUES, max_size=5))
def test_odd_plists_never_escape(shared_backup: Path, index: IocIndex,
                                 target: tuple[str, str], obj: dict[str, object]) -> None:
    path = stored(shared_backup, *target)
    original = path.read_bytes()
    path.write_bytes(plistlib.dumps(obj, fmt=plistlib.FMT_BINARY))
    try:
        out = check_backup(shared_backup, index)
    finally:
        path.write_bytes(original)
    assert {m.status for m in out.report.modules} <= {"ok", "error", "skipped"}


@pytest.mark.parametrize(("damage", "modules", "code"), [
    ("database", ["datausage"], "malformed"),
    ("plist", ["os_analytics_ad_daily"], "malformed"),
    ("schema", ["sms", "sms_attachments"], "schema"),  # (both read sms.db)
])
def test_unread_artifact_is_never_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        damage: str, modules: list[str], code: str) -> None:
    """A clean backup with one broken artifact exits 1 with an ``incomplete-examination``
    finding naming the module and the reason (fail closed); ``--allow-incomplete`` keeps
    the error entry only (exit 0); a missing artifact is no data (exit 0)."""
    from spywall.cli import main
    from spywall.report import load_report

    root = write_backup(tmp_path / "b", BackupSpec(planted=False))
    assert main(["check-ios", str(root), "-f", "json", "-q", "-j", "1"]) == 0
    capsys.readouterr()
    if damage == "database":
        stored(root, *DATAUSAGE).write_bytes(b"SQLite format 3\x00" + b"\x5a" * 4000)
    elif damage == "plist":
        stored(root, "HomeDomain", "Library/Preferences/com.apple.osanalytics.addaily.plist"
               ).write_bytes(b"bplist00\xff")
    else:
        with contextlib.closing(sqlite3.connect(stored(root, *SMS))) as conn:
            conn.execute("ALTER TABLE message RENAME TO message_v99")
            conn.commit()
    for jobs in ("1", "2"):
        assert main(["check-ios", str(root), "-f", "json", "-q", "-j", jobs]) == 1
        rep = load_report(capsys.readouterr().out)
        found = [f for f in rep.all_findings() if f.severity is not Severity.INFO]
        assert [(f.rule, f.location.module, f.detail["module"]) for f in found] == [
            ("incomplete-examination", m, m) for m in modules]
        for f, m in zip(found, modules, strict=True):
            assert f"({code})" in f.message
            assert f"module {m}:" in f.message
    assert main(["check-ios", str(root), "-f", "json", "-q", "--allow-incomplete"]) == 0
    rep = load_report(capsys.readouterr().out)
    assert [f.rule for f in rep.all_findings()] == ["ios-lockdown-mode-on"]
    assert [e.code for s in rep.subjects for e in s.errors] == [code] * len(modules)


def test_missing_artifact_exits_clean(tmp_path: Path) -> None:
    from spywall.cli import main

    root = write_backup(tmp_path / "b", BackupSpec(planted=False))
    stored(root, *SMS).unlink()
    stored(root, *DATAUSAGE).unlink()
    assert main(["check-ios", str(root), "-f", "json", "-q"]) == 0
