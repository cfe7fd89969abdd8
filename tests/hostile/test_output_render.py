"""``spywall render`` of a saved report whose every string is hostile; a renderer that
fails never loses the report; a closed pipe ends the run quietly; names that are not
UTF-8."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from output_hostile import MARKUP, TAIL, assert_no_raw, assert_safe, assert_shown_escaped, run

from spywall.report import (
    CallSummary,
    ErrorEntry,
    Finding,
    FindingKind,
    IndicatorMatch,
    IocSource,
    Location,
    ModuleRun,
    Report,
    Severity,
    Subject,
    dump_json,
)

Cap = pytest.CaptureFixture[str]
MP = pytest.MonkeyPatch
H = MARKUP + TAIL


def hostile_report(findings: int = 1) -> Report:
    """A report with the hostile string in every string field a table shows."""
    match = IndicatorMatch(ioc_type="domain-name:value", value=H, matched=H, collection=H,
                           source=H)
    found = [Finding(rule=f"rule{H}", title=H, kind=kind, severity=Severity.CRITICAL,
                     message=H, path=f"/e/{H}!/{H}", cves=[H], references=[H],
                     location=Location(module=H, record=H, offset=7), indicator=match,
                     detail={H: H})
             for kind in FindingKind for _ in range(findings)]
    report = Report(
        tool_version="0", command="scan", started=datetime(2026, 1, 1, tzinfo=UTC),
        ioc_sources=[IocSource(path=H, sha256="0" * 64, indicators=1, collections=[H])],
        subjects=[Subject(path=H, format=H, findings=found,
                          errors=[ErrorEntry(path=H, code=H, message=H)])],
        calls=[CallSummary(call_id=H, caller=H, callee=H, state=H, first_frame=1,
                           last_frame=2)],
        modules=[ModuleRun(name=H, status=H, message=H)], device={H: H},
        errors=[ErrorEntry(path=H, code="malformed", message=H)])
    return report.finalize()


@pytest.mark.parametrize("command", ["scan", "check-ios", "iocs list"])
def test_every_field_is_shown_escaped(tmp_path: Path, capsys: Cap, monkeypatch: MP,
                                      command: str) -> None:
    report = hostile_report()
    report.command = command  # the table's sections differ per command
    saved = tmp_path / "r.json"
    saved.write_text(dump_json(report))
    code, out, err = run(capsys, monkeypatch, ["render", str(saved), "-f", "table"])
    assert code == 1
    assert err == ""
    assert_safe(out)
    assert_shown_escaped(out)
    assert ("FOUND" in out) != command.startswith("iocs")  # iocs: no verdict line
    code, again, _ = run(capsys, monkeypatch, ["render", str(saved), "-f", "json"])
    assert code == 1
    assert json.loads(again) == json.loads(saved.read_text())


def test_a_failing_renderer_still_gives_the_report(tmp_path: Path, capsys: Cap,
                                                   monkeypatch: MP) -> None:
    saved = tmp_path / "r.json"
    saved.write_text(dump_json(hostile_report()))

    def broken(report: Report, out: object) -> None:
        raise RuntimeError(f"renderer bug {H}")

    monkeypatch.setitem(sys.modules["spywall.render"].RENDERERS, "table", broken)
    code, out, err = run(capsys, monkeypatch, ["render", str(saved), "-f", "table"])
    assert code == 1  # the exit status of the report, unchanged
    assert json.loads(out) == json.loads(saved.read_text())
    assert "table output failed" in err
    assert_safe(err)


def test_names_that_are_not_utf8(tmp_path: Path, capsys: Cap, monkeypatch: MP) -> None:
    from spywall.samples.containers import jpeg, zip_of

    raw = tmp_path.as_posix().encode() + b"/bad\xff\x1b[2Jname.jpg"
    with open(raw, "wb") as fh:
        fh.write(jpeg() + zip_of({"stage.so": b"\x7fELF" + bytes(40)}))
    name = raw.decode("utf-8", "surrogateescape")
    code, out, err = run(capsys, monkeypatch, ["scan", str(tmp_path), "-f", "table",
                                               "-j", "1"])
    assert code == 1
    assert_safe(out)
    assert_safe(err)
    assert "bad\\xff\\x1b[2Jname.jpg" in out  # the undecodable byte shown as \xff
    code, out, err = run(capsys, monkeypatch, ["scan", str(tmp_path), "-f", "json", "-q",
                                               "-j", "1"])
    assert (code, err) == (1, "")
    assert json.loads(out)["subjects"][0]["path"] == name  # exact, as JSON escapes


def test_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    saved = tmp_path / "r.json"
    saved.write_text(dump_json(hostile_report(findings=300)))  # far more than a pipe holds
    assert saved.stat().st_size > 1 << 20
    # unbuffered, a text stream drops the rest of a write the pipe cut short, silently
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    for fmt in ("json", "table", "sarif"):
        proc = subprocess.Popen([sys.executable, "-m", "spywall", "render", str(saved),
                                 "-f", fmt], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env)
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.read(10)
        proc.stdout.close()  # as `| head -c 10` does
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 141, err
        assert err == b"", err


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_label_is_plain_text(monkeypatch: MP) -> None:
    from spywall.commands.common import progress

    monkeypatch.setenv("FORCE_COLOR", "1")
    err = _Tty()
    monkeypatch.setattr(sys, "stderr", err)
    with progress(2, f"{MARKUP}{TAIL}.pcap") as bar:
        assert bar is not None
        bar.advance(bar.task_ids[0])
        bar.refresh()
    text = err.getvalue()
    assert_no_raw(text)
    assert "[/x][bold green]CLEAN" in text
