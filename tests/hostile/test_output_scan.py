"""``spywall scan`` with hostile file and member names: reported, shown escaped, exact in
JSON, on standard output and in the log lines on standard error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from output_hostile import (
    MARKUP,
    RICH_SGR,
    TAIL,
    assert_no_raw,
    assert_safe,
    assert_shown_escaped,
    hostile_path,
    run,
)

from spywall.cli import main
from spywall.samples.containers import jpeg, zip_of

Cap = pytest.CaptureFixture[str]
MP = pytest.MonkeyPatch


def _evidence(tmp_path: Path) -> Path:
    # a member name may hold "/": the whole markup, escapes and a newline
    stage = zip_of({f"lib/{MARKUP}{TAIL}.so": b"\x7fELF" + bytes(40)})
    bad = hostile_path(tmp_path / "in", ".jpg")
    bad.write_bytes(jpeg() + stage)
    (bad.parent / f"inner{TAIL}.zip").write_bytes(zip_of({f"{MARKUP}{TAIL}.jpg":
                                                          jpeg() + stage}))
    return bad


def test_table_and_log_lines_are_safe(tmp_path: Path, capsys: Cap, monkeypatch: MP) -> None:
    bad = _evidence(tmp_path)
    code, out, err = run(capsys, monkeypatch, ["scan", str(tmp_path / "in"), "-f", "table",
                                               "-j", "1"])
    assert code == 1
    assert_safe(out)
    assert_safe(err)
    assert_shown_escaped(out)
    assert "appended-archive" in out
    assert "FOUND" in out
    assert "finding(s)" in err  # the log line names the file, escaped
    assert_shown_escaped(err)
    assert str(bad) not in out  # the raw name never: only its escaped form


def test_json_keeps_the_exact_names(tmp_path: Path, capsys: Cap, monkeypatch: MP) -> None:
    bad = _evidence(tmp_path)
    code, out, _ = run(capsys, monkeypatch, ["scan", str(tmp_path / "in"), "-f", "json",
                                             "-j", "1"])
    assert code == 1
    report = json.loads(out)
    paths = {f["path"] for s in report["subjects"] for f in s["findings"]}
    assert str(bad) in paths
    inner = f"{bad.parent / f'inner{TAIL}.zip'}!/{MARKUP}{TAIL}.jpg"
    assert inner in paths


def test_sarif_and_quiet_table(tmp_path: Path, capsys: Cap, monkeypatch: MP) -> None:
    _evidence(tmp_path)
    code, out, err = run(capsys, monkeypatch, ["scan", str(tmp_path / "in"), "-f", "sarif",
                                               "-q", "-j", "1"])
    assert (code, err) == (1, "")
    assert_no_raw(out)
    rules = {r["ruleId"] for r in json.loads(out)["runs"][0]["results"]}
    assert "appended-archive" in rules
    code, out, err = run(capsys, monkeypatch, ["scan", str(tmp_path / "in"), "-q", "-j", "1",
                                               "-f", "table"])
    assert (code, err) == (1, "")
    assert_safe(out)
    assert "appended-archive" in out


def test_narrow_terminal(tmp_path: Path, capsys: Cap, monkeypatch: MP) -> None:
    """Under 100 columns the findings take two columns: the same escaping."""
    _evidence(tmp_path)
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "60")
    code = main(["scan", str(tmp_path / "in"), "-f", "table", "-j", "1"])
    out, err = capsys.readouterr()
    assert code == 1
    assert_no_raw(out)
    assert_no_raw(err)
    assert "\x1b" not in RICH_SGR.sub("", out)
    assert "appended-archive" in out
    assert max(len(RICH_SGR.sub("", line)) for line in out.splitlines()) <= 60
