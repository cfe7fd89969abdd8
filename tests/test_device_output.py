"""The results folder as MVT's users read it: <module>_detected.json holds alerts, times
with microseconds in MVT's form, Plugin names, TCC fields, command.log, and a re-run
that leaves no file of the earlier run behind."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from spywall.cli import main
from spywall.samples.ios import BackupSpec, write_backup

ALERT_KEYS = {"level", "module", "message", "event_time", "event", "matched_indicator"}


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("out")
    backup = write_backup(root / "b", BackupSpec())
    out = root / "results"
    assert main(["check-ios", str(backup), "-q", "-o", str(out), "-j", "1"]) == 1
    return backup, out


def test_detected_files_hold_alerts(result: tuple[Path, Path]) -> None:
    _, out = result
    alerts = json.loads((out / "alerts.json").read_text())
    for path in out.glob("*_detected.json"):
        found = json.loads(path.read_text())
        module = path.name.removesuffix("_detected.json")
        assert found == [a for a in alerts if a["module"] == module]
        assert all(set(a) >= ALERT_KEYS for a in found)
    sms = json.loads((out / "sms_detected.json").read_text())
    assert {a["level"] for a in sms} >= {"HIGH"}
    assert any(a["event"].get("links") for a in sms)  # the record the alert is about


def test_times_and_plugins_as_mvt_writes_them(result: tuple[Path, Path]) -> None:
    _, out = result
    rows = list(csv.reader((out / "timeline.csv").open(encoding="utf-8")))
    assert rows[0] == ["UTC Timestamp", "Plugin", "Event", "Description"]
    stamps = [r[0] for r in rows[1:]]
    assert stamps == sorted(stamps)
    assert all(len(s) == 26 and s[10] == " " and s[19] == "." for s in stamps)
    plugins = {r[1] for r in rows[1:]}
    assert {"SMS", "SafariHistory", "TCC", "Datausage", "ChromeHistory"} <= plugins
    alerts = json.loads((out / "alerts.json").read_text())
    timed = [a["event_time"] for a in alerts if a["event_time"]]
    assert timed
    assert all(len(t) == 26 for t in timed)


def test_tcc_fields(result: tuple[Path, Path]) -> None:
    _, out = result
    tcc = json.loads((out / "tcc.json").read_text())
    assert {(r["service"], r["client_type"], r["auth_value"], r["auth_reason_desc"])
            for r in tcc} == {("kTCCServiceCamera", "bundle_id", "allowed", "user_consent"),
                              ("kTCCServiceMicrophone", "bundle_id", "allowed", "user_consent")}


def test_command_log(result: tuple[Path, Path]) -> None:
    backup, out = result
    log = (out / "command.log").read_text().splitlines()
    assert log[0].endswith(f"check-ios {backup}")
    assert "module sms: ok, " in "\n".join(log)
    alerts = json.loads((out / "alerts.json").read_text())
    assert sum(1 for line in log if " alert from " in line) == len(alerts)
    assert log[-1].endswith(f"finished: {len(alerts)} alert(s)")


def test_rerun_leaves_no_stale_files(tmp_path: Path) -> None:
    planted = write_backup(tmp_path / "p", BackupSpec())
    clean = write_backup(tmp_path / "c", BackupSpec(planted=False))
    out = tmp_path / "results"
    main(["check-ios", str(planted), "-q", "-o", str(out), "-j", "1"])
    assert (out / "sms_detected.json").exists()
    (out / "notes.txt").write_text("mine")  # not spywall's: never touched
    assert main(["check-ios", str(clean), "-q", "-o", str(out), "-j", "1"]) == 0
    # (only the clean phone's Lockdown Mode, information)
    assert [p.name for p in out.glob("*_detected.json")] == ["global_preferences_detected.json"]
    assert [a["level"] for a in json.loads((out / "alerts.json").read_text())] == [
        "INFORMATIONAL"]
    assert (out / "notes.txt").read_text() == "mine"
    info = json.loads((out / "info.json").read_text())
    assert sorted(p.name for p in out.iterdir() if p.name != "notes.txt") == info["files"]
    assert "removed" in (out / "command.log").read_text()


def test_timeline_rows_are_the_module_files_records(result: tuple[Path, Path]) -> None:
    """Read back by the csv and json modules: timeline.csv holds one row for each timed
    record of every <module>.json (its time, Plugin, event, and its fields as the
    Description), in time order, and nothing else."""
    _, out = result
    rows = list(csv.reader((out / "timeline.csv").open(encoding="utf-8", newline=""),
                           escapechar="\\"))[1:]
    info = json.loads((out / "info.json").read_text())
    header = {"timestamp", "module", "event"}
    want = []
    for name in info["files"]:
        if not name.endswith(".json") or name.endswith("_detected.json") or name in (
                "alerts.json", "info.json", "report.json"):
            continue
        for rec in json.loads((out / name).read_text()):
            if rec["timestamp"]:
                fields = {k: v for k, v in rec.items() if k not in header}
                want.append((rec["timestamp"], rec["module"], rec["event"], fields))
    got = [(r[0], r[2], json.loads(r[3])) for r in rows]
    assert sorted(got, key=repr) == sorted([(t, e, f) for t, _, e, f in want], key=repr)
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert {r[1] for r in rows} >= {"SMS", "SafariHistory"}


def test_a_file_that_cannot_be_written_fails_the_folder(tmp_path: Path) -> None:
    """The files are written by two threads: an error in either (a folder where a file
    goes) is raised to the caller, not lost, and the files about the run (info.json,
    which lists what the run wrote) are not written."""
    from spywall.commands.common import new_report
    from spywall.device.output import write_mvt_outputs

    out = tmp_path / "results"
    (out / "alerts.json").mkdir(parents=True)
    with pytest.raises(IsADirectoryError):
        write_mvt_outputs(new_report("check-ios").finalize(), [], out)
    assert not (out / "info.json").exists()
