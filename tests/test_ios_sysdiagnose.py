"""check-sysdiagnose: the device details MVT's SysdiagnoseInfo reports, the shutdown
logs, the archive and its folder alike, the output conventions of the other device
checks, and hostile archives (traversal, links, long names, bombs, caps, cuts).

The tar reader is checked against Python's ``tarfile`` (an independent implementation)
on the archives ``tarfile`` writes in each of its formats."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.cli import main
from spywall.errors import FormatError, LimitExceeded
from spywall.iocs import IocIndex
from spywall.ios import releases, tarstream
from spywall.ios.sysdiagnose_check import MODULES, check_sysdiagnose
from spywall.limits import Limits
from spywall.report import Report, load_report
from spywall.samples import ios_sysdiagnose as gen
from spywall.samples.ios_fs import PLANTED_FS

N = gen.NAME


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load()


def _clean() -> gen.SysdiagnoseSpec:
    latest = releases.current().latest()
    assert latest is not None
    return gen.SysdiagnoseSpec(planted=False, version=latest.version, build=latest.build or "")


def _archive(tmp: Path, data: bytes, name: str = gen.ARCHIVE) -> Path:
    (tmp / "ev").mkdir(exist_ok=True)
    (tmp / "ev" / name).write_bytes(data)
    return tmp / "ev" / name


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Report]:
    rc = main(["check-sysdiagnose", *argv, "-f", "json", "-q"])
    return rc, load_report(capsys.readouterr().out)


def test_device_details_as_mvt_reads_them(tmp_path: Path, index: IocIndex) -> None:
    """Each field from the file MVT takes it from; a later file overrides an earlier one
    (the dumpstate's properties over the activation request's); only the first device of
    the dumpstate counts; the archive's creation time is the name's, in UTC; the account
    e-mail is in appstored's write-ahead log."""
    spec = gen.SysdiagnoseSpec()
    out = check_sysdiagnose(_archive(tmp_path, gen.archive(spec)), index)
    [rec] = out.ctx.records["sysdiagnose_info"]
    d = rec.data
    assert rec.timestamp is None  # (no timeline row, as MVT)
    assert (d["SerialNumber"], d["ProductType"], d["OSVersion"], d["BuildVersion"]) == (
        spec.serial, spec.product_type, spec.version, spec.build)
    assert (d["ProductVersion"], d["UniqueIdentifier"], d["IMEI"]) == (
        spec.version, "00008110-000A1B2C3D4E5F60", "356789012345678")
    assert d["RegionCode"] == "LL"
    assert d["ProductName"] == "iPhone 13 Pro"  # the model, not "iPhone OS"
    assert (d["Account Name"], d["Email Address"]) == ("Jane Appleseed", "jane@example.org")
    assert d["OriginalFilename"] == gen.ARCHIVE
    assert d["CreatedTimestamp"] == "2023-06-13 13:12:19.000000"  # 15:12:19 at +0200
    assert "WATCHSERIAL0" not in json.dumps(d)
    assert out.report.device["serial_number"] == spec.serial


def test_archive_and_folder_alike(tmp_path: Path, index: IocIndex) -> None:
    arch = check_sysdiagnose(_archive(tmp_path, gen.archive()), index)
    folder = check_sysdiagnose(gen.write_folder(tmp_path / "f"), index)

    def got(o: object) -> list[tuple[str, str, str | None]]:
        rep = o.report  # type: ignore[attr-defined]
        return sorted((f.location.module or "", f.rule, f.message.split(": ", 1)[-1][:60])
                      for f in rep.all_findings())

    assert got(arch) == got(folder)
    assert arch.report.device == folder.report.device
    assert [m.status for m in arch.report.modules] == ["ok", "ok"]
    assert arch.report.subjects[0].sha256 == hashlib.sha256(
        (tmp_path / "ev" / gen.ARCHIVE).read_bytes()).hexdigest()


def test_planted_found_clean_silent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, rep = _run(capsys, str(_archive(tmp_path, gen.archive())))
    assert rc == 1
    found = {(f.location.module, f.rule, f.detail.get("client")) for f in rep.all_findings()}
    assert ("shutdown_log", "ioc-process", PLANTED_FS["shutdown_client"]) in found
    assert ("shutdown_log", "ioc-process", PLANTED_FS["rotated_client"]) in found  # rotated
    assert ("shutdown_log", "ios-shutdown-unusual-path", PLANTED_FS["shutdown_client"]) in found
    assert ("sysdiagnose_info", "ios-outdated", None) in found
    rc, rep = _run(capsys, str(_archive(tmp_path, gen.archive(_clean()), "clean.tar.gz")))
    assert (rc, rep.all_findings()) == (0, [])


def test_missing_files_are_no_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = gen.SysdiagnoseSpec(planted=False, appstored=False, activation=False,
                               version=_clean().version)
    rc, rep = _run(capsys, str(_archive(tmp_path, gen.archive(spec))))
    assert (rc, [m.status for m in rep.modules]) == (0, ["ok", "ok"])
    assert [e for s in rep.subjects for e in s.errors] == []
    # an archive of something else: no module finds its files, an input error
    other = gen.gzip.compress(_tar({"photos/IMG_0001.HEIC": b"x"}))
    rc, rep = _run(capsys, str(_archive(tmp_path, other, "other.tar.gz")))
    assert rc == 2
    assert any("no module found anything" in e.message for e in rep.errors)


def test_output_folder_and_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ev = _archive(tmp_path, gen.archive())
    before = ev.read_bytes()
    out = tmp_path / "results"
    rc, rep = _run(capsys, str(ev), "-o", str(out))
    assert rc == 1
    assert ev.read_bytes() == before
    assert {"sysdiagnose_info.json", "shutdown_log.json", "alerts.json", "timeline.csv",
            "info.json", "command.log", "report.json"} <= {p.name for p in out.iterdir()}
    [info] = json.loads((out / "sysdiagnose_info.json").read_text())
    assert info["SerialNumber"] == gen.SysdiagnoseSpec().serial
    timeline = (out / "timeline.csv").read_text()
    assert '"ShutdownLog"' in timeline
    assert "SysdiagnoseInfo" not in timeline
    assert len(json.loads((out / "alerts.json").read_text())) == len(rep.all_findings())
    assert json.loads((out / "info.json").read_text())["command"] == "check-sysdiagnose"
    assert main(["check-sysdiagnose", str(ev), "-f", "sarif", "-q"]) == 1
    assert json.loads(capsys.readouterr().out)["version"] == "2.1.0"
    assert main(["check-sysdiagnose", str(ev), "-f", "table", "-q", "-m",
                 "sysdiagnose_info"]) == 1
    assert "ios-outdated" in capsys.readouterr().out
    assert main(["check-sysdiagnose", str(ev), "-m", "nope", "-q"]) == 2
    assert main(["check-sysdiagnose", str(ev), "-o", str(tmp_path / "ev"), "-q"]) == 2


def _tar(members: dict[str, bytes], fmt: int = tarfile.PAX_FORMAT,
         links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def test_hostile_names_are_never_used(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      index: IocIndex) -> None:
    """A member that climbs out, an absolute one and a link named like an artifact are
    neither read nor written anywhere; the genuine files are read."""
    bad = gen.dumpstate(gen.SysdiagnoseSpec(serial="TRAVERSAL"))
    members = {f"{N}/{k}": v for k, v in gen.files().items()}
    members |= {f"{N}/../{N}/remotectl_dumpstate.txt": bad,  # (after the genuine ones:
                f"/{N}/remotectl_dumpstate.txt": bad}        # a later file would win)
    arch = gzip.compress(_tar(members, links={f"{N}/x/sysdiagnose.log": "/etc/passwd"}))
    out = check_sysdiagnose(_archive(tmp_path, arch), index)
    d = out.ctx.records["sysdiagnose_info"][0].data
    assert d["SerialNumber"] == gen.SysdiagnoseSpec().serial
    assert out.ctx.evidence.unsafe == 2
    assert not list((tmp_path / "ev").glob("*/**"))  # nothing extracted
    assert [f.rule for f in out.report.all_findings() if f.rule.startswith("incomplete")] == []


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_reader_agrees_with_tarfile(fmt: int) -> None:
    """Long names (ustar prefix, GNU ``L``, pax ``path``), large and empty members."""
    names = {f"{N}/logs/" + "d" * 60 + "/" + "f" * 90: b"a" * 700, f"{N}/e": b"",
             f"{N}/remotectl_dumpstate.txt": b"z" * 513}
    if fmt != tarfile.USTAR_FORMAT:
        names[f"{N}/" + "x" * 300] = b"long"
    data = _tar(names, fmt)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        want = [(m.name, tar.extractfile(m).read()) for m in tar  # type: ignore[union-attr]
                if m.isfile()]
    caps = tarstream.Caps(max_members=100, max_bytes=1 << 30, max_member=1 << 20, seconds=60)
    got = [(m.name, m.data) for m in tarstream.members(io.BytesIO(data), caps, lambda _: True)]
    assert got == want


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(st.characters(codec="utf-8", exclude_characters="\x00/"),
                                  min_size=1, max_size=120),
                          st.binary(max_size=1500)),
                min_size=1, max_size=6, unique_by=lambda t: t[0]),
       st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
def test_reader_agrees_with_tarfile_on_any_names(items: list[tuple[str, bytes]], fmt: int) -> None:
    data = _tar({f"d/{n}": b for n, b in items}, fmt)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        want = [(m.name, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    caps = tarstream.Caps(max_members=100, max_bytes=1 << 30, max_member=1 << 20, seconds=60)
    assert [(m.name, m.data) for m in tarstream.members(io.BytesIO(data), caps,
                                                        lambda _: True)] == want


def _stream(data: bytes, **caps: int) -> list[tarstream.Member]:
    c = tarstream.Caps(**{"max_members": 100, "max_bytes": 1 << 30, "max_member": 1 << 20,
                          "seconds": 60, **caps})
    return list(tarstream.members(io.BytesIO(data), c, lambda _: True))


def test_reader_bounds() -> None:
    # a pax header claiming 1 GiB is refused before it is read
    huge = bytearray(_tar({"a": b"x"}))
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, 1 << 30
    with pytest.raises(LimitExceeded, match="extension header"):
        _stream(pax.tobuf(tarfile.USTAR_FORMAT) + bytes(huge))
    with pytest.raises(LimitExceeded, match="members"):
        _stream(_tar({str(i): b"" for i in range(5)}), max_members=3)
    with pytest.raises(LimitExceeded, match="bytes in the archive"):
        _stream(_tar({"a": b"x" * 5000}), max_bytes=4096)
    got = _stream(_tar({"a": b"x" * 5000}), max_member=1000)
    assert (got[0].data, got[0].over_cap, got[0].size) == (None, True, 5000)
    with pytest.raises(FormatError, match="cut short"):
        _stream(_tar({"a": b"x" * 5000})[:2048])
    broken = bytearray(_tar({"a": b"x"}))
    broken[0] ^= 1
    with pytest.raises(FormatError, match="checksum"):
        _stream(bytes(broken))


def _bomb() -> bytes:
    """The files, then 20 MiB of zeros (about 20 KiB compressed)."""
    members = {f"{N}/{k}": v for k, v in gen.files().items()} | {f"{N}/zeros": bytes(20 << 20)}
    return gzip.compress(_tar(members), 9)


@pytest.mark.parametrize(("make", "code", "limits"), [
    # cut short in the middle: what was read is kept, and the check is incomplete
    (lambda: gen.archive()[: len(gen.archive()) * 2 // 3], "malformed", Limits()),
    # a decompression bomb after the files: the ratio cap stops it
    (_bomb, "limit", Limits(max_ratio=50)),
    # more members than the cap (25 x max_members): the files first, then 30 more
    (lambda: gzip.compress(_tar({f"{N}/{k}": v for k, v in gen.files().items()}
                                | {f"{N}/crashes/{i}.ips": b"{}" for i in range(30)})),
     "limit", Limits(max_members=1)),
])
def test_stopped_archive_is_incomplete(tmp_path: Path, index: IocIndex, make: object,
                                       code: str, limits: Limits) -> None:
    ev = _archive(tmp_path, make())  # type: ignore[operator]
    rep = check_sysdiagnose(ev, index, limits=limits).report
    unread = [f for f in rep.all_findings() if f.rule == "incomplete-examination"]
    assert {f.location.module for f in unread} == {m.name for m in MODULES}
    assert {e.code for s in rep.subjects for e in s.errors} == {code}
    assert all("read only up to" in str(f.detail["limit"]) for f in unread)
    allow = msgspec.structs.replace(limits, allow_incomplete=True)
    rep = check_sysdiagnose(ev, index, limits=allow).report
    assert not [f for f in rep.all_findings() if f.rule == "incomplete-examination"]
    assert rep.modules[0].status == "ok"  # what was read before the stop is reported


def test_malformed_artifact_is_incomplete(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    root = gen.write_folder(tmp_path / "f", _clean())
    act = root / "logs/MobileActivation/collection_oob_request.txt"
    act.write_bytes(b'POST x\nBODY: {"serial-number": "F2L", \n')
    db = root / "logs/appinstallation/appstored.sqlitedb"
    db.write_bytes(b"SQLite format 3\x00" + b"Z" * 600)
    rc, rep = _run(capsys, str(root))
    assert rc == 1
    unread = [f for f in rep.all_findings() if f.rule == "incomplete-examination"]
    assert [f.location.module for f in unread] == ["sysdiagnose_info"] * 2
    assert {Path(f.path).name for f in unread} == {"collection_oob_request.txt",
                                                    "appstored.sqlitedb"}
    assert rep.device["serial_number"] == gen.SysdiagnoseSpec().serial  # the rest is read
    assert _run(capsys, str(root), "--allow-incomplete")[0] == 0


def test_not_a_sysdiagnose(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-sysdiagnose", str(_archive(tmp_path, b"just text\n" * 100, "t.tgz")),
                 "-q"]) == 2
    assert "not a sysdiagnose" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["check-sysdiagnose", str(tmp_path / "empty"), "-q"]) == 2


def test_folder_links_are_not_followed(tmp_path: Path, index: IocIndex) -> None:
    root = gen.write_folder(tmp_path / "f", _clean())
    outside = tmp_path / "outside.txt"
    outside.write_bytes(gen.dumpstate(gen.SysdiagnoseSpec(serial="OUTSIDE")))
    (root / "remotectl_dumpstate.txt").unlink()
    (root / "remotectl_dumpstate.txt").symlink_to(outside)
    out = check_sysdiagnose(root, index)
    assert "OUTSIDE" not in json.dumps(out.ctx.records["sysdiagnose_info"][0].data)
    assert [f.location.module for f in out.report.all_findings()] == ["sysdiagnose_info"]
