"""A thread of its own for blocking work that an event loop awaits, one job at a time in
the order given: ``await worker.run(fn, *args)``.

The inline gate runs its transaction here, so a decision that waits on the database (the
SQLite write lock while an analysis holds it, a PostgreSQL round trip) never stops the
event loop. It costs less per call than ``loop.run_in_executor`` (no concurrent future
chained to an asyncio one): jobs go in through a C queue, answers come back through one
``call_soon_threadsafe``. The thread starts with the first job and ends when the worker
is collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any],
             tuple[Any, ...]]


class Worker:
    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the worker's thread: its result, or the exception it raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._thread is None:
            self._start()
        self._jobs.put((loop, future, fn, args))
        return await future

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=_serve, args=(self._jobs,), name=self.name,
                                          daemon=True)
                thread.start()
                weakref.finalize(self, self._jobs.put, None)   # ends the thread
                self._thread = thread


def _serve(jobs: queue.SimpleQueue[_Job | None]) -> None:
    while (job := jobs.get()) is not None:
        _run(*job)
        del job            # hold nothing of a finished job while waiting for the next


def _run(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any],
         fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        result = fn(*args)
    except BaseException as exc:      # handed to the caller, which raises it
        _answer(loop, _fail, future, exc)
    else:
        _answer(loop, _succeed, future, result)


def _answer(loop: asyncio.AbstractEventLoop, settle: Callable[..., None],
            future: asyncio.Future[Any], value: Any) -> None:
    with contextlib.suppress(RuntimeError):   # a closed loop: nobody waits any more
        loop.call_soon_threadsafe(settle, future, value)


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.cancelled():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.cancelled():
        future.set_exception(exc)
