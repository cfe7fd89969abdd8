"""androidqf's protobuf inventories (packages.pb, files.pb, root_binaries.pb, mounts.pb):
read like their JSON twins; Google's protobuf runtime is the independent oracle."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.android import qf_pb
from spywall.android.check import check_capture
from spywall.errors import FormatError
from spywall.iocs import IocIndex
from spywall.samples import android as gen
from spywall.samples import android_pb

PB_MODULES = {"packages", "files", "root_binaries", "mounts"}


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load()


def _classes() -> dict[str, Any]:
    """The schemas of qf_pb's docstring, built as descriptors for Google's runtime."""
    pb = pytest.importorskip("google.protobuf")
    del pb
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FieldDescriptorProto
    string, double, int64, int32, boolean, message = (
        f.TYPE_STRING,
        f.TYPE_DOUBLE,
        f.TYPE_INT64,
        f.TYPE_INT32,
        f.TYPE_BOOL,
        f.TYPE_MESSAGE,
    )
    schemas: dict[str, list[tuple[str, int, int, str]]] = {
        "StringRecord": [("value", 1, string, "")],
        "FilesRecord": [
            ("path", 1, string, ""),
            ("mtime", 2, double, ""),
            ("mode", 3, string, ""),
            ("size", 4, int64, ""),
            ("user", 5, string, ""),
            ("group", 6, string, ""),
        ],
        "Cert": [
            (n, i + 1, string, "")
            for i, n in enumerate(
                (
                    "md5",
                    "sha1",
                    "sha256",
                    "valid_from",
                    "valid_to",
                    "issuer",
                    "subject",
                    "signature_algorithm",
                    "serial_number",
                )
            )
        ],
        "PackageFile": [
            *(
                (n, i + 1, string, "")
                for i, n in enumerate(("path", "local_name", "md5", "sha1", "sha256", "sha512"))
            ),
            ("suspicious", 7, boolean, ""),
            ("certificates", 8, message, ".t.Cert"),
            ("infiles", 9, string, ""),
        ],
        "Package": [
            ("name", 1, string, ""),
            ("installer", 2, string, ""),
            ("uid", 3, int32, ""),
            ("disabled", 4, boolean, ""),
            ("system", 5, boolean, ""),
            ("third_party", 6, boolean, ""),
            ("files", 7, message, ".t.PackageFile"),
        ],
    }
    fd = descriptor_pb2.FileDescriptorProto(name="t.proto", package="t", syntax="proto3")
    for name, fields in schemas.items():
        m = fd.message_type.add(name=name)
        for fname, num, typ, ref in fields:
            repeated = fname in ("certificates", "infiles", "files")
            m.field.add(
                name=fname,
                number=num,
                type=typ,
                type_name=ref or None,
                label=f.LABEL_REPEATED if repeated else f.LABEL_OPTIONAL,
            )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {
        n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"t.{n}")) for n in schemas
    }


def _split(data: bytes) -> list[bytes]:
    from google.protobuf.internal.decoder import _DecodeVarint  # the runtime's own

    out, pos = [], 0
    while pos < len(data):
        size, pos = _DecodeVarint(data, pos)
        out.append(data[pos : pos + size])
        pos += size
    return out


def test_reader_agrees_with_google_protobuf() -> None:
    c = _classes()
    pkg = c["Package"](name="com.x", installer="com.android.vending", uid=-2, system=True)
    apk = pkg.files.add(path="/data/app/x/base.apk", sha256="ab" * 32)
    apk.certificates.add(sha256="cd" * 32, subject="CN=x")
    apk.certificates.add(sha1="ef" * 20)
    apk.infiles.append("classes.dex")
    data = b"".join(
        android_pb.varint(len(b)) + b
        for b in (pkg.SerializeToString(), c["Package"](name="com.y").SerializeToString())
    )
    got = qf_pb.packages_records(data, "packages.pb")
    assert [(p["name"], p["installer"], p["uid"], p["system"]) for p in got] == [
        ("com.x", "com.android.vending", -2, True),
        ("com.y", "null", 0, False),
    ]
    f0 = got[0]["files"][0]
    assert (f0["path"], f0["sha256"], f0["certificates"]) == (
        "/data/app/x/base.apk",
        "ab" * 32,
        [{"Sha256": "cd" * 32, "Subject": "CN=x"}, {"Sha1": "ef" * 20}],
    )
    rec = c["FilesRecord"](
        path="/data/local/tmp/a b", mtime=1705269600.25, mode="0755", size=2**40, user="shell"
    )
    data = android_pb.varint(rec.ByteSize()) + rec.SerializeToString()
    [f] = qf_pb.files_records(data, "files.pb")
    assert (f["path"], f["modified_time"], f["mode"], f["size"], f["user_name"]) == (
        "/data/local/tmp/a b",
        1705269600.25,
        "0755",
        2**40,
        "shell",
    )


def test_samples_decode_with_google_protobuf() -> None:
    c = _classes()
    files = android_pb.androidqf_files(True)
    names = [c["Package"].FromString(m).name for m in _split(files["packages.pb"])]
    assert gen.NOVISPY_APP in names
    paths = [c["FilesRecord"].FromString(m).path for m in _split(files["files.pb"])]
    assert gen.CAMPAIGN_PATH in paths
    lines = [c["StringRecord"].FromString(m).value for m in _split(files["mounts.pb"])]
    assert any(" on /system type " in v for v in lines)


def _found(rep: Any) -> set[tuple[str, str, str | None]]:
    return {
        (f.location.module, f.rule, f.indicator.collection if f.indicator else None)
        for f in rep.all_findings()
        if f.location.module in PB_MODULES
    }


def test_pb_capture_finds_what_json_capture_finds(tmp_path: Path, index: IocIndex) -> None:
    pb = check_capture(
        gen.write_tree(android_pb.androidqf_files(True), tmp_path / "pb"), index
    ).report
    js = check_capture(
        gen.write_tree(gen.androidqf_files(True, with_bugreport=False), tmp_path / "js"), index
    ).report
    assert _found(pb) == _found(js)
    assert ("packages", "ioc-app-cert", "NoviSpy") in _found(pb)
    assert ("files", "ioc-file-path", "MercenarySpywareCampaign") in _found(pb)
    assert ("root_binaries", "android-root-binary", None) in _found(pb)
    assert ("mounts", "android-system-rw-mount", None) in _found(pb)
    where = {
        f.path.rpartition("/")[2] for f in pb.all_findings() if f.location.module in PB_MODULES
    }
    assert where == {"packages.pb", "files.pb", "root_binaries.pb", "mounts.pb"}
    clean = check_capture(
        gen.write_tree(android_pb.androidqf_files(False), tmp_path / "c"), index
    ).report
    assert _found(clean) == set()


def test_truncated_pb_is_an_error(tmp_path: Path, index: IocIndex) -> None:
    files = android_pb.androidqf_files(True)
    files["packages.pb"] = files["packages.pb"][:-7]
    files["files.pb"] = b"\x05\x0a\x03ab"  # a field longer than its message
    rep = check_capture(gen.write_tree(files, tmp_path / "ev"), index).report
    status = {m.name: (m.status, m.message) for m in rep.modules}
    assert status["packages"][0] == status["files"][0] == "error"
    assert "past" in status["packages"][1]
    assert status["mounts"][0] == "ok"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_hostile_bytes_give_format_error_or_records(data: bytes) -> None:
    for reader in (qf_pb.packages_records, qf_pb.files_records, qf_pb.string_records):
        with contextlib.suppress(FormatError):
            reader(data, "x.pb")


def test_pb_capture_as_a_zip(tmp_path: Path, index: IocIndex) -> None:
    """androidqf's zip layout (files under the acquisition's uuid folder), protobuf
    inventories inside."""
    files = android_pb.androidqf_files(True)
    path = tmp_path / "qf.zip"
    path.write_bytes(
        gen.zip_files({f"6f1c2f0e-0000-4000-8000-000000000001/{k}": v for k, v in files.items()})
    )
    rep = check_capture(path, index).report
    assert ("packages", "ioc-app-cert", "NoviSpy") in _found(rep)
    assert ("mounts", "android-system-rw-mount", None) in _found(rep)
    assert rep.subjects[0].format == "androidqf"
