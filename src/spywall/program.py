"""The ``spywall`` program: the console script and ``python -m spywall``.

Start-up and shut-down are part of what a user waits for (a device check of a backup
takes about a quarter of a second), and the cyclic garbage collector spent a measurable
share of both walking objects that live to the end: the modules being imported (30
collections during start-up, 5 ms, freeing almost nothing) and, at exit, the whole heap
(20 ms after a device check; 7 ms frozen). So the collector is paused while the command
line interface is imported, and the heap is frozen before the interpreter shuts down:
objects are still freed by reference counting. ``spywall.cli.main``, which tests call
in-process, does neither. (The collector is tuned only through ``spywall.heap``.)
"""

from __future__ import annotations

from spywall import heap


def main() -> int:
    with heap.paused():
        from spywall import cli
    code = cli.main()
    heap.freeze_all()
    return code
