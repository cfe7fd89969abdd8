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
- ``freeze_all()``: before the interpreter shuts down (the program's last step).
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


def freeze_all() -> None:
    """Everything alive now is left out of any later collection (at exit)."""
    gc.freeze()
