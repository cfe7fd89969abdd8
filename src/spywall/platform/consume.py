"""Events from a NATS JetStream stream (``spywall platform consume``): one JSON event per
message, through the same ``Intake`` as ``ingest`` and ``POST /v1/events``.

A durable pull consumer (explicit acks) takes batches. Each message is checked by the
contract's validator; one it refuses is terminated (``term``: never redelivered) and
counted with its stream sequence and reason, and the rest of the batch goes on. The
valid events of a batch are stored in one transaction, and their messages acknowledged
only after it committed: a consumer that dies before the commit loses nothing (the
messages come back after ``ack_wait``), and one that dies between commit and
acknowledgement is safe too (the redelivered events are duplicates by id, stored once).
A batch that takes long (large attachments) is reported in progress every half
``ack_wait``, so it is not delivered a second time while it is being stored.
After every batch that stored new events the analysis runs, and the gate reloads what
it changed. ``idle_exit`` ends the run after that many seconds without a message;
SIGTERM or SIGINT end it after the batch in hand.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa

from spywall.errors import InputError
from spywall.platform.contract import Event, EventError, parse_line
from spywall.platform.intake import IngestResult, Intake

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

    from spywall.platform.media import PayloadScanner

BATCH = 500
FETCH_WAIT = 1.0      # seconds one fetch request waits for messages
ACK_WAIT = 30.0       # seconds before an unacknowledged message is redelivered
# Bytes of messages held in this process: beyond it nats-py drops deliveries (a slow
# consumer), which come back after ack_wait, unacknowledged; nothing is lost.
PENDING_BYTES = 64 << 20

Log = Callable[[str], None]
T = TypeVar("T")


def consume(engine: sa.Engine, nats_url: str, stream: str, subject: str | None,
            durable: str, base: Path | None, idle_exit: float | None, log: Log,
            *, batch: int = BATCH, ack_wait: float = ACK_WAIT,
            scanner: PayloadScanner | None = None) -> IngestResult:
    """Take events from ``stream`` (optionally only ``subject``) until idle for
    ``idle_exit`` seconds (or forever, or until SIGTERM); what was taken, counted.
    ``scanner``: the gate's payload scanner (default: one of the intake's own)."""
    if batch < 1 or ack_wait <= 0 or (idle_exit is not None and idle_exit < 0):
        raise InputError("batch must be positive, ack_wait and idle_exit not negative")
    consumer = _Consumer(engine, base, log, batch, scanner)
    return asyncio.run(consumer.run(nats_url, stream, subject, durable, idle_exit, ack_wait))


class _Consumer:
    def __init__(self, engine: sa.Engine, base: Path | None, log: Log, batch: int,
                 scanner: PayloadScanner | None = None) -> None:
        self.engine, self.log, self.batch = engine, log, batch
        self.intake = Intake(engine, base, source="nats", scanner=scanner)
        self.result = IngestResult()
        self.stop = asyncio.Event()
        self.ack_wait = ACK_WAIT

    async def run(self, url: str, stream: str, subject: str | None, durable: str,
                  idle_exit: float | None, ack_wait: float) -> IngestResult:
        nc = await _connect(url, self.log)
        try:
            sub, self.ack_wait = await _subscription(nc.jetstream(), stream, subject,
                                                     durable, ack_wait, self.log)
            self._on_signals()
            await self._loop(nc, sub, idle_exit)
        finally:
            await nc.close()
            self.intake.close()     # the payload scanner's workers
        return self.result

    def _on_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)

    async def _loop(self, nc: Client, sub: JetStreamContext.PullSubscription,
                    idle_exit: float | None) -> None:
        from nats.errors import TimeoutError as FetchTimeout

        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        while not self.stop.is_set():
            try:
                msgs = await sub.fetch(self.batch, timeout=FETCH_WAIT)
            except (FetchTimeout, TimeoutError):   # nats-py raises either
                msgs = []
            if msgs:
                await self._batch(nc, msgs)
                idle_since = loop.time()
            elif idle_exit is not None and loop.time() - idle_since >= idle_exit:
                return

    async def _batch(self, nc: Client, msgs: list[Msg]) -> None:
        events: list[Event] = []
        valid: list[Msg] = []
        for msg in msgs:
            try:
                events.append(parse_line(msg.data))
            except EventError as exc:
                await self._refuse(msg, str(exc))
                continue
            except UnicodeDecodeError:
                await self._refuse(msg, "not UTF-8")
                continue
            valid.append(msg)
        if not events:
            await nc.flush()
            return
        await asyncio.to_thread(self.intake.refresh)
        outcomes = await self._working(valid, asyncio.to_thread(self.intake.submit, events,
                                                                "nats"))
        for msg in valid:            # only now: the transaction has committed
            await msg.ack()
        await nc.flush()
        self.result.count(outcomes)
        if any(not o.duplicate for o in outcomes):
            await asyncio.to_thread(self._analyse)

    async def _working(self, msgs: list[Msg], work: Awaitable[T]) -> T:
        """Await ``work``, telling the server every half ``ack_wait`` that ``msgs`` are
        still being worked on (a slow batch, large attachments), so they are not
        delivered again meanwhile."""
        task = asyncio.ensure_future(work)
        while not (await asyncio.wait({task}, timeout=self.ack_wait / 2))[0]:
            for msg in msgs:
                await msg.in_progress()
        return task.result()

    async def _refuse(self, msg: Msg, reason: str) -> None:
        seq = msg.metadata.sequence.stream
        self.result.refuse(seq, reason)
        self.log(f"message {seq}: refused: {reason}")
        await msg.term()

    def _analyse(self) -> None:
        from spywall.platform.service import run_analysis

        analysis = run_analysis(self.engine)
        self.result.violations += analysis.violations
        if analysis.proposals or analysis.derived or analysis.attributed or analysis.violations:
            self.intake.refresh(force=True)


async def _connect(url: str, log: Log) -> Client:
    import nats
    from nats.errors import NoServersError

    async def on_error(exc: Exception) -> None:   # one line, not nats-py's traceback
        log(f"nats: {type(exc).__name__}: {exc}")

    try:
        return await nats.connect(url, connect_timeout=5, max_reconnect_attempts=10,
                                  allow_reconnect=True, error_cb=on_error)
    except (NoServersError, OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach NATS at {url}: {exc or type(exc).__name__}") from None


async def _subscription(js: JetStreamContext, stream: str, subject: str | None,
                        durable: str, ack_wait: float,
                        log: Log) -> tuple[JetStreamContext.PullSubscription, float]:
    """The durable pull consumer ``durable`` on ``stream`` (created when missing; an
    existing one is kept as configured) and its ``ack_wait`` in seconds."""
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
    from nats.js.errors import BadRequestError, NotFoundError

    try:
        await js.stream_info(stream)
    except NotFoundError:
        raise InputError(f"no JetStream stream {stream!r}") from None
    except ValueError as exc:   # a name NATS does not allow
        raise InputError(f"stream {stream!r}: {exc}") from None
    config = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
                            deliver_policy=DeliverPolicy.ALL, filter_subject=subject,
                            ack_wait=ack_wait)
    try:
        await js.add_consumer(stream, config)
    except BadRequestError as exc:
        log(f"consumer {durable!r} exists with another configuration; kept as it is "
            f"({exc.description})")
    except ValueError as exc:
        raise InputError(f"consumer {durable!r}: {exc}") from None
    info = await js.consumer_info(stream, durable)
    sub = await js.pull_subscribe_bind(durable=durable, stream=stream,
                                       pending_bytes_limit=PENDING_BYTES)
    return sub, float(info.config.ack_wait or ACK_WAIT)
