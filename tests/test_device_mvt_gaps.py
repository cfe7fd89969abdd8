"""Heuristics MVT 2026.x raises that spywall did not (the audit of issue 12), each at
MVT's level, read from its modules: an app installed by a third-party store (androidqf
packages, information: ``THIRD_PARTY_STORE_INSTALLERS``), a calendar event shaped as
Quadream's exploit invitation (high), an IDStatusCache lookup key holding two NUL
characters (high), a configuration profile whose first payload manages notifications
(medium) and every profile install or removal event (low)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spywall.android.check import MODULES, check_capture
from spywall.cli import exit_status
from spywall.iocs import IocIndex
from spywall.report import Finding, Severity
from spywall.rulebook import rulebook
from spywall.samples import android as gen


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load()


def _package(name: str, installer: str | None, system: bool = False) -> dict[str, object]:
    # as androidqf writes a package: "null" (a string) when Android recorded no installer
    return {"name": name, "installer": installer or "null", "uid": 10200, "disabled": False,
            "system": system, "third_party": not system, "files": []}


def _check_packages(tmp: Path, index: IocIndex, pkgs: list[dict[str, object]]
                    ) -> list[Finding]:
    files = gen.androidqf_files(False, with_bugreport=False)
    files["packages.json"] = json.dumps(pkgs, indent=1).encode()
    mods = [m for m in MODULES if m.name == "packages"]
    out = check_capture(gen.write_tree(files, tmp / "qf"), index, modules=mods)
    return out.report.all_findings()


# installer -> the rule MVT's androidqf packages module raises for a non-system app
INSTALLS = {
    "org.fdroid.fdroid": "android-third-party-store-app",
    "com.aurora.store": "android-third-party-store-app",
    "com.google.android.packageinstaller": "android-sideloaded-app",
    None: "android-sideloaded-app",
    "com.android.vending": None,
}


def test_third_party_store_is_info(tmp_path: Path, index: IocIndex) -> None:
    pkgs = [_package(f"org.example.app{i}", inst) for i, inst in enumerate(INSTALLS)]
    # a system app that a store updated is still from that store (MVT does not look at
    # the system flag for stores)
    pkgs.append(_package("org.example.sys", "org.fdroid.fdroid", system=True))
    found = _check_packages(tmp_path, index, pkgs)
    by_pkg = {(str(f.detail.get("package")), f.rule): f for f in found}
    for i, (installer, rule) in enumerate(INSTALLS.items()):
        rules = {r for p, r in by_pkg if p == f"org.example.app{i}"}
        assert rules == ({rule} if rule else set()), installer
    assert ("org.example.sys", "android-third-party-store-app") in by_pkg
    infos = [f for f in found if f.rule == "android-third-party-store-app"]
    assert {f.severity for f in infos} == {Severity.INFO}
    assert {str(f.detail["installer"]) for f in infos} == {"org.fdroid.fdroid",
                                                           "com.aurora.store"}
    assert rulebook()["android-third-party-store-app"].severity is Severity.INFO


def test_info_alone_is_not_found(tmp_path: Path, index: IocIndex) -> None:
    """A phone whose only finding is an F-Droid app exits 0 (said, not "found"); with a
    sideloaded app too it exits 1."""
    only = _check_packages(tmp_path / "a", index, [_package("org.example.a", "org.fdroid.fdroid")])
    assert [f.rule for f in only] == ["android-third-party-store-app"]
    files = gen.androidqf_files(False, with_bugreport=False)
    files["packages.json"] = json.dumps([_package("org.example.a", "org.fdroid.fdroid")]).encode()
    mods = [m for m in MODULES if m.name == "packages"]
    report = check_capture(gen.write_tree(files, tmp_path / "b"), index, modules=mods).report
    assert exit_status(report.finalize()) == 0
    files["packages.json"] = json.dumps([_package("org.example.a", "org.fdroid.fdroid"),
                                         _package("org.example.b", None)]).encode()
    report = check_capture(gen.write_tree(files, tmp_path / "c"), index, modules=mods).report
    assert exit_status(report.finalize()) == 1
