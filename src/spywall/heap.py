"""The one place where spywall tunes the cyclic garbage collector (and, for a device
check, the C allocator: ``freed_memory_kept``).

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
- ``freed_memory_kept()``: a device check on Linux with glibc: blocks of up to 32 MiB
  are taken from the heap, and up to 128 MiB of freed heap stays in the process, instead
  of each large block being mapped afresh and given back when freed. Rendering a large
  backup's result folder makes and frees many texts of megabytes (every message's JSON
  and timeline rows): each new mapping is first touched page by page, a page fault for
  every 4 KiB. On a backup of 100,000 messages and 100,000 visits this took 108,000 page
  faults down to 85,000 and about 60 ms of system time off a 1.05 s check (measured).
  The C allocator's own thresholds are set back afterwards (to its defaults, 128 KiB; it
  no longer moves them by itself after that).
"""

from __future__ import annotations

import gc
import os
import sys
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


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_DEFAULT = 128 * 1024  # both thresholds' defaults
KEPT_BLOCK, KEPT_FREE = 32 << 20, 128 << 20  # (32 MiB: the largest mmap threshold glibc
# accepts on a 64-bit system)


def _glibc() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError):  # (another C library: musl)
        return False


@contextmanager
def freed_memory_kept() -> Iterator[None]:
    """glibc only (elsewhere, nothing changes): large blocks come from the heap and
    freed memory stays in the process inside the block (see the module docstring)."""
    if not _glibc():
        yield
        return
    import ctypes  # (only here: 3 ms to import)

    mallopt = ctypes.CDLL(None).mallopt
    mallopt(_M_MMAP_THRESHOLD, KEPT_BLOCK)
    mallopt(_M_TRIM_THRESHOLD, KEPT_FREE)
    try:
        yield
    finally:
        mallopt(_M_TRIM_THRESHOLD, _DEFAULT)
        mallopt(_M_MMAP_THRESHOLD, _DEFAULT)


def freeze_all() -> None:
    """Everything alive now is left out of any later collection (at exit)."""
    gc.freeze()
