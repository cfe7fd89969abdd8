"""androidqf browser_history/ (MVT's androidqf browser_history): the manifest, Chromium
History databases (with a write-ahead log), unsafe or missing entries, time conversion."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from spywall.android import browser_history as bh
from spywall.android.check import check_capture
from spywall.errors import InputError
from spywall.iocs import IocIndex
from spywall.samples import android as gen
from spywall.samples import android_fs

MODS = bh.BROWSER_MODULES
ARCHIVE = "browser_history/com.android.chrome/Default/History"


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load()


def _files(planted: bool = True) -> dict[str, bytes]:
    return gen.androidqf_files(planted, with_bugreport=False)


def _run(files: dict[str, bytes], tmp: Path, index: IocIndex) -> object:
    return check_capture(gen.write_tree(files, tmp), index, modules=MODS)


def test_chrome_time_against_datetime() -> None:
    micro = 13_350_000_000_123_456
    want = datetime(1601, 1, 1, tzinfo=UTC) + timedelta(microseconds=micro)
    assert bh.chrome_time(micro) == want.isoformat().replace("+00:00", "Z")
    assert bh.chrome_time(0) is None
    assert bh.chrome_time("13350000000123456") is None


def test_visits_found_and_recorded(tmp_path: Path, index: IocIndex) -> None:
    out = _run(_files(), tmp_path / "qf", index)
    rep = out.report  # type: ignore[attr-defined]
    assert [(f.rule, f.indicator.collection) for f in rep.all_findings()] == [
        ("ioc-domain", "Predator")
    ]
    assert rep.all_findings()[0].path.endswith(ARCHIVE)
    recs = out.ctx.records["browser_history"]  # type: ignore[attr-defined]
    first = recs[0].data
    assert {
        k: first[k]
        for k in (
            "url",
            "title",
            "visit_id",
            "isodate",
            "browser",
            "package",
            "profile",
            "source_path",
            "redirect_source",
        )
    } == {
        "url": "https://www.example.com/news",
        "title": "News",
        "visit_id": 1,
        "isodate": "2024-01-13 21:06:40.250000",
        "browser": "chrome",
        "package": "com.android.chrome",
        "profile": "Default",
        "source_path": "/data/data/com.android.chrome/app_chrome/Default/History",
        "redirect_source": 0,
    }
    assert recs[0].timestamp == "2024-01-13T21:06:40.250000Z"
    assert _run(_files(False), tmp_path / "clean", index).report.all_findings() == []  # type: ignore[attr-defined]


def test_visits_in_the_write_ahead_log(tmp_path: Path, index: IocIndex) -> None:
    """A History whose last visits are still in History-wal (Chrome was running)."""
    work = tmp_path / "work"
    work.mkdir()
    db = work / "History"
    db.write_bytes(android_fs.chrome_history([("https://a.example/", "A", 1705180000.0)]))
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(
        "INSERT INTO urls (id, url, last_visit_time) VALUES (2, ?, 0)",
        (f"https://{gen.PREDATOR_DOMAIN}/x",),
    )
    conn.execute("INSERT INTO visits (id, url, visit_time) VALUES (2, 2, 13350000000000000)")
    conn.commit()
    files = _files(False)
    files[ARCHIVE] = db.read_bytes()
    files[ARCHIVE + "-wal"] = Path(f"{db}-wal").read_bytes()
    conn.close()
    assert len(files[ARCHIVE + "-wal"]) > 0
    out = _run(files, tmp_path / "qf", index)
    assert [f.indicator.collection for f in out.report.all_findings()] == ["Predator"]  # type: ignore[attr-defined]


def test_bad_entries_are_errors_of_their_own(tmp_path: Path, index: IocIndex) -> None:
    files = _files()
    manifest = json.loads(files["browser_history/manifest.json"])
    good = manifest["databases"][0]
    manifest["databases"] = [
        {**good, "archive_path": "../../etc/passwd"},
        {**good, "archive_path": "browser_history/missing/History"},
        {**good, "profile": ""},
        "not an object",
        good,
    ]
    files["browser_history/manifest.json"] = json.dumps(manifest).encode()
    rep = _run(files, tmp_path / "qf", index).report  # type: ignore[attr-defined]
    run = rep.modules[0]
    assert (run.status, run.message) == (
        "ok", "1 database(s), 3 unreadable, 1 not in the capture")
    msgs = [e.message for e in rep.subjects[0].errors]
    assert any("unsafe archive path" in m for m in msgs)
    assert not any("not in the capture" in m for m in msgs)  # missing: no data, no error
    assert [f.indicator.collection for f in rep.all_findings() if f.indicator] == ["Predator"]
    assert [f.rule for f in rep.all_findings() if not f.indicator] == [
        "incomplete-examination"] * 3  # the entries that could not be read: never clean


@pytest.mark.parametrize(
    ("manifest", "history", "status"),
    [
        (b'{"schema_version": 2, "databases": []}', None, "schema-unknown"),
        (b"[1, 2", None, "error"),
        (None, b"SQLite format 3\x00" + b"\x00" * 200, "error"),  # a corrupt History
        (None, None, "skipped"),
    ],
)
def test_manifest_and_database_failures(
    tmp_path: Path, index: IocIndex, manifest: bytes | None, history: bytes | None, status: str
) -> None:
    files = _files()
    if manifest is not None:
        files["browser_history/manifest.json"] = manifest
    if history is not None:
        files[ARCHIVE] = history
    if manifest is None and history is None:
        del files["browser_history/manifest.json"]
    rep = _run(files, tmp_path / "qf", index).report  # type: ignore[attr-defined]
    assert rep.modules[0].status == status


def test_evidence_untouched(tmp_path: Path, index: IocIndex) -> None:
    ev = gen.write_tree(_files(), tmp_path / "qf")
    before = {p: p.read_bytes() for p in ev.rglob("*") if p.is_file()}
    check_capture(ev, index, modules=MODS)
    assert {p: p.read_bytes() for p in ev.rglob("*") if p.is_file()} == before


def _history(planted: bool) -> bytes:
    urls = [("https://www.example.com/", "Home", 1705180000.0)]
    if planted:
        urls.append((f"https://{gen.PREDATOR_DOMAIN}/r/1", "", 1705180001.0))
    return android_fs.chrome_history(urls)


def test_filesystem_dump(tmp_path: Path, index: IocIndex) -> None:
    """An Android file system dump (MVT's check-fs): History databases at their place,
    found without walking the dump."""
    root = tmp_path / "dump"
    chrome = root / "data/data/com.android.chrome/app_chrome/Default/History"
    samsung = root / "data/data/com.sec.android.app.sbrowser/app_sbrowser/Default/History"
    for db, planted in ((chrome, False), (samsung, True)):
        db.parent.mkdir(parents=True)
        db.write_bytes(_history(planted))
    (root / "system/bin").mkdir(parents=True)
    (root / "system/bin/sh").write_bytes(b"\x7fELF")
    rep = check_capture(root, index).report
    assert (rep.subjects[0].format, rep.subjects[0].objects) == ("fs", 2)
    assert [(f.rule, f.indicator.collection, f.path) for f in rep.all_findings()] == [
        ("ioc-domain", "Predator", str(samsung))
    ]
    run = next(m for m in rep.modules if m.name == "browser_history")
    assert (run.status, run.records, run.message) == ("ok", 3, "2 database(s)")
    assert {m.status for m in rep.modules if m.name != "browser_history"} == {"skipped"}


def test_filesystem_dump_through_a_link_is_not_read(tmp_path: Path, index: IocIndex) -> None:
    real = tmp_path / "elsewhere/data/com.android.chrome/app_chrome/Default/History"
    real.parent.mkdir(parents=True)
    real.write_bytes(_history(True))
    root = tmp_path / "dump"
    root.mkdir()
    (root / "data").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InputError):
        check_capture(root, index)


def test_lone_history_database_with_its_wal(tmp_path: Path, index: IocIndex) -> None:
    work = tmp_path / "w"
    work.mkdir()
    db = work / "History"
    db.write_bytes(_history(False))
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(
        "INSERT INTO urls (id, url, last_visit_time) VALUES (9, ?, 0)",
        (f"https://{gen.PREDATOR_DOMAIN}/w",),
    )
    conn.execute("INSERT INTO visits (id, url, visit_time) VALUES (9, 9, 13350000000000000)")
    conn.commit()
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "History").write_bytes(db.read_bytes())
    (ev / "History-wal").write_bytes(Path(f"{db}-wal").read_bytes())
    conn.close()
    rep = check_capture(ev / "History", index).report
    assert rep.subjects[0].format == "history"
    assert [(f.indicator.collection, f.path) for f in rep.all_findings()] == [
        ("Predator", str(ev / "History"))
    ]
