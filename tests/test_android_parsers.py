"""Android artifact parsers: known forms, odd forms, and hostile input (hypothesis)."""

from __future__ import annotations

import contextlib
import io
import json
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spywall.android import backup, dumpsys, qf
from spywall.android import dumpstate as ds
from spywall.android.capture import ZipSource, from_source
from spywall.android.check import MODULES
from spywall.android.common import iso_any
from spywall.device.base import CheckContext
from spywall.device.runner import run_modules
from spywall.errors import SpywallError
from spywall.iocs import IocIndex
from spywall.limits import Budget, Limits
from spywall.report import Subject, dump_json
from spywall.samples import android as gen


def test_dumpstate_sections() -> None:
    text = gen.dumpstate(True)
    props = ds.system_properties(text)
    assert props is not None
    assert props["sys.brand.note"] == "1"
    assert props["ro.product.model"] == "Pixel 6"
    pkgs = {p.name: p for p in ds.packages(text) or []}
    assert set(pkgs) == {a for a, _, _ in gen._apps(True)}
    assert pkgs["com.serv.services"].installer == "com.google.android.packageinstaller"
    assert pkgs["com.android.systemui"].system
    assert not pkgs["com.whatsapp"].system
    assert ds.packages("no such section") is None
    assert ds.system_properties("nothing") is None


def test_battery_history_events() -> None:
    body = ds.section(gen.dumpstate(True), "DUMP OF SERVICE batterystats:") or ""
    events = [(e.event, e.package) for e in dumpsys.battery_history(body)]
    assert events == [("install", "com.whatsapp"), ("install", gen.RCS_APP),
                      ("uninstall", gen.RCS_APP), ("start_job", "com.android.chrome"),
                      ("end_job", "com.android.chrome"), ("start_top", "com.whatsapp"),
                      ("wake", gen.RCS_APP)]
    assert dumpsys.battery_history("nothing") == []


def test_battery_daily_uninstall_and_downgrade() -> None:
    body = ds.section(gen.dumpstate(True), "DUMP OF SERVICE batterystats:") or ""
    got = [(u.package, u.version, u.action, u.previous, u.period_start)
           for u in dumpsys.battery_daily(body)]
    assert (gen.RCS_APP, 0, "uninstall", None, "2024-01-13 03:00:00") in got
    assert ("com.whatsapp", 231004, "downgrade", 233190, "2024-01-13 03:00:00") in got
    assert ("com.android.chrome", 609912233, "update", None, "2024-01-14 03:00:00") in got
    assert len(got) == 6


def test_properties_odd_lines() -> None:
    got = ds.properties("[a]: [1]\n[b.c]: []\n[bad line\n[d]: [x]y]\n  [e]: [2]\n")
    assert got == {"a": "1", "b.c": "", "d": "x]y"}


def test_tombstone_fields() -> None:
    t = ds.tombstone(gen.tombstone("com.adobe.flash.jni", "/system/bin/app_process64"))
    assert (t.pid, t.name, t.executable, t.cmdline, t.uid) == (
        4242, "com.adobe.flash", "/system/bin/app_process64", "com.adobe.flash.jni", 10155)
    assert t.signal is not None
    assert t.signal.startswith("11 (SIGSEGV)")
    assert ds.tombstone("") == ds.Tombstone(None, None, None, None, None, None, None)


@pytest.mark.parametrize(("value", "iso"), [
    ("2024-01-14 22:31:07.412345678+0100", "2024-01-14T21:31:07.412345Z"),
    ("2024-01-14 22:31:07.000+0100", "2024-01-14T21:31:07Z"),
    ("2024-01-14 22:31:07.5", "2024-01-14T22:31:07.500000"),
    ("2023-11-01 09:14:11", "2023-11-01T09:14:11"),
    (1705269600, "2024-01-14T22:00:00Z"), (1705269600000, "2024-01-14T22:00:00Z"),
    ("2024-13-45 99:99:99", None), ("soon", None), (None, None), (True, None),
])
def test_iso_any(value: object, iso: str | None) -> None:
    assert iso_any(value) == iso


def test_qf_packages_tolerant() -> None:
    doc = [{"name": "a.b", "installer": "null", "files": [
        {"path": "/x.apk", "SHA256": "AB" * 32, "md5": "short",
         "certificate": {"sha256": "CD" * 32}, "certificates": ["ef" * 20]}]},
        {"no_name": 1}, "junk", {"name": "c.d", "files": "nope", "system": True}]
    pkgs = qf.packages(doc)
    assert [p.name for p in pkgs] == ["a.b", "c.d"]
    assert pkgs[0].installer is None
    assert pkgs[0].files[0].hashes == {"sha256": "ab" * 32}
    assert sorted(pkgs[0].files[0].cert_hashes) == sorted(["cd" * 32, "ef" * 20])
    assert pkgs[1].system
    with pytest.raises(SpywallError):
        qf.packages(5)


def test_qf_json_lines_and_processes() -> None:
    doc = qf.load_json(b'{"pid": 1, "name": "init"}\n{"pid": 2, "cmdline": ["/bin/x", "-a"]}\n',
                       "p")
    procs = qf.processes_json(doc)
    assert [(p.pid, p.name, p.cmdline) for p in procs] == [
        ("1", "init", None), ("2", "/bin/x", "/bin/x -a")]
    with pytest.raises(SpywallError):
        qf.load_json(b"{not json", "p")
    ps = qf.ps_text("USER PID PPID NAME\nroot 1 0 init\nshort\nu0 5 1 name with spaces\n")
    assert [(p.pid, p.name) for p in ps] == [("1", "init"), ("5", "name with spaces")]


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=2000)


@settings(max_examples=150, deadline=None)
@given(_TEXT)
def test_text_parsers_never_crash(text: str) -> None:
    start = time.monotonic()
    ds.properties(text)
    ds.packages("DUMP OF SERVICE package:\n" + text)
    ds.system_properties("------ SYSTEM PROPERTIES\n" + text)
    ds.tombstone(text)
    list(ds.key_values(text))
    with contextlib.suppress(SpywallError):
        qf.ps_text(text)
    assert time.monotonic() - start < 120  # a hang guard, not a speed test


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["name", "files", "path", "sha256", "cert", "installer", "mode",
                         "cmdline", "pid", "size", "modified_time", "x"]), inner, max_size=6),
    max_leaves=40)


@settings(max_examples=200, deadline=None)
@given(_JSON)
def test_json_parsers_never_crash(doc: object) -> None:
    for fn in (qf.packages, qf.processes_json, qf.files, qf.root_binaries):
        with contextlib.suppress(SpywallError):
            fn(doc)


def _mutated_zip(noise: bytes, at: int, member: int) -> bytes:
    files = gen.androidqf_files(True)
    names = sorted(files)
    name = names[member % len(names)]
    data = files[name]
    at %= max(len(data), 1)
    files[name] = data[:at] + noise + data[at + len(noise):]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, v in files.items():
            zf.writestr(k, v)
    return buf.getvalue()


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=64), st.integers(0, 1 << 20), st.integers(0, 20),
       st.booleans())
def test_mutated_captures_only_module_errors(index: IocIndex, noise: bytes, at: int,
                                             member: int, whole: bool) -> None:
    data = _mutated_zip(noise, at, member)
    if whole:  # damage the zip structure itself
        at %= len(data)
        data = data[:at] + noise + data[at + len(noise):]
    limits = Limits(max_total_decompressed=32 << 20, max_stream_bytes=16 << 20, seconds=10)
    try:
        src = ZipSource(data, "m.zip", limits)
        cap = from_source(src, "m.zip", limits, Budget(limits))
    except SpywallError:
        return
    ctx = CheckContext(evidence=cap, index=index, subject=Subject(path="m.zip"))
    runs = run_modules(MODULES, ctx)
    assert len(runs) == len(MODULES)


def test_real_dumpstate_file_is_read_as_capture(tmp_path: Path, index: IocIndex) -> None:
    from spywall.android.check import check_capture

    p = tmp_path / "bugreport.txt"
    p.write_text(gen.dumpstate(True))
    rep = check_capture(p, index).report
    assert rep.subjects[0].format == "dumpstate"
    assert any(f.indicator and f.indicator.value == "sys.brand.note"
               for f in rep.all_findings())
    assert json.loads(dump_json(rep))["modules"]


def test_backup_sms_and_urls() -> None:
    msgs = backup.sms(gen.backup_ab(True), Budget())
    sms = [m for m in msgs if m.kind == "sms"]
    assert [m.date for m in sms] == [1705180000000, 1705190000000, 1705200000000]
    assert backup.urls(sms[-1].body) == [f"https://{gen.PREDATOR_DOMAIN}/a1b2c3"]
    mms = [(m.date, m.address, m.body) for m in msgs if m.kind == "mms"]
    assert mms == [(1705181000, "+381601234567", "Photos from Saturday"),
                   (1705201000, "+381600000002", "Your invoice: https://mobnetlink1.com/inv/77")]
    with pytest.raises(backup.EncryptedBackup):
        backup.sms(gen.backup_ab(True, encrypted=True), Budget())
    with pytest.raises(SpywallError):
        backup.sms(b"ANDROID BACKUP\n5\n1\nnone\n" + b"\x78\x9c garbage", Budget())


def test_backup_bomb_capped() -> None:
    bomb = b"ANDROID BACKUP\n5\n1\nnone\n" + zlib.compress(b"\0" * (64 << 20))
    with pytest.raises(SpywallError):
        backup.sms(bomb, Budget(Limits(max_total_decompressed=8 << 20,
                                       max_stream_bytes=8 << 20)))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 1 << 16))
def test_mutated_backups_only_spywall_errors(noise: bytes, at: int) -> None:

    from spywall.android import backup
    base = gen.backup_ab(True)
    raw = b"ANDROID BACKUP\n5\n0\nnone\n" + zlib.decompress(base[base.index(b"none\n") + 5:])
    for data in (base, raw):
        at %= len(data)
        mutated = data[:at] + noise + data[at + len(noise):]
        try:
            for m in backup.sms(mutated, Budget(Limits(seconds=5))):
                backup.urls(m.body)
        except SpywallError:
            pass


def test_encrypted_backup_decrypts_with_its_password() -> None:
    from spywall.android import ab_crypto

    data = gen.backup_ab(True, encrypted=True, password="s3cret")
    plain = backup.sms(gen.backup_ab(True), Budget())
    assert backup.sms(data, Budget(), "s3cret") == plain
    with pytest.raises(ab_crypto.WrongPassword):
        backup.sms(data, Budget(), "wrong")
    # Java hands the master key to PBKDF2 as signed chars in UTF-8 (format version >= 2)
    assert ab_crypto.java_key_chars(bytes([0x01, 0x80, 0xFF]), 5) == bytes.fromhex(
        "01efbe80efbfbf")
    assert ab_crypto.java_key_chars(bytes([0x80]), 1) == b"\x80"


def test_encrypted_backup_hostile_header() -> None:
    head = b"ANDROID BACKUP\n5\n1\nAES-256\n"
    for tail in (b"", b"zz\n00\n10\n00\n00\nxx", b"00\n00\n999999999\n" + b"00" * 16 +
                 b"\n00\n", b"00\n00\n10\n0011\n00\n" + bytes(16)):
        with pytest.raises(SpywallError):
            backup.sms(head + tail, Budget(), "pw")
