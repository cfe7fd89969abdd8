"""The persistent scan worker pool (``spywall.scanpool``) as its owner sees it: calls
answered in workers under the memory ceiling, a failed call answered without losing the
worker, and a worker stuck in a call (as in C++: deaf to its pipe) ends when its owner
is killed. Real processes, the default start method (the fork server)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from spywall.limits import Limits, MiB
from spywall.scanpool import PoolClosed, ScanPool, WorkerLost

SRC = Path(__file__).resolve().parents[1] / "src"


def _ceiling() -> int:
    return resource.getrlimit(resource.RLIMIT_DATA)[0]


def test_calls_run_in_workers_under_the_ceiling() -> None:
    pool = ScanPool(Limits(max_memory=512 * MiB), size=1)
    try:
        assert pool.pids() == []
        pid = pool.call(os.getpid)
        assert pid != os.getpid()
        assert pool.pids() == [pid]
        assert pool.call(_ceiling) == 512 * MiB          # the worker's own limit
        assert _ceiling() != 512 * MiB                   # not this process's
        with pytest.raises(WorkerLost, match=r"its scan worker failed: ValueError"):
            pool.call(int, "not a number")
        assert pool.call(os.getpid) == pid               # the same worker went on
    finally:
        pool.close()
    with pytest.raises(PoolClosed):
        pool.call(os.getpid)


_OWNER = """
import sys, threading, time
from spywall.limits import Limits
from spywall.scanpool import ScanPool

if __name__ == "__main__":   # a fork server's workers import the main module again
    pool = ScanPool(Limits(seconds=1))     # the worker is killed after 5 s (wall or CPU)
    spin = "open(%r, 'w').close()\\nwhile True:\\n    pass" % sys.argv[1]
    threading.Thread(target=pool.call, args=(exec, spin), daemon=True).start()
    while not pool.pids():
        time.sleep(0.01)
    print(pool.pids()[0], flush=True)
    time.sleep(3600)
"""


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_CPU"), reason="no CPU time limit")
def test_a_spinning_worker_ends_when_its_owner_is_killed(tmp_path: Path) -> None:
    """The owner is killed while its worker spins (as qpdf in a loop, deaf to its pipe):
    nobody kills the worker at the deadline, the kernel does once it spent its CPU time."""
    marker = tmp_path / "spinning"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    owner = subprocess.Popen([sys.executable, "-c", _OWNER, str(marker)], env=env,
                             stdout=subprocess.PIPE)
    try:
        assert owner.stdout is not None
        worker = int(owner.stdout.readline())
        while not marker.exists():      # the worker is in the call, not reading its pipe
            assert owner.poll() is None
            time.sleep(0.05)
        owner.kill()
        owner.wait()
        for _ in range(2400):           # 5 s of CPU time, on a machine that may be busy
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(worker, signal.SIGKILL)
            pytest.fail("the spinning worker outlived its owner")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


_BLOCKED_OWNER = """
import sys, threading, time
from spywall.limits import Limits
from spywall.scanpool import ScanPool

if __name__ == "__main__":
    pool = ScanPool(Limits(seconds=600))   # no deadline or CPU limit comes in this test
    block = "open(%r, 'w').close()\\nimport time\\ntime.sleep(3600)" % sys.argv[1]
    threading.Thread(target=pool.call, args=(exec, block), daemon=True).start()
    while not pool.pids():
        time.sleep(0.01)
    print(pool.pids()[0], flush=True)
    time.sleep(3600)
"""

_SCAN_OWNER = """
import os, sys, time
from spywall import engine, workers
from spywall.limits import Limits

def stuck(*args, **kwargs):      # a scan blocked in C++ as the supervisor sees it
    with open(sys.argv[1] + ".tmp", "w") as fh:
        fh.write(str(os.getpid()))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(3600)

engine.scan_path = stuck            # the workers are forked: they see the patch
workers.scan_files([sys.argv[2]], Limits(seconds=600), 1)
"""


def _gone(pid: int, polls: int = 1200) -> bool:
    for _ in range(polls):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return False


def _owner(script: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env,
                            stdout=subprocess.PIPE)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_blocked_pool_worker_ends_with_its_owner(tmp_path: Path) -> None:
    """A worker blocked in a call (no CPU spent, so RLIMIT_CPU never fires; deaf to its
    pipe) ends when its owner is killed: the kernel's parent-death signal."""
    marker = tmp_path / "blocked"
    owner = _owner(_BLOCKED_OWNER, str(marker))
    try:
        assert owner.stdout is not None
        worker = int(owner.stdout.readline())
        while not marker.exists():
            assert owner.poll() is None
            time.sleep(0.05)
        owner.kill()
        owner.wait()
        assert _gone(worker), "the blocked worker outlived its owner"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_stuck_scan_worker_ends_with_its_supervisor(tmp_path: Path, forked: None) -> None:
    """The ``scan`` command's supervisor killed while its worker is stuck: the worker
    ends too (it would otherwise hold the input for as long as the call lasts)."""
    marker, sample = tmp_path / "worker.pid", tmp_path / "input.bin"
    sample.write_bytes(b"%PDF-1.7\n")
    owner = _owner(_SCAN_OWNER, str(marker), str(sample))
    try:
        while not marker.exists():
            assert owner.poll() is None
            time.sleep(0.05)
        worker = int(marker.read_text())
        assert worker != owner.pid
        owner.kill()
        owner.wait()
        assert _gone(worker), "the stuck scan worker outlived its supervisor"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def _fork_server_of_a_forked_pool(answers: Any) -> None:
    pool = ScanPool(Limits(), size=1)
    try:
        answers.put(("ok", pool.call(os.getppid)))
    except WorkerLost as lost:
        answers.put(("lost", str(lost)))
    finally:
        pool.close()


def test_a_process_forked_from_a_pool_owner_starts_its_own_fork_server(
        forked: None) -> None:
    """A retro-hunt's task process is forked from its driver: when the driver had started
    a fork server, the child inherited its state and could start no worker (ECHILD)."""
    import multiprocessing

    pool = ScanPool(Limits(), size=1)
    try:
        server = pool.call(os.getppid)          # this process's fork server
        ctx = multiprocessing.get_context("fork")
        answers = ctx.Queue()
        child = ctx.Process(target=_fork_server_of_a_forked_pool, args=(answers,))
        child.start()
        status, value = answers.get(timeout=300)
        child.join(timeout=300)
    finally:
        pool.close()
    assert status == "ok", value
    assert value not in (server, os.getpid(), child.pid)   # a fork server of the child's
