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
