"""The one place where spywall tunes the cyclic garbage collector.

Start-up, indicator loading and a device check build many small objects that live to the
end of the run and hold no cycles; the collector kept walking them (30 collections during
start-up, 5 ms; a third of the load time of a large STIX file; 22 collections, 9 ms, of a
check-ios run that freed 105 objects; 20 ms at exit after a device check: all measured).
Objects are always freed by reference counting; only the search for garbage cycles is
put off while these run, and the collector is restored afterwards.

- ``paused()``: no cyclic collection inside the block (imports, loading indicators).
- ``settled()``: a device check: what exists before is frozen (out of the collector's
  sight), nothing is collected during the check, and what the check made joins the old
  generation when it ends (left young, it made the next allocation start a collection
  that walked all of it, 6.5 ms, right before the program ends).
- ``streaming()``: a long stream of small work items (``platform ingest``): what exists
  before is frozen, and the youngest generation is collected every 50,000 allocations
  instead of 700. Each event of an ingest leaves a few short-lived objects and a batch
  lives for three batches; the default threshold made the collector walk them (and,
  every few batches, the whole heap) over and over: a quarter of the gating process's
  time at 200,000 events. Garbage cycles are still collected (an event makes about one
  in four), so memory stays flat however long the stream.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block; the collector's state is restored."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@contextmanager
def settled() -> Iterator[None]:
    """Freeze what exists, pause the collector for the block, then move what the block
    made into the old generation and restore the collector (see the module docstring)."""
    was = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if was:
            gc.enable()


@contextmanager
def streaming(young: int = 50_000) -> Iterator[None]:
    """Freeze what exists and collect the youngest generation every ``young``
    allocations inside the block; the thresholds are restored and the heap unfrozen
    afterwards (see the module docstring)."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(young, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def freeze_all() -> None:
    """Everything alive now is left out of any later collection (at exit)."""
    gc.freeze()
