"""Device-check modules spread over forked workers (``spywall.device.parallel``): the same
report and result folder as a run in one process, and nothing lost when a worker dies."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from spywall.commands.common import new_report
from spywall.device import CheckContext, FnModule, iso_unix, parallel, run_modules
from spywall.device.output import write_mvt_outputs
from spywall.device.parallel import can_fork
from spywall.device.timeline import join_arrays, json_array, parts_of
from spywall.iocs import Indicator, IocIndex
from spywall.ios.check import check_backup, check_dump
from spywall.report import Subject, as_dict
from spywall.samples.ios import BackupSpec, write_backup
from spywall.samples.ios_fs import DumpSpec, write_dump

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux")


class Forkable:
    """Evidence that says modules may run in forked workers."""

    fork_safe = True

    def __init__(self) -> None:
        self.inputs: dict[str, str] = {}


@pytest.fixture(autouse=True)
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many forked runs happened (so that a test cannot pass by running in order)."""
    calls: list[int] = []
    real = parallel.run_forked

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(parallel, "run_forked", spy)
    return calls


def _index() -> IocIndex:
    index = IocIndex()
    index.add([Indicator("domain", "evil.example", "domain-name:value", "TestWare", "t.stix2")])
    return index


def _records(name: str, n: int) -> FnModule[Forkable]:
    """A module that records ``n`` rows, one of which matches, and reads one 'file'."""
    def fn(ctx: CheckContext[Forkable]) -> tuple[str, int, str]:
        ctx.evidence.inputs[f"{name}.db"] = name * 2
        for i in range(n):
            url = f"https://{'a.evil.example' if i == n // 2 else f'ok{i}.example'}/{name}"
            rec = ctx.record(name, iso_unix(1_700_000_000 + i), "visit", {"url": url, "i": i})
            ctx.check("url", url, rec=rec, path=f"dev!/{name}.db", what=f"{name} URL")
        return ("ok", n, "")
    return FnModule(name, f"{name} module", fn)


def _broken(ctx: CheckContext[Forkable]) -> tuple[str, int, str]:
    raise sqlite3.DatabaseError("file is not a database")


MODULES = [_records("alpha", 40), FnModule("broken", "fails", _broken),
           _records("beta", 300), _records("gamma", 5), _records("delta", 120)]


def _check(jobs: int, render: bool, mods: list[FnModule[Forkable]] | None = None,
           ) -> tuple[CheckContext[Forkable], list[dict[str, object]]]:
    ctx = CheckContext(evidence=Forkable(), index=_index(), subject=Subject(path="dev"))
    runs = run_modules(mods or MODULES, ctx, jobs=jobs, render=render)
    return ctx, [as_dict(r) for r in runs]


@pytest.mark.parametrize("render", [False, True])
def test_forked_run_is_the_sequential_run(render: bool, tmp_path: Path,
                                          forks: list[int]) -> None:
    one, runs_one = _check(1, render)
    assert not forks
    two, runs_two = _check(3, render)
    assert forks
    assert runs_two == runs_one
    assert [as_dict(f) for f in two.subject.findings] == [
        as_dict(f) for f in one.subject.findings]
    assert len(one.subject.findings) == 5  # 4 indicators, the broken module's unread
    assert [e.message for e in two.subject.errors] == [e.message for e in one.subject.errors]
    assert two.evidence.inputs == one.evidence.inputs
    if render:
        assert one.parts is not None
        assert two.parts is not None
        assert [p.module for p in two.parts] == ["alpha", "beta", "gamma", "delta"]
        for ctx, name in ((one, "one"), (two, "two")):
            report = new_report("check-test")
            report.subjects = [ctx.subject]
            write_mvt_outputs(report, ctx.parts or [], tmp_path / name)
        for f in sorted((tmp_path / "one").iterdir()):
            if f.name not in ("info.json", "report.json", "command.log"):  # (start time)
                assert (tmp_path / "two" / f.name).read_bytes() == f.read_bytes(), f.name
    else:
        assert {k: [r.data for r in v] for k, v in two.records.items()} == {
            k: [r.data for r in v] for k, v in one.records.items()}


def test_a_worker_that_dies_loses_nothing(forks: list[int]) -> None:
    parent = os.getpid()

    def dies(ctx: CheckContext[Forkable]) -> tuple[str, int, str]:
        if os.getpid() != parent:
            os._exit(9)  # a worker killed in the middle of a module
        return ("ok", 0, "ran here")

    mods = [*MODULES[:2], FnModule("dies", "d", dies), *MODULES[2:]]
    one, runs_one = _check(1, True, mods)
    for _ in range(3):  # whichever process takes which module, the result is whole
        two, runs_two = _check(2, True, mods)
        assert runs_two == runs_one
        assert [as_dict(f) for f in two.subject.findings] == [
            as_dict(f) for f in one.subject.findings]
    assert len(forks) == 3


def test_a_bug_in_a_worker_is_raised_here() -> None:
    def bug(ctx: CheckContext[Forkable]) -> tuple[str, int, str]:
        raise KeyError("a bug, not hostile input")

    with pytest.raises(KeyError, match="a bug"):
        _check(2, False, [*MODULES, FnModule("bug", "b", bug)])


def test_when_workers_are_not_forked(forks: list[int]) -> None:
    assert can_fork(Forkable(), 5)
    assert not can_fork(object(), 5)  # evidence that does not say it is safe
    assert not can_fork(Forkable(), 1)
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert not can_fork(Forkable(), 5)  # another thread runs: no fork
        ctx, _ = _check(2, False)  # still checks everything, in this process
        assert len(ctx.subject.findings) == 5
        assert not forks
    finally:
        stop.set()
        t.join()


def test_json_arrays_join() -> None:
    a, b = json_array([{"x": 1}, {"x": 2}]), json_array([{"y": "ü"}])
    assert json.loads(join_arrays(a, b)) == [{"x": 1}, {"x": 2}, {"y": "ü"}]
    assert join_arrays(json_array([]), b) == b
    assert join_arrays(a, json_array([])) == a
    assert json.loads(json_array([{"big": 1 << 80}])) == [{"big": 1 << 80}]


@pytest.mark.parametrize("kind", ["backup", "dump"])
def test_ios_check_forked_is_sequential(kind: str, tmp_path: Path, forks: list[int]) -> None:
    """A real check: the report and the rendered result folder do not depend on jobs."""
    index = IocIndex.load(())
    if kind == "backup":
        root = write_backup(tmp_path / "b", BackupSpec(messages=300, history=300))
        outs = [check_backup(root, index, index.sources, jobs=j, render=True) for j in (1, 2)]
    else:
        root = write_dump(tmp_path / "d", DumpSpec())
        outs = [check_dump(root, index, index.sources, jobs=j, render=True) for j in (1, 2)]
    assert len(forks) == 1
    one, two = (json.loads(json.dumps(as_dict(o.report), default=str)) for o in outs)
    for r in (one, two):
        r.pop("started")
        r.pop("finished")
    assert two == one
    assert one["summary"]["findings"] > 5
    assert outs[0].ctx.evidence.inputs == outs[1].ctx.evidence.inputs
    folders = []
    for i, o in enumerate(outs):
        write_mvt_outputs(o.report, o.ctx.parts or [], tmp_path / f"out{i}",
                          o.ctx.evidence.inputs)
        folders.append(tmp_path / f"out{i}")
    names = sorted(p.name for p in folders[0].iterdir())
    assert names == sorted(p.name for p in folders[1].iterdir())
    for name in names:
        if name not in ("info.json", "report.json", "command.log"):
            assert (folders[1] / name).read_bytes() == (folders[0] / name).read_bytes(), name
    assert parts_of(outs[0].ctx.records, outs[0].ctx.detected)  # sequential keeps records


def test_the_program_forks_and_reports_what_one_process_reports(tmp_path: Path) -> None:
    """``python -m spywall check-ios`` (default --jobs) against ``-j 1``: same exit status,
    same findings, same result files (apart from the times in info/report)."""
    import subprocess

    root = write_backup(tmp_path / "b", BackupSpec(messages=200, history=200))
    outs = {}
    for jobs in ("1", "2"):
        proc = subprocess.run(
            [sys.executable, "-m", "spywall", "check-ios", str(root), "-f", "json", "-q",
             "-j", jobs, "--output", str(tmp_path / f"out{jobs}")],
            capture_output=True, text=True, check=False, timeout=120)
        assert proc.returncode == 1, proc.stderr
        outs[jobs] = json.loads(proc.stdout)
    assert [f["rule"] for f in outs["2"]["subjects"][0]["findings"]] == [
        f["rule"] for f in outs["1"]["subjects"][0]["findings"]]
    assert outs["1"]["summary"]["findings"] > 5
    for f in sorted((tmp_path / "out1").iterdir()):
        if f.name not in ("info.json", "report.json", "command.log"):
            assert (tmp_path / "out2" / f.name).read_bytes() == f.read_bytes(), f.name


@pytest.mark.parametrize("broken", ["fork", "tempfile"])
def test_no_worker_to_be_had_means_this_process_does_the_work(
        broken: str, monkeypatch: pytest.MonkeyPatch, forks: list[int]) -> None:
    def refuse(*_: object, **__: object) -> object:
        raise OSError(11, "Resource temporarily unavailable")

    if broken == "fork":
        monkeypatch.setattr(parallel.os, "fork", refuse)
    else:
        monkeypatch.setattr(parallel.tempfile, "TemporaryFile", refuse)
    one, runs_one = _check(1, True)
    two, runs_two = _check(2, True)
    assert forks  # the forked run was attempted
    assert runs_two == runs_one
    assert [as_dict(f) for f in two.subject.findings] == [
        as_dict(f) for f in one.subject.findings]
