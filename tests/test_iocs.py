"""IocIndex: loading files/folders/bundled sets and every match method."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.errors import InputError
from spywall.iocs import KINDS, Indicator, IocIndex, bundled_dir
from spywall.report import FindingKind, Severity


def _write_bundle(path: Path, name: str, patterns: list[str]) -> Path:
    objs: list[dict[str, object]] = [{"type": "malware", "id": "malware--m", "name": name}]
    for i, p in enumerate(patterns):
        objs += [{"type": "indicator", "id": f"indicator--{i}", "pattern": p},
                 {"type": "relationship", "relationship_type": "indicates",
                  "source_ref": f"indicator--{i}", "target_ref": "malware--m"}]
    path.write_text(json.dumps({"type": "bundle", "objects": objs}))
    return path


@pytest.fixture(scope="module")
def bundled() -> IocIndex:
    return IocIndex.load()


@pytest.fixture
def custom(tmp_path: Path) -> IocIndex:
    _write_bundle(tmp_path / "t.stix2", "Evil", [
        "[domain-name:value = 'evil.com']",
        "[domain-name:value = 'pathy.example/x']",
        "[domain-name:value = 'bücher.example']",
        "[ipv4-addr:value = '10.1.0.0/16' OR ipv6-addr:value = '2001:db8::/32']",
        "[ipv4-addr:value = '192.0.2.7']",
        "[ipv6-addr:value = '2001:DB9::1']",
        "[url:value = 'https://Host.example/Path?q=1']",
        "[email-addr:value = 'Bad@Evil.com']",
        "[process:name = 'averyveryverylongprocessname']",
        "[process:name = 'shortname']",
        "[process:name = 'exactly15chars_']",
        "[file:path = '/data/local/tmp/evil']",
        "[file:name = 'evil.plist']",
        "[file:hashes.'SHA-256' = '" + "AB" * 32 + "']",
        "[file:hashes.sha1 = '" + "cd" * 20 + "']",
        "[file:hashes.md5 = '" + "ef" * 16 + "']",
        "[app:id = 'com.evil.app']",
        "[app:cert.sha256 = '" + "12" * 32 + "']",
        "[configuration-profile:id = 'AAAA-BBBB']",
        "[android-property:name = 'persist.evil.flag']",
    ])
    return IocIndex.load([tmp_path])


def test_bundled_sets_load(bundled: IocIndex) -> None:
    names = {Path(s.path).name for s in bundled.sources}
    assert {"amnesty_pegasus.stix2", "amnesty_novispy.stix2", "mvtind_predator.stix2",
            "amnesty_nso_2018_indicators.csv"} <= names
    assert len(bundled) > 5000
    assert not bundled.unsupported
    assert all(len(s.sha256) == 64 and s.indicators > 0 for s in bundled.sources)
    kinds = {i.kind for i in bundled.indicators}
    assert {"domain", "ipv4", "process", "email", "file_name", "file_path", "sha256", "app_id",
            "app_cert", "config_profile", "android_property"} <= kinds
    assert kinds <= set(KINDS)


def test_bundled_known_values(bundled: IocIndex) -> None:
    assert bundled.match_url("https://fgr1w2gnsdvsb.xyz/x")[0].collection == "Coruna"
    assert {i.collection for i in bundled.match_app_id("com.adobe.flash.jni")} == {
        "WyrmSpy_DragonEgg"}
    assert [i.collection for i in bundled.match_process("bh")] == ["Pegasus"]
    assert bundled.match_host("176.223.111.131")[0].collection == "NoviSpy"
    assert bundled.match_file_path("/private/var/tmp/relaunch")[0].collection == "Coruna"


@pytest.mark.parametrize(("kind", "value", "hit"), [
    ("domain", "evil.com", True), ("domain", "a.b.EVIL.com.", True),
    ("domain", "notevil.com", False), ("domain", "evil.com.au", False),
    ("host", "x.evil.com:443", True), ("host", "[2001:db8::5]", True),
    ("host", "10.1.200.3", True), ("host", "10.2.0.1", False),
    ("host", "192.0.2.7", True), ("host", "192.0.2.8", False),
    ("ipv6", "2001:db9:0::1", True), ("ipv4", "not-an-ip", False),
    ("url", "https://host.EXAMPLE/Path?q=1", True), ("url", "https://host.example/path?q=1", False),
    ("url", "http://host.example/Path?q=1", True), ("url", "host.example/Path?q=1", True),
    ("url", "https://pathy.example/x", True), ("url", "https://pathy.example/y", False),
    ("domain", "pathy.example", False), ("domain", "xn--bcher-kva.example", True),
    ("domain", "www.BÜCHER.example", True),
    ("url", "sub.evil.com/whatever", True), ("url", "http://user@evil.com:8080/x", True),
    ("url", "::::///", False), ("url", "http://[2001:db8::1]/", True),
    ("email", "mailto:bad@evil.COM", True), ("email", "good@evil.com", False),
    ("process", "shortname", True), ("process", "averyveryverylo", True),
    ("process", "averyveryverylon", True), ("process", "averyveryver", False),
    ("process", "exactly15chars_andmore", True), ("process", "shortnam", False),
    ("file_path", "/data/local/tmp/evil", True), ("file_path", "/data/local/tmp/evil/x/y", True),
    ("file_path", "/data/local/tmp/evilx", False), ("file_path", "/data/local/tmp", False),
    ("file_name", "evil.plist", True),
    ("sha256", "ab" * 32, True), ("hash", "CD" * 20, True), ("md5", "ef" * 16, True),
    ("hash", "ab" * 31, False),
    ("app_id", "com.evil.app", True), ("app_id", "com.evil", False),
    ("app_cert", ":".join(["12"] * 32), True),
    ("config_profile", "aaaa-bbbb", True),
    ("android_property", "persist.evil.flag", True), ("android_property", "persist.evil", False),
])
def test_match_table(custom: IocIndex, kind: str, value: str, hit: bool) -> None:
    got = custom.match(kind, value)
    assert bool(got) is hit, got
    assert all(isinstance(i, Indicator) and i.collection == "Evil" for i in got)


def test_unknown_kind_and_huge_query(custom: IocIndex) -> None:
    with pytest.raises(ValueError):
        custom.match("nope", "x")
    assert custom.match("domain", "evil.com" + "." * 10_000) == []


def test_finding_shape(custom: IocIndex) -> None:
    ind = custom.match_domain("evil.com")[0]
    f = custom.finding(ind, "www.evil.com", path="cap", rule="android.packages", title="t",
                       message="m")
    assert f.kind is FindingKind.INDICATOR
    assert f.severity is Severity.HIGH
    assert f.indicator is not None
    assert (f.indicator.ioc_type, f.indicator.value, f.indicator.matched,
            f.indicator.collection, f.indicator.source) == (
        "domain-name:value", "evil.com", "www.evil.com", "Evil", "t.stix2")


def test_duplicates_across_files_kept_once(tmp_path: Path) -> None:
    a = _write_bundle(tmp_path / "a.stix2", "Evil", ["[domain-name:value = 'x.com']"])
    b = _write_bundle(tmp_path / "b.stix2", "Evil", ["[domain-name:value = 'X.com']"])
    c = _write_bundle(tmp_path / "c.stix2", "Other", ["[domain-name:value = 'x.com']"])
    ix = IocIndex.load([a, b, c])
    assert [i.source for i in ix.match_domain("x.com")] == ["a.stix2", "c.stix2"]
    assert [s.indicators for s in ix.sources] == [1, 1, 1]


@pytest.mark.parametrize("bad", ["missing.stix2", "emptydir", "notjson.stix2"])
def test_bad_paths_raise_input_error(tmp_path: Path, bad: str) -> None:
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "notjson.stix2").write_text("hello")
    with pytest.raises(InputError):
        IocIndex.load([tmp_path / bad])


def test_bundled_dir_has_notice() -> None:
    text = (bundled_dir() / "NOTICE.md").read_text()
    assert "3d8f248a0d015f183724ae7d096a5c46a8bb5fc7" in text
    assert "CC-BY" in text


_KINDS = st.sampled_from([*KINDS, "host", "hash"])


@settings(max_examples=400, deadline=None)
@given(_KINDS, st.text(max_size=300))
def test_match_never_raises(kind: str, value: str) -> None:
    index = _PROPERTY_INDEX
    got = index.match(kind, value)
    assert all(isinstance(i, Indicator) for i in got)


_PROPERTY_INDEX = IocIndex.load()


def test_app_ids_and_properties_match_whatever_their_case(tmp_path: Path) -> None:
    """MVT compares app ids and Android property names case-insensitively (and process
    and file names exactly): the same here; the indicator keeps its spelling."""
    idx = IocIndex.load([_write_bundle(tmp_path / "c.stix2", "Caps", [
        "[app:id='com.Client.AppA']", "[android-property:name='Persist.Vendor.X']",
        "[process:name='Kworker9']"])])
    assert [i.value for i in idx.match("app_id", "com.client.appa")] == ["com.Client.AppA"]
    assert [i.value for i in idx.match("app_id", "COM.CLIENT.APPA")] == ["com.Client.AppA"]
    assert [i.value for i in idx.match("android_property", "persist.vendor.x")] == [
        "Persist.Vendor.X"]
    assert idx.match("app_id", "com.client.appb") == []
    assert idx.match("process", "kworker9") == []
    assert [i.value for i in idx.match("process", "Kworker9")] == ["Kworker9"]
