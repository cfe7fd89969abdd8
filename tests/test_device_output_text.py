"""Hostile text in the result folder: evidence text that UTF-8 cannot hold (a lone
surrogate, as a JSON string's ``\\ud800`` decodes; bytes that were never UTF-8 in an
SQLite TEXT column) must not stop the folder being written. The check finishes with its
exit status, every file is UTF-8 that the csv and json modules read back, the JSON keeps
the exact value (its ``\\ud800`` escape), and the evidence is unchanged."""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from spywall.cli import main
from spywall.device.base import Record
from spywall.device.timeline import Lines, module_part
from spywall.samples import android as gen
from spywall.samples.ios import BackupSpec, file_id, write_backup

LONE = "/data/local/tmp/x\ud800y"


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _read_back(out: Path) -> dict[str, object]:
    """Every file of the folder as strict UTF-8; the CSV files through ``csv``, the JSON
    ones through ``json``."""
    got: dict[str, object] = {}
    for p in sorted(out.iterdir()):
        text = p.read_bytes().decode("utf-8")  # strict: raises on anything not UTF-8
        if p.suffix == ".csv":
            got[p.name] = list(csv.reader(text.splitlines(), escapechar="\\"))
        elif p.suffix == ".json":
            got[p.name] = json.loads(text)
    assert {"timeline.csv", "alerts.json", "info.json", "report.json"} <= set(got)
    return got


def test_android_json_text_with_lone_surrogates(tmp_path: Path) -> None:
    files = gen.androidqf_files(False, with_bugreport=False)
    entry = {"path": LONE, "size": 1, "mode": "-rwxr-xr-x", "access_time": "\udc80",
             "changed_time": 1705269600, "modified_time": 1705269600, "context": "\ud800",
             "error": "", "user_name": "\udfff"}
    files["files.json"] = json.dumps([entry]).encode()  # (ASCII: "\ud800" escapes)
    ev = gen.write_tree(files, tmp_path / "qf")
    before = _hashes(ev)
    out = tmp_path / "out"
    assert main(["check-android", str(ev), "-q", "-f", "json", "-o", str(out)]) == 1
    assert _hashes(ev) == before
    got = _read_back(out)
    item = got["aqf_files.json"][0]  # type: ignore[index]
    assert (item["path"], item["context"], item["access_time"], item["user_name"]) == (
        LONE, "\ud800", "\udc80", "\udfff")  # the exact values
    rows = [r for r in got["timeline.csv"] if r[1] == "AQFFiles"]  # type: ignore[union-attr]
    assert [(r[0], r[2], json.loads(r[3])["path"]) for r in rows] == [
        ("2024-01-14 22:00:00.000000", "M-C-", LONE)]
    alerts = got["alerts.json"]
    assert any(a["event"].get("path") == LONE for a in alerts)  # type: ignore[union-attr]
    assert any("\\ud800" in r[2] for r in got["alerts_timeline.csv"][1:])  # type: ignore[index]


def _corrupt_sms(root: Path) -> None:
    """Message 2's text and date hold the bytes of a lone surrogate (ED A0 80, as an
    encoder without checks writes U+D800): not UTF-8, so sqlite3 refuses the row."""
    db = next(root.glob(f"*/{file_id('HomeDomain', 'Library/SMS/sms.db')}"))
    con = sqlite3.connect(db)
    con.execute("UPDATE message SET text = CAST(X'6869eda080' AS TEXT), "
                "date = CAST(X'323032332d30362d3031eda080' AS TEXT) WHERE ROWID = 2")
    con.commit()
    con.close()


def _sms_findings(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    status = main(["check-ios", str(root), "-q", "-f", "json", "-j", "1"])
    rep = json.loads(capsys.readouterr().out)
    found = sorted(f["message"] for s in rep["subjects"] for f in s["findings"]
                   if "sms" in json.dumps(f.get("detail", {})) or "SMS" in f["message"])
    return status, found


def test_ios_sqlite_text_not_utf8(tmp_path: Path) -> None:
    """One sms.db row that is not UTF-8 cannot hide the rest of the messages: the module
    is run again with such text read escaped, and the damage is an error entry of its own
    (README, exit status: a malformed input is an error entry, the run goes on; on this
    clean backup nothing is found, so the status is 0)."""
    root = write_backup(tmp_path / "b", BackupSpec(planted=False))
    _corrupt_sms(root)
    before = _hashes(root)
    out = tmp_path / "out"
    assert main(["check-ios", str(root), "-q", "-f", "json", "-o", str(out), "-j", "1"]) == 0
    assert _hashes(root) == before
    got = _read_back(out)
    status = {m["name"]: m["status"] for m in got["info.json"]["modules"]}  # type: ignore[index]
    assert status["sms"] == "ok"
    damaged = [i for i in got["sms.json"] if i.get("rowid") == 2]  # type: ignore[union-attr,index]
    assert [i["text"] for i in damaged] == ["hi\udced\udca0\udc80"]  # its bytes, escaped
    assert got["report.json"]["summary"]["errors"] >= 1  # type: ignore[index]
    assert "not valid UTF-8" in json.dumps(got["report.json"])


def test_ios_sqlite_text_not_utf8_hides_no_indicator(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The oracle is the same backup undamaged: the messages' findings are the same."""
    plain = write_backup(tmp_path / "plain", BackupSpec(planted=True))
    damaged = write_backup(tmp_path / "damaged", BackupSpec(planted=True))
    _corrupt_sms(damaged)
    status, expected = _sms_findings(plain, capsys)
    assert status == 1
    assert expected
    assert _sms_findings(damaged, capsys) == (1, expected)


def test_records_with_lone_surrogates_render() -> None:
    """A record's time, event and fields holding lone surrogates (any module, any
    platform): its JSON item and timeline row are UTF-8 and read back exactly."""
    recs = [Record("sms", "2023-06-01\ud800", "message \udc80", {"text": "a\ud800b"}),
            Record("sms", "2023-06-01T00:00:00Z", "message", {"text": "plain"})]
    part = module_part("sms", recs, recs[:1])
    items = json.loads(part.records.decode("utf-8"))
    assert [(i["timestamp"], i["event"], i["text"]) for i in items] == [
        ("2023-06-01\ud800", "message \udc80", "a\ud800b"),
        ("2023-06-01 00:00:00.000000", "message", "plain")]
    rows = list(csv.reader(b"".join(Lines.merged([part.lines])).decode("utf-8").splitlines(),
                           escapechar="\\"))
    assert [(r[0], r[2], json.loads(r[3])) for r in rows] == [
        ("2023-06-01 00:00:00.000000", "message", {"text": "plain"}),
        ("2023-06-01\\ud800", "message \\udc80", {"text": "a\ud800b"})]
    assert json.loads(part.detected.decode("utf-8"))[0]["text"] == "a\ud800b"


def test_event_with_lone_surrogate_in_the_batch_path() -> None:
    """Only the event holds one (the time and fields encode in one batch): the same."""
    part = module_part("x", [Record("x", "2023-06-01T00:00:00Z", "e \ud800", {"a": 1})])
    assert json.loads(part.records.decode("utf-8"))[0]["event"] == "e \ud800"
    rows = list(csv.reader([part.lines.rows[0].decode("utf-8")], escapechar="\\"))
    assert rows == [["2023-06-01 00:00:00.000000", "X", "e \\ud800", '{"a":1}']]


def test_ios_sms_link_after_a_nul_is_matched(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """SQLite's LIKE stops at a NUL: a message whose indicator link follows one (a hostile
    sender's way to hide it from a pre-filter) is still matched, as MVT's regular
    expression over the whole text matches it, with and without the timeline."""
    root = write_backup(tmp_path / "b", BackupSpec(planted=False))
    db = next(root.glob(f"*/{file_id('HomeDomain', 'Library/SMS/sms.db')}"))
    con = sqlite3.connect(db)
    con.execute("UPDATE message SET text = 'hi' || char(0) || "
                "'https://free247downloads.com/x' WHERE ROWID = 2")  # (Pegasus)
    con.commit()
    con.close()
    for extra in ([], ["-o", str(tmp_path / "out")]):
        assert main(["check-ios", str(root), "-q", "-f", "json", "-j", "1", *extra]) == 1
        rep = json.loads(capsys.readouterr().out)
        hits = [f for s in rep["subjects"] for f in s["findings"]
                if "free247downloads.com" in f["message"]]
        assert hits, extra
