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
    assert (run.status, run.message) == ("ok", "1 database(s), 4 unreadable")
    msgs = [e.message for e in rep.subjects[0].errors]
    assert any("unsafe archive path" in m for m in msgs)
    assert any("not in the capture" in m for m in msgs)
    assert [f.indicator.collection for f in rep.all_findings()] == ["Predator"]


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
