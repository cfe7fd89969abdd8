"""Every command honours -f or refuses it; ``-`` is standard input for ``render``; the
table's summary line and layout (grouped by input, most severe first, problems apart and
an input with a finding shown once)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spywall.cli import main
from spywall.render.table import relative, render
from spywall.report import ErrorEntry, Finding, FindingKind, Report, Severity, Subject, dump_json

Cap = pytest.CaptureFixture[str]


def _finding(path: str, severity: Severity, rule: str,
             kind: FindingKind = FindingKind.EXPLOIT) -> Finding:
    return Finding(rule=rule, title=rule, kind=kind, severity=severity, message=f"{rule} here",
                   path=path)


def _report() -> Report:
    mild = Subject(path="in/mild.gif", findings=[_finding("in/mild.gif", Severity.MEDIUM,
                                                          "gif-frame-resize",
                                                          FindingKind.HEURISTIC)])
    bad = Subject(path="in/bad.pdf",
                  findings=[_finding("in/bad.pdf!/obj 6", Severity.HIGH, "rule-high"),
                            _finding("in/bad.pdf!/obj 7", Severity.CRITICAL, "rule-crit")],
                  errors=[ErrorEntry(path="in/bad.pdf!/obj 6", code="malformed",
                                     message="prefix code rejected")])
    broken = Subject(path="in/broken.webp",
                     errors=[ErrorEntry(path="in/broken.webp", code="truncated",
                                        message="RIFF size 16 runs past the end")])
    return Report(tool_version="0", command="scan", started=datetime(2026, 1, 1, tzinfo=UTC),
                  subjects=[mild, bad, broken]).finalize()


@pytest.mark.parametrize("fmt", ["table", "sarif"])
def test_schema_refuses_formats_it_cannot_give(capsys: Cap, fmt: str) -> None:
    assert main(["schema", "-f", fmt]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "JSON only" in err
    assert main(["schema", "-f", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["title"].startswith("spywall report")


def test_render_reads_standard_input() -> None:
    proc = subprocess.run([sys.executable, "-m", "spywall", "render", "-", "-f", "json"],
                          input=dump_json(_report()).encode(), capture_output=True,
                          check=False)
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == json.loads(dump_json(_report()))


def test_table_layout_and_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    buf = io.StringIO()
    render(_report(), buf)
    text = buf.getvalue()
    # inputs with findings, most severe first; in one input, most severe first
    assert "Inputs under in (paths below are relative to it)" in text
    assert text.index("bad.pdf: 2 finding(s)") < text.index("mild.gif: 1 finding(s)")
    assert text.index("rule-crit") < text.index("rule-high")
    assert "obj 7" in text  # the place, relative to the input
    # the malformed part of an input that carries a finding there: shown once, as it
    assert "prefix code rejected" not in text
    assert "ends before its structure does" in text  # the problem in words
    assert ("scan: 3 inputs examined; 1 carries known exploit structures; 1 looks unusual; "
            "1 could not be examined completely (3 finding(s)): FOUND") in text
    assert "Lockdown Mode" in text
    assert "Digital Security Helpline" in text


def test_inputs_root() -> None:
    from spywall.render.table import inputs_root, shown

    report = _report()
    assert inputs_root(report) == "in"
    assert shown("in/a/b.gif", "in") == "a/b.gif"
    assert shown("other/b.gif", "in") == "other/b.gif"
    report.subjects = [Subject(path="/evidence/backup")]
    assert inputs_root(report) == "/evidence"
    report.subjects = [Subject(path="-")]
    assert inputs_root(report) == ""


def test_relative() -> None:
    assert relative("a/b.zip!/c/d.jpg", "a/b.zip") == "c/d.jpg"
    assert relative("a/b/c.db", "a/b") == "c.db"
    assert relative("a/b", "a/b") == "."
    assert relative("x/y", "a/b") == "x/y"


def test_problems_of_one_place_in_one_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    report = _report()
    report.subjects.append(Subject(path="in/d.pdf", errors=[
        ErrorEntry(path="in/d.pdf", code="malformed", message=m)
        for m in ("qpdf: file is damaged", "qpdf: can't find startxref",
                  "qpdf: file is damaged")]))
    buf = io.StringIO()
    render(report.finalize(), buf)
    text = buf.getvalue()
    assert text.count(" d.pdf ") == 1
    assert ("the PDF library (qpdf) reported: file is damaged; can't find startxref"
            in text)
    assert "1 more at places reported above as findings" in text


def test_calls_name_their_capture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: Cap) -> None:
    from spywall.samples.captures import write_all

    paths = write_all(tmp_path)
    twins = [str(p) for p in paths if p.name.startswith("campaign-zero-click")]
    assert main(["pcap", *twins, "--iocs", str(paths[0]), "-f", "json", "-q"]) == 1
    calls = json.loads(capsys.readouterr().out)["calls"]
    assert sorted(c["path"] for c in calls) == sorted(twins)
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["pcap", *twins, "--iocs", str(paths[0]), "-f", "table", "-q"]) == 1
    out = capsys.readouterr().out
    assert "campaign-zero-click.pcap " in out
    assert "campaign-zero-click-sll2.pcapng " in out


def test_clean_but_incomplete_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    report = _report()
    report.subjects = [s for s in report.subjects if not s.findings]
    buf = io.StringIO()
    render(report.finalize(), buf)
    assert ("scan: 1 input examined; 1 could not be examined completely (0 finding(s)): "
            "nothing found in what could be examined") in buf.getvalue()
