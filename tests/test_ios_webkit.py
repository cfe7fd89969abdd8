"""check-ios on a dump: the webkit_indexeddb, webkit_localstorage and
webkit_safariviewservice modules (MVT's twins): site names read from the folder names,
folder times against os.stat, names that are not sites, hostile names, skipped
when absent, no duplicate in ``filesystem``, and the result folder's files."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spywall.cli import main
from spywall.iocs import IocIndex
from spywall.ios.check import check_backup, check_dump
from spywall.ios.webkit_folders import origin_url
from spywall.samples.ios import BackupSpec, write_backup
from spywall.samples.ios_fs import APP_UUID, PLANTED_FS, DumpSpec, put_file, write_dump

WEBKIT = ("webkit_indexeddb", "webkit_localstorage", "webkit_safariviewservice")
APP = f"private/var/mobile/Containers/Data/Application/{APP_UUID}"
IDB = f"{APP}/Library/WebKit/WebsiteData/IndexedDB"
SVS = f"{APP}/SystemData/com.apple.SafariViewService/Library/WebKit/WebsiteData"
LOCAL = "private/var/mobile/Library/WebKit/WebsiteData/LocalStorage"


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load(())


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("webkit")
    return {"planted": write_dump(root / "p", DumpSpec(prefix="")),
            "clean": write_dump(root / "c", DumpSpec(planted=False, prefix=""))}


def mtime_iso(path: Path) -> str:
    stamp = datetime.fromtimestamp(int(os.stat(path).st_mtime), UTC)
    return stamp.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(("name", "url"), [
    ("https_www.example.com_0", "https://www.example.com"),
    ("http_example.org_8080.localstorage", "http://example.org"),
    ("https_site-lock.net_0.localstorage", "https://site-lock.net"),
    ("https_a_http_b_0", "https://a"),
    ("httpfoo_bar", "httpfoo"),
    ("https_", "https://"),
])
def test_origin_url(name: str, url: str) -> None:
    assert origin_url(name) == url


def test_records_and_findings(dumps: dict[str, Path], index: IocIndex) -> None:
    out = check_dump(dumps["planted"], index, index.sources)
    recs = {m: out.ctx.records.get(m, []) for m in WEBKIT}
    root = dumps["planted"]
    assert sorted((r.data["folder"], r.data["url"], r.timestamp)
                  for r in recs["webkit_indexeddb"]) == [
        (IDB, f"https://{PLANTED_FS['indexeddb_domain']}", mtime_iso(root / IDB)),
        (IDB, "https://www.example.com", mtime_iso(root / IDB))]
    (svs,) = recs["webkit_safariviewservice"]
    assert svs.data == {"folder": SVS,
                        "url": f"https://{PLANTED_FS['safariviewservice_domain']}"}
    assert svs.event == "webkit_safari_view_service"
    (local,) = recs["webkit_localstorage"]
    assert local.timestamp == mtime_iso(root / LOCAL)
    found = {(f.location.module, f.indicator.matched if f.indicator else "")
             for f in out.report.all_findings() if f.location.module in WEBKIT}
    assert found == {
        ("webkit_indexeddb", f"https://{PLANTED_FS['indexeddb_domain']}"),
        ("webkit_safariviewservice", f"https://{PLANTED_FS['safariviewservice_domain']}"),
        ("webkit_localstorage", f"https://{PLANTED_FS['webkit_domain']}")}
    # filesystem leaves these names to the webkit modules: one finding each
    assert not [f for f in out.report.all_findings()
                if f.location.module == "filesystem" and f.rule == "ioc-domain"]


def test_clean_dump_and_backup(dumps: dict[str, Path], index: IocIndex,
                               tmp_path: Path) -> None:
    out = check_dump(dumps["clean"], index, index.sources)
    assert {m.name: m.status for m in out.report.modules if m.name in WEBKIT} == dict.fromkeys(
        WEBKIT, "ok")
    assert not [f for f in out.report.all_findings() if f.location.module in WEBKIT]
    backup = check_backup(write_backup(tmp_path / "b", BackupSpec()), index, index.sources)
    assert not {m.name for m in backup.report.modules} & set(WEBKIT)  # dump modules only


def test_absent_folders_are_no_data(tmp_path: Path, index: IocIndex) -> None:
    put_file(tmp_path / "private/var/mobile/Library/Preferences/x.plist", b"")
    out = check_dump(tmp_path, index, index.sources)
    mods = {m.name: (m.status, m.message) for m in out.report.modules}
    for name in WEBKIT:
        assert mods[name][0] == "skipped"
        assert mods[name][1].startswith("no data")


def test_names_elsewhere_stay_with_filesystem(tmp_path: Path, index: IocIndex) -> None:
    """A site-named file outside the three folders is still matched, by ``filesystem``;
    a hostile name in a webkit folder is kept exact."""
    put_file(tmp_path / "private/var/mobile/Library/Caches/WebKit"
             / f"https_{PLANTED_FS['webkit_domain']}_0", b"")
    put_file(tmp_path / LOCAL / "https_ev\x1bil\u202e.example_0.localstorage", b"")
    out = check_dump(tmp_path, index, index.sources)
    assert {(f.location.module, f.rule) for f in out.report.all_findings()} == {
        ("filesystem", "ioc-domain")}
    (rec,) = out.ctx.records["webkit_localstorage"]
    assert rec.data["url"] == "https://ev\x1bil\u202e.example"


def test_result_folder(dumps: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["check-ios", str(dumps["planted"]), "-q", "-o", str(out), "-j", "1"]
    for m in WEBKIT:
        args += ["-m", m]
    assert main(args) == 1
    for slug in ("webkit_indexeddb", "webkit_local_storage", "webkit_safari_view_service"):
        recs = json.loads((out / f"{slug}.json").read_text(encoding="utf-8"))
        assert all({"folder", "url", "timestamp"} <= set(r) for r in recs)
        detected = json.loads((out / f"{slug}_detected.json").read_text(encoding="utf-8"))
        assert {a["module"] for a in detected} == {slug}
    timeline = (out / "timeline.csv").read_text(encoding="utf-8")
    for plugin, event in (("WebkitIndexedDB", "webkit_indexeddb"),
                          ("WebkitLocalStorage", "webkit_local_storage"),
                          ("WebkitSafariViewService", "webkit_safari_view_service")):
        assert f'"{plugin}","{event}"' in timeline


@given(st.text(max_size=80))
def test_any_name_gives_a_url(name: str) -> None:
    url = origin_url(name)
    assert "_" not in url.partition("://")[2]
    if name.startswith(("http_", "https_")):
        assert url.startswith(name.partition("_")[0] + "://")


def test_without_timeline_the_dump_findings_are_the_same(dumps: dict[str, Path],
                                                         index: IocIndex) -> None:
    full = check_dump(dumps["planted"], index, index.sources)
    lean = check_dump(dumps["planted"], index, index.sources, timeline=False)
    assert sorted(lean.report.all_findings(), key=repr) == sorted(
        full.report.all_findings(), key=repr)
    # the lean run leaves out the records that carry no finding
    assert len(lean.ctx.records.get("webkit_indexeddb", [])) == 1
    assert len(full.ctx.records["webkit_indexeddb"]) == 2
