"""The alert level of each device heuristic that MVT raises too is MVT's (a drop-in: the
same phone gives the same levels in alerts.json), in the findings, in the rule book
(``spywall explain``) and in the result folder.

The levels are MVT 2026.x's, read from its modules: a usage row whose process record is
gone ("manipulated process entry", ios/modules/net_base.py) high; a file under
/data/local/tmp/ (androidqf files, "suspicious path") high, executable or not; a
non-system app installed with no installer or by the package installer (androidqf
packages) medium; a disabled security or system-update package medium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spywall.android.check import MODULES, check_capture
from spywall.iocs import IocIndex
from spywall.ios.check import check_backup
from spywall.report import Finding, Severity
from spywall.rulebook import rulebook
from spywall.samples import android as gen
from spywall.samples.ios import BackupSpec, write_backup

MVT_LEVELS = {
    "ios-datausage-orphan-usage": Severity.HIGH,
    "android-tmp-executable": Severity.HIGH,
    "android-tmp-file": Severity.HIGH,
    "android-sideloaded-app": Severity.MEDIUM,
    "android-protection-app-disabled": Severity.MEDIUM,
}


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load()


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory, index: IocIndex) -> list[Finding]:
    tmp = tmp_path_factory.mktemp("levels")
    out = list(check_backup(write_backup(tmp / "b", BackupSpec()), index).report
               .all_findings())
    files = gen.androidqf_files(True, with_bugreport=False)
    entries = json.loads(files["files.json"])
    entries.append({"path": "/data/local/tmp/notes.txt", "size": 3, "mode": "-rw-rw-rw-"})
    files["files.json"] = json.dumps(entries).encode()
    pkgs = json.loads(files["packages.json"])
    pkgs.append({"name": "com.wssyncmldm", "installer": "null", "uid": 1000,
                 "disabled": True, "system": True, "third_party": False, "files": []})
    files["packages.json"] = json.dumps(pkgs).encode()
    mods = [m for m in MODULES if m.name in ("files", "packages")]
    out += check_capture(gen.write_tree(files, tmp / "qf"), index, modules=mods).report \
        .all_findings()
    return out


@pytest.mark.parametrize(("rule", "level"), list(MVT_LEVELS.items()))
def test_levels_are_mvts(rule: str, level: Severity, findings: list[Finding]) -> None:
    got = {f.severity for f in findings if f.rule == rule}
    assert got == {level}, rule
    assert rulebook()[rule].severity is level


def test_result_folder_levels(tmp_path: Path, index: IocIndex) -> None:
    from spywall.device.output import write_mvt_outputs

    out = check_backup(write_backup(tmp_path / "b", BackupSpec()), index, render=True)
    assert out.ctx.parts is not None
    write_mvt_outputs(out.report, out.ctx.parts, tmp_path / "r")
    alerts = json.loads((tmp_path / "r" / "alerts.json").read_text())
    assert {a["level"] for a in alerts if a["rule"] == "ios-datausage-orphan-usage"} == {"HIGH"}
