"""Android tombstones, text and protobuf (``tombstone_NN.pb``, Android 12+): read in
bugreports and in androidqf's bugreport.zip, matched as MVT's tombstones module matches
them. Google's protobuf runtime, given the public tombstone.proto field numbers, is the
independent oracle for the protobuf reader and for the samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.android import tombstones as tb
from spywall.android.check import MODULES, check_capture
from spywall.errors import FormatError, LimitExceeded
from spywall.iocs import IocIndex
from spywall.samples import android as gen
from spywall.samples import android_pb

DIR = "FS/data/tombstones/"
ONLY = tuple(m for m in MODULES if m.name == "tombstones")


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load()


def _classes() -> dict[str, Any]:
    """Tombstone, Signal, Cause and Thread of tombstone.proto (the fields the reader
    uses, and a few it walks past), with ``threads`` a map as the .proto declares it."""
    pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FieldDescriptorProto
    opt, rep = f.LABEL_OPTIONAL, f.LABEL_REPEATED
    fd = descriptor_pb2.FileDescriptorProto(name="tombstone.proto", package="t",
                                            syntax="proto3")
    sig = fd.message_type.add(name="Signal")
    for name, num, typ in (("number", 1, f.TYPE_INT32), ("name", 2, f.TYPE_STRING),
                           ("code", 3, f.TYPE_INT32), ("code_name", 4, f.TYPE_STRING),
                           ("fault_address", 9, f.TYPE_UINT64)):
        sig.field.add(name=name, number=num, type=typ, label=opt)
    cause = fd.message_type.add(name="Cause")
    cause.field.add(name="human_readable", number=1, type=f.TYPE_STRING, label=opt)
    thread = fd.message_type.add(name="Thread")
    thread.field.add(name="id", number=1, type=f.TYPE_INT32, label=opt)
    thread.field.add(name="name", number=2, type=f.TYPE_STRING, label=opt)
    thread.field.add(name="backtrace_note", number=7, type=f.TYPE_STRING, label=rep)
    top = fd.message_type.add(name="Tombstone")
    entry = top.nested_type.add(name="ThreadsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=f.TYPE_UINT32, label=opt)
    entry.field.add(name="value", number=2, type=f.TYPE_MESSAGE, type_name=".t.Thread",
                    label=opt)
    for name, num, typ, ref, label in (
            ("arch", 1, f.TYPE_INT32, "", opt), ("build_fingerprint", 2, f.TYPE_STRING, "", opt),
            ("revision", 3, f.TYPE_STRING, "", opt), ("timestamp", 4, f.TYPE_STRING, "", opt),
            ("pid", 5, f.TYPE_UINT32, "", opt), ("tid", 6, f.TYPE_UINT32, "", opt),
            ("uid", 7, f.TYPE_UINT32, "", opt), ("selinux_label", 8, f.TYPE_STRING, "", opt),
            ("command_line", 9, f.TYPE_STRING, "", rep),
            ("signal_info", 10, f.TYPE_MESSAGE, ".t.Signal", opt),
            ("abort_message", 14, f.TYPE_STRING, "", opt),
            ("causes", 15, f.TYPE_MESSAGE, ".t.Cause", rep),
            ("threads", 16, f.TYPE_MESSAGE, ".t.Tombstone.ThreadsEntry", rep),
            ("process_uptime", 20, f.TYPE_UINT32, "", opt)):
        top.field.add(name=name, number=num, type=typ, type_name=ref or None, label=label)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"t.{n}"))
            for n in ("Tombstone", "Signal")}


def test_reader_agrees_with_google_protobuf() -> None:
    t = _classes()["Tombstone"](
        arch=3, build_fingerprint="samsung/a53x/a53x:14/UP1A/A536B:user/release-keys",
        timestamp="2025-03-02 08:00:01.250000000+0530", pid=901, tid=944, uid=2000,
        selinux_label="u:r:shell:s0", command_line=["/data/local/tmp/fservernetd", "-x"],
        abort_message="stack corruption detected", process_uptime=3)
    t.signal_info.number, t.signal_info.name = 6, "SIGABRT"
    t.signal_info.code, t.signal_info.code_name = -6, "SI_TKILL"
    t.causes.add(human_readable="")
    t.causes.add(human_readable="stack pointer is in a non-existent map")
    t.threads[901].id, t.threads[901].name = 901, "fservernetd"
    t.threads[944].id, t.threads[944].name = 944, "worker-944"
    t.threads[944].backtrace_note.append("note")
    got = tb.parse_pb(t.SerializeToString())
    assert got == tb.Crash(
        pid=901, tid=944, uid=2000, process_name="worker-944",
        binary_path="/data/local/tmp/fservernetd",
        command_line="/data/local/tmp/fservernetd -x",
        timestamp="2025-03-02 08:00:01.250000000+0530",
        build_fingerprint="samsung/a53x/a53x:14/UP1A/A536B:user/release-keys",
        revision=None, arch="x86_64", selinux_label="u:r:shell:s0", process_uptime=3,
        signal_info="6 (SIGABRT), code -6 (SI_TKILL)",
        cause="stack pointer is in a non-existent map",
        abort_message="stack corruption detected")


def test_samples_decode_with_google_protobuf() -> None:
    c = _classes()["Tombstone"]
    t = c.FromString(android_pb.tombstone_pb(["/data/local/tmp/roleaboutd", "-d"], uid=0,
                                             other_threads=((6150, "main"),)))
    assert (t.pid, t.tid, t.uid, list(t.command_line)) == (
        6150, 6171, 0, ["/data/local/tmp/roleaboutd", "-d"])
    assert {k: v.name for k, v in t.threads.items()} == {6171: "roleaboutd", 6150: "main"}
    assert (t.signal_info.number, t.signal_info.code_name) == (11, "SEGV_MAPERR")
    assert t.selinux_label.endswith("\x00")
    old = c.FromString(android_pb.tombstone_pb(["com.x", "--flag"], uid=1, android12=True))
    assert list(old.command_line) == ["com.x --flag"]  # (Android 12: one process_name)


def test_android12_layout() -> None:
    got = tb.parse_pb(android_pb.tombstone_pb([gen.WYRMSPY_APP], uid=10155,
                                              signal=(6, "SIGABRT", -1, "SI_QUEUE"),
                                              android12=True))
    assert (got.process_name, got.binary_path, got.signal_info, got.cause) == (
        "com.adobe.flash", gen.WYRMSPY_APP, "6 (SIGABRT), code -1 (SI_QUEUE)",
        "null pointer dereference")
    assert got.selinux_label == "u:r:untrusted_app:s0:c155,c256,c512,c768"  # NUL cut


def _bugreport(tmp_path: Path, extra: dict[str, bytes], *, nested: bool = False) -> Path:
    files = gen.bugreport_files(False)
    files.update(extra)
    if nested:  # androidqf: the bugreport inside the capture
        qf = gen.androidqf_files(False, with_bugreport=False)
        qf["bugreport.zip"] = gen.zip_files(files)
        return gen.write_tree(qf, tmp_path / "qf")
    path = tmp_path / "br.zip"
    path.write_bytes(gen.zip_files(files))
    return path


def _found(rep: Any) -> set[tuple[str, str, str | None, str]]:
    return {(f.rule, f.severity.value, f.indicator.collection if f.indicator else None,
             f.path.rpartition("/")[2]) for f in rep.all_findings()}


@pytest.mark.parametrize("nested", [False, True])
def test_protobuf_tombstones_matched_as_mvt(tmp_path: Path, index: IocIndex,
                                            nested: bool) -> None:
    """What ``mvt-android check-bugreport`` reports on the same files (checked by hand
    with MVT 2026.10): a critical alert for the Pegasus process names ``roleaboutd``
    (a .pb alone) and ``gatekeeperd`` (a .pb with its text twin, one crash), nothing for
    the camera crash. spywall adds the WyrmSpy app id and the root-crash heuristic."""
    path = _bugreport(tmp_path, {
        f"{DIR}tombstone_02.pb": android_pb.tombstone_pb(
            ["/data/local/tmp/roleaboutd", "-d"], uid=0, other_threads=((6150, "main"),)),
        f"{DIR}tombstone_03.pb": android_pb.tombstone_pb([gen.WYRMSPY_APP], uid=10155),
        f"{DIR}tombstone_04.pb": android_pb.tombstone_pb(["/system/bin/gatekeeperd"],
                                                         uid=1000),
        f"{DIR}tombstone_04": gen.tombstone("/system/bin/gatekeeperd",
                                            "/system/bin/gatekeeperd").encode(),
    }, nested=nested)
    out = check_capture(path, index, modules=ONLY)  # type: ignore[arg-type]
    assert out.report.modules[0].status == "ok"
    assert out.report.modules[0].records == 5  # five crashes, one of them in two files
    assert _found(out.report) == {
        ("ioc-process", "critical", "Pegasus", "tombstone_02.pb"),
        ("android-privileged-crash", "medium", None, "tombstone_02.pb"),
        ("ioc-app-id", "critical", "WyrmSpy_DragonEgg", "tombstone_03.pb"),
        # a stock daemon's name too: matched, as MVT matches it, at a lower severity
        ("ioc-process", "medium", "Pegasus", "tombstone_04.pb"),
        ("android-privileged-crash", "medium", None, "tombstone_04.pb"),
    }
    recs = {r.data["crash_id"]: r for r in out.ctx.records["tombstones"]}
    assert sorted(recs) == [f"tombstone_0{i}" for i in range(5)]
    both = recs["tombstone_04"]
    assert (both.data["source"], both.data["file_name"], both.data["process_name"],
            both.data["uid"], both.data["process_uptime"]) == (
        "protobuf+text", f"{DIR}tombstone_04.pb", "gatekeeperd", 1000, 37)
    assert both.timestamp == "2024-01-14T21:41:03.118272Z"  # (the protobuf's time first)
    pb = recs["tombstone_02"].data
    assert (pb["command_line"], pb["signal_info"], pb["cause"], pb["arch"]) == (
        "/data/local/tmp/roleaboutd -d", "11 (SIGSEGV), code 1 (SEGV_MAPERR)",
        "null pointer dereference", "arm64")
    assert recs["tombstone_00"].data["source"] == "text"


def test_unreadable_tombstones_are_errors(tmp_path: Path, index: IocIndex,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    good = android_pb.tombstone_pb(["/data/local/tmp/roleaboutd"], uid=0)
    path = _bugreport(tmp_path, {
        f"{DIR}tombstone_02.pb": good[:-5],           # cut short
        f"{DIR}tombstone_03.pb": b"",                 # empty
        f"{DIR}tombstone_05.pb": b"Build fingerprint: 'x'\n",  # text under a .pb name
        f"{DIR}tombstone_06.pb": good,
    })
    out = check_capture(path, index, modules=ONLY)  # type: ignore[arg-type]
    errors = {e.path.rpartition("/")[2]: e.code for e in out.report.subjects[0].errors}
    assert errors == {"tombstone_02.pb": "malformed", "tombstone_03.pb": "malformed",
                      "tombstone_05.pb": "malformed"}
    assert out.report.modules[0].message == "3 tombstone file(s) unreadable"
    assert ("ioc-process", "critical", "Pegasus", "tombstone_06.pb") in _found(out.report)
    monkeypatch.setattr(tb, "MAX_TOMBSTONE_BYTES", 200)
    out = check_capture(path, index, modules=ONLY)  # type: ignore[arg-type]
    assert {e.code for e in out.report.subjects[0].errors} >= {"limit"}
    assert "tombstone_06.pb" in {e.path.rpartition("/")[2]
                                 for e in out.report.subjects[0].errors if e.code == "limit"}
    # a crash left unread at a cap is not a clean check
    assert "incomplete-examination" in {f.rule for f in out.report.all_findings()}


def test_only_unreadable_tombstones_is_an_error(tmp_path: Path, index: IocIndex) -> None:
    files = {k: v for k, v in gen.bugreport_files(False).items() if "tombstone" not in k}
    files[f"{DIR}tombstone_00.pb"] = b"\x0a\xff"
    path = tmp_path / "br.zip"
    path.write_bytes(gen.zip_files(files))
    out = check_capture(path, index, modules=ONLY)  # type: ignore[arg-type]
    assert out.report.modules[0].status == "error"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_reader_fails_closed(data: bytes) -> None:
    """Bytes that are no tombstone raise the typed errors, nothing else; what does parse
    keeps its text fields within the cap."""
    try:
        got = tb.parse_pb(data)
    except (FormatError, LimitExceeded):
        return
    texts = [v for v in msgspec.structs.asdict(got).values() if isinstance(v, str)]
    assert all(len(v) <= tb.MAX_TEXT for v in texts)
    assert got.process_uptime is None or got.process_uptime > 0


def test_field_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tb, "MAX_FIELDS", 10)
    words = [f"w{i}" for i in range(20)]
    with pytest.raises(LimitExceeded):
        tb.parse_pb(android_pb.tombstone_pb(words, uid=1))
