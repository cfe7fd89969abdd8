"""spywall.heap: the only place that tunes the cyclic collector, and what it promises."""

from __future__ import annotations

import ast
import gc
from pathlib import Path

import spywall
from spywall import heap


def test_paused_pauses_and_restores() -> None:
    assert gc.isenabled()
    with heap.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with heap.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # paused by the caller: stays paused
    finally:
        gc.enable()


def test_paused_restores_after_an_exception() -> None:
    try:
        with heap.paused():
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.isenabled()


def test_settled_freezes_pauses_and_restores() -> None:
    assert gc.isenabled()
    with heap.settled():
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # an explicit collection still frees garbage cycles
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    gc.disable()
    try:
        with heap.settled():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_no_other_module_touches_the_collector() -> None:
    """``gc`` is imported by spywall.heap alone (the tuning lives in one tested place)."""
    root = Path(spywall.__file__).parent
    users = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if "gc" in names:
                users.append(path.relative_to(root).as_posix())
    assert users == ["heap.py"]


def test_streaming_freezes_collects_young_less_often_and_restores() -> None:
    before = gc.get_threshold()
    with heap.streaming(young=12345):
        assert gc.isenabled()
        assert gc.get_threshold()[0] == 12345
        assert gc.get_freeze_count() > 0
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # garbage cycles are still found
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0



_PROBE = """
import contextlib, ctypes, json, sys
from spywall import heap

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

try:
    info = ctypes.CDLL(None).mallinfo2
except AttributeError:  # glibc before 2.33
    raise SystemExit(3)
info.restype = Info

def probe():
    before = info().hblks
    big = bytearray(24 << 20)
    mapped = info().hblks - before
    del big
    return [mapped, info().arena >= 24 << 20]

with heap.freed_memory_kept() if sys.argv[1] == "kept" else contextlib.nullcontext():
    print(json.dumps(probe()))
"""


def test_freed_memory_kept_takes_large_blocks_from_the_heap() -> None:
    """In a fresh process (the allocator's defaults): a 24 MiB block is mapped apart and
    given back when freed; in another, inside ``freed_memory_kept``, it comes from the
    heap and, freed, stays there."""
    import json
    import os
    import subprocess
    import sys

    import pytest

    if not heap._glibc():
        pytest.skip("not glibc: the allocator is left as it is")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    seen = []
    for mode in ("plain", "kept"):
        done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True,
                              text=True, env=env, check=False)
        if done.returncode == 3:
            pytest.skip("glibc before 2.33 (no mallinfo2 to look with)")
        assert done.returncode == 0, done.stderr
        seen.append(json.loads(done.stdout))
    assert seen == [[1, False], [0, True]]
