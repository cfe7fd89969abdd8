"""Golden files of every command's table at 60, 80, 100 and 200 columns.

Each command runs for real on generated evidence (``-f json``); paths and what changes
from run to run (temporary folders, load time, the age of a patch level) are made fixed,
and the saved report is rendered as a table at each width. Besides the golden text: no
line is wider than the terminal, and every rule id is shown whole on one line.

After a deliberate change of the layout: ``SPYWALL_UPDATE_GOLDEN=1 pytest
tests/test_render_golden.py`` rewrites the files; review the diff.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from spywall.cli import main
from spywall.render.table import render
from spywall.report import Report, load_report

GOLDEN = Path(__file__).parent / "golden"
WIDTHS = (60, 80, 100, 200)
BOX = set("┏┃┡│└┗┣┠┝┞┟┢┣┨┩┫┳┻╇╋━─┓┛┘┐┤┼")
SCAN_SAMPLES = ("nested-appended.zip", "cve-2019-11932-double-free.gif",
                "cve-2019-11933-resize.gif", "blastpass-animated.webp", "blastpass.pkpass",
                "benign.jpg", "refinement-flood.jbig2")


def _scan(root: Path) -> list[str]:
    from spywall.samples import all_samples

    folder = root / "attachments"
    folder.mkdir()
    for s in all_samples():
        if s.name in SCAN_SAMPLES:
            (folder / s.name).write_bytes(s.data)
            if s.name == "blastpass-animated.webp":  # and a cut-short copy: an error entry
                (folder / "cut-short.webp").write_bytes(s.data[:60])
    return ["scan", str(folder), "-j", "1"]


def _pcap(root: Path) -> list[str]:
    from spywall.samples.captures import write_all

    paths = write_all(root / "captures")
    keep = [str(p) for p in paths[1:] if p.name.startswith(("campaign-zero-click.pcap",
                                                             "ordinary-call.pcap",
                                                             "fragment-overlap"))]
    return ["pcap", *keep, "--iocs", str(paths[0])]


def _ios(root: Path) -> list[str]:
    from spywall.samples.ios import BackupSpec, write_backup

    return ["check-ios", str(write_backup(root / "backup", BackupSpec(messages=6,
                                                                         history=6))),
            "-j", "1"]


def _android(root: Path) -> list[str]:
    from spywall.samples.android import androidqf_files, write_tree

    return ["check-android", str(write_tree(androidqf_files(True), root / "androidqf"))]


COMMANDS: dict[str, Callable[[Path], list[str]]] = {
    "scan": _scan, "pcap": _pcap, "check-ios": _ios, "check-android": _android,
    "iocs-list": lambda _: ["iocs", "list"], "iocs-stats": lambda _: ["iocs", "stats"],
}


def _fixed(text: str, root: Path) -> Report:
    """The report with what differs between runs made fixed."""
    text = text.replace(str(root), "/evidence")
    text = re.sub(r"(is )\d+( days old)", r"\g<1>999\g<2>", text)
    doc = json.loads(text)
    for src in doc["ioc_sources"]:
        src["path"] = Path(src["path"]).name
    if "load_seconds" in doc["device"]:
        doc["device"]["load_seconds"] = 0.01
    return load_report(json.dumps(doc))


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Report]:
    out: dict[str, Report] = {}
    mp = pytest.MonkeyPatch()
    try:
        for name, argv_of in COMMANDS.items():
            root = tmp_path_factory.mktemp(name)
            buf = io.StringIO()
            mp.setattr("sys.stdout", buf)
            main([*argv_of(root), "-f", "json", "-q"])
            mp.undo()
            out[name] = _fixed(buf.getvalue(), root)
    finally:
        mp.undo()
    return out


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_table_matches_golden(reports: dict[str, Report], monkeypatch: pytest.MonkeyPatch,
                              command: str, width: int) -> None:
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", str(width))
    report = reports[command]
    buf = io.StringIO()
    render(report, buf)
    text = buf.getvalue()
    assert max(len(line) for line in text.splitlines()) <= width
    lines = text.splitlines()
    for line in lines:  # a table row that lost its right border was cropped
        if line[:1] in BOX:
            assert line.rstrip()[-1:] in BOX, line
    for f in report.all_findings():
        assert any(f.rule in line for line in lines), f.rule  # whole, never split
    golden = GOLDEN / f"{command}-{width}.txt"
    if os.environ.get("SPYWALL_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"differs from {golden} (see the module docstring)"
