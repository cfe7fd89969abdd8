"""Ingest across two processes: this one parses, validates and gates each batch and
builds its rows while a writer process stores the batches before (``Store.write``, one
transaction for a batch, or for the few waiting together when the writer is behind), so
that on two cores the gate and the database work at once.

What holds as in the one-process path:
- order: batches are stored in the order they were gated;
- idempotency by event id: before gating a batch, its ids are looked up among the stored
  events and among the ids of batches sent but not committed yet;
- nothing is reported accepted before its commit: a batch's outcomes are counted when
  the writer says it committed it (batches are handed to the writer by a sender thread,
  so that gating goes on while the writer stores; answers are read here). Killed, this
  process loses at most the batches in flight, none of them reported; the writer, on
  the end of its input, stops.

Another process may store some of the same ids between the look-up and the write (an
``ingest`` beside a server): the writer then sees fewer new events than a batch holds,
rolls its transaction back and stores nothing more; the batches not stored are gated and
stored again in this process, one transaction each, from the registry and state the
database holds then, exactly as without the pipeline.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import pickle
import queue
import threading
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from spywall.platform import db
from spywall.platform.contract import Event
from spywall.platform.store import Rows, Store

if TYPE_CHECKING:
    from spywall.platform.intake import Intake, Outcome

# Batches gated ahead of the one being stored, and how many of those the writer may store
# in one transaction when it is behind. With the sender thread the writer is the slower
# side at a million events on SQLite, and each of its commits rewrites most of the
# account index's leaves: up to 8 batches a commit instead of 4 took 51,700-54,000 to
# 54,500-56,300 events/s (one run each, alternating), with 40 MB more in flight.
DEPTH = 8
GROUP = 8


def _dumps(rows: Rows) -> bytes:
    """A batch's rows as a pickle without the memo (half the time: the rows are flat
    tuples of strings and numbers, with nothing shared worth referring back to)."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    pickler.dump(rows)
    return out.getvalue()


class WriterError(RuntimeError):
    """The writer process failed or died; the batches in flight were not reported."""


class _Conflict(Exception):
    """Some events of a batch were stored by another process meanwhile."""


def writer(url: str, pipe: Connection, parent_end: Connection) -> None:
    """The writer process: each message is a pickled ``Rows``, stored in one transaction
    and answered ``ok``; an empty message or the end of the pipe ends it (the parent's
    end is closed here, so that the parent's death is that end)."""
    parent_end.close()
    engine = db.make_engine(url, bulk=True)
    with engine.connect() as conn:
        store = Store.of(conn)
    try:
        _serve(engine, store, pipe)
    except OSError:        # the parent is gone: what was committed stays (safe to resend)
        return
    finally:
        engine.dispose()


def _serve(engine: sa.Engine, store: Store, pipe: Connection) -> None:
    """Store the batches the parent sends and answer for each, in order. The batches
    already waiting when one is taken are stored with it in one transaction (at most
    ``GROUP``): when the writer falls behind it commits less often, and each commit
    writes the pages its rows changed once for them all (a batch's account index
    entries fall all over the index, so a commit of one batch rewrote thousands of
    pages that the next commit rewrote again)."""
    stopped = False
    while True:
        try:
            message = pipe.recv_bytes()
        except EOFError:
            return
        group: list[bytes] = []
        while message:
            group.append(message)
            if len(group) >= GROUP or not pipe.poll():
                break
            message = pipe.recv_bytes()
        if not group:
            return
        if stopped:
            for _ in group:
                pipe.send(("skipped", ""))
        else:
            status, detail = _store(engine, store, group)
            stopped = status != "ok"
            pipe.send((status, detail))
            for _ in group[1:]:
                pipe.send((status if status == "ok" else "skipped", ""))
            if status == "error":
                return
        if not message:
            return


def _store(engine: sa.Engine, store: Store, group: list[bytes]) -> tuple[str, str]:
    try:
        with engine.begin() as conn:
            for message in group:
                rows: Rows = pickle.loads(message)   # noqa: S301 (our own parent's rows)
                if store.write(conn, rows) != len(rows.events):
                    raise _Conflict
    except _Conflict:
        return "conflict", ""
    except Exception as exc:   # reported to the parent, which raises it
        return "error", f"{type(exc).__name__}: {exc}"
    return "ok", ""


class Pipeline:
    """Batches through a writer process. ``put`` gates a batch, hands it to the writer and
    returns the outcomes of the batches committed meanwhile; ``close`` waits for the rest.
    After a conflict (see the module's text) every batch goes through ``Intake.submit``."""

    def __init__(self, intake: Intake, source: str | None = None) -> None:
        self.intake, self.source = intake, source
        url = intake.engine.url.render_as_string(hide_password=False)
        # Forked where the platform can (no re-import of the program, like the scan
        # engine's workers); the child opens its own engine and never touches this one's.
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        self.pipe, child = ctx.Pipe()
        self.process = ctx.Process(target=writer, args=(url, child, self.pipe),
                                   daemon=True, name="spywall-ingest-writer")
        self.process.start()
        child.close()
        # Batches go to the writer from a thread of their own: a batch's rows (about 1.7 MB
        # for 5,000 events) are more than the connection holds, so a send waits until the
        # writer reads them, which it does only between transactions. Sent from here,
        # the gate stood still for each of the writer's transactions (3 of 19 s at a
        # million events); the thread waits instead, in one system call a batch with
        # the GIL released. It holds at most the DEPTH + 1 batches in flight.
        self.outbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self.sender = threading.Thread(target=self._send_all, name="spywall-ingest-send",
                                       daemon=True)
        self.sender.start()
        # Reads outside any write transaction: the writer holds SQLite's write lock.
        self.reader = intake.engine.connect().execution_options(**db.READ_ONLY)
        self.flight: deque[tuple[Sequence[Event], list[Outcome], set[str]]] = deque()
        self.flying: set[str] = set()
        self.serial = False

    def put(self, events: Sequence[Event]) -> list[list[Outcome]]:
        if self.serial:
            return [self.intake.submit(events, self.source)]
        stored = self._stored([e.id for e in events])
        rows, outcomes = self.intake.prepare(events, stored, self.source, self.flying)
        self.outbox.put(_dumps(rows))
        fresh = {o.id for o in outcomes if not o.duplicate}
        self.flight.append((events, outcomes, fresh))
        self.flying |= fresh
        done: list[list[Outcome]] = []
        while len(self.flight) > DEPTH and not self.serial:
            done += self._settle()
        return done

    def _send_all(self) -> None:
        """The sender thread: each batch in order, then the empty message that ends the
        writer. A writer gone ends it (the next answer awaited says so)."""
        while True:
            message = self.outbox.get()
            try:
                self.pipe.send_bytes(message)
            except OSError:
                return
            if not message:
                return

    def _stored(self, ids: list[str]) -> dict[str, tuple[str, Any, Any]]:
        from spywall.platform.intake import stored_events

        try:
            return stored_events(self.reader, ids)
        finally:
            self.reader.rollback()

    def close(self) -> list[list[Outcome]]:
        done: list[list[Outcome]] = []
        while self.flight and not self.serial:
            done += self._settle()
        self._stop()
        self.intake.store.pending_media = True   # the writer may have left some
        return done

    def abort(self) -> None:
        """Stop without waiting for answers (the batches in flight are not reported; the
        writer finishes what it has received, which is safe to send again; the batches
        still waiting for the sender thread are dropped)."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.outbox.get_nowait()
        self._stop()

    def _settle(self) -> list[list[Outcome]]:
        """The writer's answer for the oldest batch in flight."""
        try:
            status, detail = self.pipe.recv()
        except (EOFError, OSError):
            self._stop()
            raise WriterError("the ingest writer process died; the batches in flight "
                              "were not reported accepted") from None
        events, outcomes, fresh = self.flight.popleft()
        self.flying -= fresh
        if status == "ok":
            return [outcomes]
        if status == "error":
            self._stop()
            raise WriterError(f"the ingest writer failed: {detail}")
        # A conflict: this batch and every one after it again, here, from the database.
        again = [events] + [e for e, _o, _f in self.flight]
        for _ in self.flight:
            self.pipe.recv()            # "skipped"
        self.flight.clear()
        self.flying.clear()
        self._stop()
        self.serial = True
        self.intake.resync()
        return [self.intake.submit(batch, self.source) for batch in again]

    def _stop(self) -> None:
        self.outbox.put(b"")            # after the batches still queued, if any
        self.sender.join(timeout=60)    # (a writer gone makes its send fail at once)
        if self.process.is_alive():
            self.process.join(timeout=60)
        self.pipe.close()
        self.reader.close()

