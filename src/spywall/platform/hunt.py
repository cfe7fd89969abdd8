"""Retro-hunts: stored objects re-examined with today's detectors, on Ray or a local
process pool, and what they find joined to the platform as malicious deliveries.

An exploit is often found months after it was used. ``hunt`` lists the objects of a
store (a folder, or any fsspec URL) changed since a date, cuts the list into tasks of
bounded size (files and bytes), and runs each task where it can: on Ray (``--ray auto``
starts a local instance, ``--ray ADDRESS`` joins a cluster; a task whose worker dies is
retried by Ray) or, without Ray, in a local process pool. The same function examines a
task in both, so the results are the same. The driver writes each finished task to a
manifest (JSON Lines) before it counts it, so a hunt that stops resumes with what was
left, and a task is never applied twice.

Stored objects are attacker-written, so no object is parsed in the task's own process:
each goes to a supervised scan worker (``spywall.scanpool``, one per task process, kept
across tasks) under the memory ceiling and deadline of ``Scan``. An object whose worker
is lost (killed at the deadline, out of memory, crashed) is reported not examined
completely, with the reason, and the task goes on with its next object. A task that still
fails as a whole (its own process killed; on Ray, after Ray's retries; in the pool, after
``retries`` more attempts alone) is ``TaskLost``: its objects are reported not examined,
the hunt goes on with the other tasks, and the manifest does not record it, so a resumed
hunt tries it again.

Each object is examined by content: a capture (pcap/pcapng) through the pcap pipeline,
a saved device-check result file (with ``--iocs``) by matching its records again
(``hunt_reports``), anything else through the scan engine. An object with an exploit
finding joins the platform by its content hash: the deliveries that carried it
(``delivery_payloads``, and calls whose ``call.media`` capture had that hash) become
malicious deliveries, and the analysis then brings campaigns, targets, notifications and
the evidence log up to date.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa

from spywall.limits import Limits
from spywall.platform import db, hunt_reports
from spywall.platform.evidence_hook import entry, record
from spywall.platform.store import mark_malicious_call

TASK_FILES = 64
TASK_BYTES = 64 << 20
READ_CAP = 1 << 31   # the largest object read (a larger one is reported unreadable)
HASH_CHUNK = 1 << 20
LISTED = 1000        # objects not examined completely, named in the result (all counted)
CRASH_ONCE = "SPYWALL_HUNT_CRASH_ONCE"   # tests: a marker path; the first task to see it dies


class Item(msgspec.Struct, frozen=True):
    path: str
    size: int


class Task(msgspec.Struct, frozen=True):
    id: str
    items: list[Item]
    detectors: tuple[str, ...] = ()        # only these count (empty: every detector)
    iocs: tuple[str, ...] = ()             # indicator files to match (empty: none)


class Scan(msgspec.Struct, frozen=True):
    """The scan workers of a hunt: their limits (None: the platform's, as the gate's)
    and start method (None: the fork server; "fork" for tests whose patches must reach
    the workers)."""
    limits: Limits | None = None
    method: str | None = None


DEFAULT_SCAN = Scan()


class Found(msgspec.Struct, frozen=True):
    path: str
    sha256: str
    malicious: bool
    complete: bool
    detectors: list[str]
    infrastructure: list[str]
    indicators: list[str] = msgspec.field(default_factory=list)   # "type value" matched
    reason: str = ""                # why it was not examined completely


class TaskLost(msgspec.Struct, frozen=True):
    """A task that failed as a whole: none of its objects was examined."""
    reason: str


class Incomplete(msgspec.Struct, frozen=True):
    """An object not examined completely, and why (with its SHA-256 where it was read)."""
    path: str
    reason: str
    sha256: str = ""


class HuntResult(msgspec.Struct):
    tasks: int = 0
    skipped_tasks: int = 0          # already in the manifest
    objects: int = 0
    bytes: int = 0
    malicious_objects: int = 0
    incomplete_objects: int = 0     # not examined completely: never clean (fail closed)
    lost_tasks: int = 0             # failed as a whole: not in the manifest, tried again
    indicator_objects: int = 0      # objects that match an indicator (reported, not joined)
    history_violations: int = 0     # stored events found to be violations now
    deliveries: int = 0             # deliveries newly found malicious
    campaigns: int = 0
    notifications: int = 0
    incomplete: list[Incomplete] = msgspec.field(default_factory=list)   # the first LISTED


def list_objects(store: str, since: datetime | None) -> list[Item]:
    """Regular files of the store changed at or after ``since``, in a stable order."""
    if "://" in store:
        import fsspec

        fs, root = fsspec.core.url_to_fs(store)
        out = []
        for name, info in sorted(fs.find(root, detail=True).items()):
            modified = info.get("mtime") or info.get("LastModified")
            when = _as_datetime(modified)
            if info.get("type") == "file" and (since is None or when is None or when >= since):
                out.append(Item(fs.unstrip_protocol(name), int(info.get("size") or 0)))
        return out
    items = []
    for path in sorted(Path(store).rglob("*")):
        info = path.lstat()
        if not path.is_file() or path.is_symlink():
            continue
        if since is None or datetime.fromtimestamp(info.st_mtime, UTC) >= since:
            items.append(Item(str(path), info.st_size))
    return items


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None


def make_tasks(items: list[Item], files: int = TASK_FILES, size: int = TASK_BYTES,
               detectors: tuple[str, ...] = (), iocs: tuple[str, ...] = ()) -> list[Task]:
    """Consecutive objects in tasks of at most ``files`` objects and about ``size``
    bytes; a task's id is the hash of what it holds, so a resumed hunt recognises it."""
    tasks: list[Task] = []
    current: list[Item] = []
    total = 0
    for item in items:
        if current and (len(current) >= files or total + item.size > size):
            tasks.append(_task(current, detectors, iocs))
            current, total = [], 0
        current.append(item)
        total += item.size
    if current:
        tasks.append(_task(current, detectors, iocs))
    return tasks


def _task(items: list[Item], detectors: tuple[str, ...], iocs: tuple[str, ...]) -> Task:
    digest = hashlib.sha256("\0".join([*(f"{i.path}\1{i.size}" for i in items), "\2",
                                       *detectors, "\2", *iocs]).encode())
    return Task(digest.hexdigest()[:32], list(items), detectors, iocs)


def _read(path: str) -> bytes:
    if "://" in path:
        import fsspec

        with fsspec.open(path, "rb") as fh:
            data: bytes = fh.read()
            return data
    from spywall.platform.media import MAX_ATTACHMENT_BYTES, read_regular

    return read_regular(Path(path), max(MAX_ATTACHMENT_BYTES, READ_CAP))


def examine_task(task: Task, scan: Scan = DEFAULT_SCAN) -> list[Found]:
    """Examine every object of a task (the unit of work on Ray and in the pool), each in
    a scan worker of this process; an object whose worker is lost is not examined
    completely, and the next object goes on in a fresh worker."""
    marker = os.environ.get(CRASH_ONCE)
    if marker and not os.path.exists(marker):
        Path(marker).write_text(task.id)
        os._exit(17)                   # a worker dying mid-task, as a test asks
    from spywall.scanpool import WorkerLost

    pool = _scan_pool(scan)
    out = []
    for item in task.items:
        try:
            out.append(pool.scan(examine_object, item, task.detectors, task.iocs))
        except WorkerLost as lost:
            out.append(Found(item.path, content_digest(item.path), False, False, [], [],
                             reason=f"limit: {lost}"))
    return out


def content_digest(path: str, cap: int = READ_CAP) -> str:
    """The SHA-256 of an object whose scan worker was lost, read here a megabyte at a
    time (hashing parses nothing), so that the report names the content a platform can
    block or look for; "" when it cannot be read (gone, not a regular file, over
    ``cap``, a store that fails)."""
    digest = hashlib.sha256()
    read = 0
    try:
        if "://" in path:
            import fsspec

            opened: Any = fsspec.open(path, "rb")
        else:
            from spywall.safeopen import open_regular

            opened = open_regular(path)     # a FIFO or device refused before it blocks
        with opened as fh:
            while (chunk := fh.read(HASH_CHUNK)) and read <= cap:
                digest.update(chunk)
                read += len(chunk)
    except Exception:    # (any store's failure: the object is named without it)
        return ""
    return digest.hexdigest() if read <= cap else ""


_POOLS: dict[tuple[int, bytes], Any] = {}


def _scan_pool(scan: Scan) -> Any:
    """This process's scan pool for ``scan`` (one worker: a task examines one object at
    a time), started on the first object and kept for the next tasks. Keyed by process
    too: a pool a forked process inherited is its parent's, never used (nor stopped)."""
    from spywall.platform.media import PLATFORM_LIMITS
    from spywall.scanpool import ScanPool

    key = (os.getpid(), msgspec.msgpack.encode(scan))
    if key not in _POOLS:
        _POOLS[key] = ScanPool(scan.limits or PLATFORM_LIMITS, 1, scan.method)
    return _POOLS[key]


def examine_object(item: Item, detectors: tuple[str, ...], iocs: tuple[str, ...],
                   limits: Limits) -> Found:
    """One object read and examined (in a scan worker, under ``limits``)."""
    from spywall.engine import sniff
    from spywall.platform.media import inspect_capture, scan_attachment

    index = _iocs(iocs)
    try:
        data = _read(item.path)
    except OSError as exc:
        return Found(item.path, "", False, False, [], [], reason=f"unreadable: {exc}")
    digest = hashlib.sha256(data).hexdigest()
    name = item.path.rsplit("/", 1)[-1]
    if index is not None and hunt_reports.is_result_file(name):
        matched, why = hunt_reports.rematch(data, name, index)
        if matched or why:
            return Found(item.path, digest, False, not why, [], [], matched, why)
    capture = sniff(data[:1024]) in ("pcap", "pcapng") and "://" not in item.path
    if capture:
        verdict = inspect_capture(Path(item.path), index)
    else:
        verdict = scan_attachment(data, item.path, digest, limits)
    found = [d for d in verdict.detectors if not detectors or d in detectors]
    matched = [f"{i.stix_type} {i.value}" for i in index.match_hash(digest)] \
        if index is not None else []
    matched += [f"{f['rule']} {f['message']}"[:200] for f in verdict.findings
                if f.get("kind") == "indicator"]
    return Found(item.path, digest, bool(found), verdict.complete, found,
                 verdict.infrastructure, matched, verdict.reason)


_LOADED: dict[tuple[str, ...], Any] = {}


def _iocs(paths: tuple[str, ...]) -> Any:
    """The indicator index of ``paths`` (loaded once per worker process), or None."""
    if not paths:
        return None
    if paths not in _LOADED:
        from spywall.iocs import IocIndex

        _LOADED[paths] = IocIndex.load(list(paths))
    return _LOADED[paths]


Outcome = list[Found] | TaskLost
Runner = Callable[[list[Task]], Iterator[tuple[Task, Outcome]]]


def pool_runner(workers: int, scan: Scan = DEFAULT_SCAN, retries: int = 3) -> Runner:
    """Tasks in a local process pool, at most ``workers`` at once (plus one queued, as
    the pool queues them anyway). A process that dies (killed from outside: its objects
    are examined in scan workers) breaks the whole pool, and every task it was running
    fails with it: those tasks are run again, each alone in a fresh process, up to
    ``retries`` times, and the others go on in a fresh pool."""
    import multiprocessing

    ctx = multiprocessing.get_context(scan.method) if scan.method else None

    def run(tasks: list[Task]) -> Iterator[tuple[Task, Outcome]]:
        waiting = deque(tasks)
        while waiting:
            broken: list[Task] = []
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                running: dict[Future[list[Found]], Task] = {}
                while (waiting or running) and not broken:
                    while waiting and len(running) <= workers:
                        task = waiting.popleft()
                        running[pool.submit(examine_task, task, scan)] = task
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        task = running.pop(future)
                        outcome = _outcome(future)
                        if outcome is None:
                            broken.append(task)
                        else:
                            yield task, outcome
                broken += running.values()      # they fail with it
            for task in broken:
                yield task, _alone(task, scan, ctx, retries)
    return run


def _outcome(future: Future[list[Found]]) -> Outcome | None:
    """A finished task's objects; ``TaskLost`` when the task raised; None when its pool
    broke (a process died: which task killed it is not known)."""
    try:
        return future.result()
    except BrokenProcessPool:
        return None
    except Exception as exc:     # the task's failure: its objects are not examined
        return TaskLost(f"the task failed: {type(exc).__name__}: {exc}"[:500])


def _alone(task: Task, scan: Scan, ctx: Any, retries: int) -> Outcome:
    """A task whose pool broke, run alone in a fresh process, up to ``retries`` times."""
    for _ in range(retries):
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            outcome = _outcome(pool.submit(examine_task, task, scan))
        if outcome is not None:
            return outcome
    return TaskLost(f"its worker process died {retries + 1} times: not examined")


def ray_runner(address: str, retries: int = 3, shared_store: bool = False,
               scan: Scan = DEFAULT_SCAN) -> Runner:
    """Tasks on Ray: ``auto`` starts (or joins) a local instance, else ``ADDRESS``.

    Close to the data: a task whose objects are in a folder of this machine runs on this
    machine's node (the folder is not on the others), unless ``shared_store`` says every
    node mounts it; objects behind a URL (fsspec: S3, GCS...) are read by whichever node
    runs the task. A task that still fails after Ray's ``retries`` is ``TaskLost``."""
    def run(tasks: list[Task]) -> Iterator[tuple[Task, Outcome]]:
        import ray
        from ray.exceptions import RayError

        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address == "auto":
                ray.init(**kwargs)
            else:
                ray.init(address=address, **kwargs)
        options: dict[str, Any] = {"max_retries": retries}
        env = {k: os.environ[k] for k in (CRASH_ONCE,) if k in os.environ}
        if env:
            options["runtime_env"] = {"env_vars": env}
        remote: Any = ray.remote(**options)(examine_task)
        here = _local_node(ray) if not shared_store else None
        pending = {(remote.options(scheduling_strategy=here) if here is not None
                    and _local_task(t) else remote).remote(t, scan): t for t in tasks}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(done[0])
            try:
                outcome: Outcome = ray.get(done[0])
            except RayError as exc:
                outcome = TaskLost(f"the task failed on Ray after {retries} retries: "
                                   f"{type(exc).__name__}: {exc}"[:500])
            yield task, outcome
    return run


def _local_task(task: Task) -> bool:
    return bool(task.items) and "://" not in task.items[0].path


def _local_node(ray: Any) -> Any:
    """A scheduling strategy that keeps a task on the driver's node (where a folder
    store is)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(),
                                          soft=False)


def _manifest(path: Path | None) -> set[str]:
    if path is None or not path.exists():
        return set()
    done = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            done.add(json.loads(line)["task"])
        except (ValueError, KeyError, TypeError):
            continue      # a line cut by a stop: that task runs again
    return done


def hunt(engine: sa.Engine, store: str, since: datetime | None, runner: Runner,
         manifest: Path | None = None, max_tasks: int | None = None,
         progress: Callable[[HuntResult, int], None] | None = None,
         detectors: tuple[str, ...] = (), iocs: tuple[str, ...] = (),
         task_files: int = TASK_FILES, task_bytes: int = TASK_BYTES) -> HuntResult:
    """Examine the store, join findings to the platform, re-check the stored events
    against today's registry, run the analysis."""
    from spywall.platform.service import run_analysis

    result = HuntResult()
    tasks = make_tasks(list_objects(store, since), task_files, task_bytes, detectors, iocs)
    done = _manifest(manifest)
    todo = [t for t in tasks if t.id not in done]
    result.skipped_tasks = len(tasks) - len(todo)
    if max_tasks is not None:
        todo = todo[:max_tasks]
    out = manifest.open("a", encoding="utf-8") if manifest is not None else None
    try:
        for task, outcome in runner(todo):
            if isinstance(outcome, TaskLost):     # reported, and left for a resumed hunt
                result.lost_tasks += 1
                found = [Found(i.path, "", False, False, [], [], reason=outcome.reason)
                         for i in task.items]
            else:
                found = outcome
                with engine.begin() as conn:
                    result.deliveries += apply(conn, found)
                if out is not None:
                    out.write(json.dumps({"task": task.id, "objects": len(found)}) + "\n")
                    out.flush()
                    os.fsync(out.fileno())
                result.tasks += 1
                result.bytes += sum(i.size for i in task.items)
            result.objects += len(found)
            result.malicious_objects += sum(f.malicious for f in found)
            result.incomplete_objects += sum(not f.complete for f in found)
            result.indicator_objects += sum(bool(f.indicators) for f in found)
            result.incomplete += [Incomplete(f.path, f.reason, f.sha256) for f in found
                                  if not f.complete][:LISTED - len(result.incomplete)]
            if progress is not None:
                progress(result, len(todo))
    finally:
        if out is not None:
            out.close()
    with engine.begin() as conn:
        result.history_violations = recheck_history(conn, since)
    analysis = run_analysis(engine)
    result.campaigns, result.notifications = analysis.campaigns, analysis.notifications
    return result


def recheck_history(conn: sa.Connection, since: datetime | None) -> int:
    """Stored events (since ``since``) that today's registry makes violations: an
    identifier added after the event arrived still ties it to its party. Streams the
    events a batch at a time; returns the violations newly recorded."""
    from spywall.platform.contract import ACTIVITY_TYPES, parse_line
    from spywall.platform.gate import Decision, event_hits, violation_of
    from spywall.platform.matcher import RegistryIndex
    from spywall.platform.registry_store import load_registry

    registry = load_registry(conn)
    index = RegistryIndex(registry.parties, registry.official_clients)
    if not index.parties:
        return 0
    e, v = db.events, db.violations
    query = sa.select(e.c.seq, e.c.raw, e.c.verdict).where(
        e.c.type.in_(sorted(ACTIVITY_TYPES)),
        ~sa.exists().where(v.c.event == e.c.id)).order_by(e.c.seq)
    if since is not None:
        query = query.where(e.c.ts_us >= int(since.timestamp() * 1_000_000))
    fresh = []
    for row in conn.execute(query.execution_options(yield_per=5000)):
        event = parse_line(row.raw)
        hits = event_hits(index, event)
        if not hits:
            continue
        decision = Decision(verdict=row.verdict, reasons=[], party=hits[0].party, hits=hits)
        found = violation_of(index, event, decision)
        if found is not None:
            found["rule"] = "registry-identifier"
            fresh.append({**found, "ts_us": event.ts_us,
                          "recorded_us": time.time_ns() // 1000})
    db.insert_ignore(conn, v, fresh)
    record(conn, [entry("violation", f["ts_us"], **{k: x for k, x in f.items()
                                                  if k not in ("ts_us", "recorded_us")})
                  for f in fresh])
    return len(fresh)


def apply(conn: sa.Connection, found: list[Found]) -> int:
    """Objects found malicious -> the deliveries that carried them become malicious.
    Idempotent: a delivery already malicious is left as it is."""
    count = 0
    for f in found:
        if not f.malicious:
            continue
        db.insert_ignore(conn, db.payloads, [{
            "sha256": f.sha256, "malicious": True, "complete": f.complete,
            "detectors": f.detectors, "infrastructure": f.infrastructure, "findings": []}])
        count += _messages(conn, f) + _calls(conn, f)
    return count


def _messages(conn: sa.Connection, f: Found) -> int:
    d, p = db.deliveries, db.delivery_payloads
    rows = conn.execute(sa.select(d).join(p, p.c.ref == d.c.ref).where(
        p.c.sha256 == f.sha256, d.c.malicious.is_(False))).all()
    for r in rows:
        conn.execute(d.update().where(d.c.ref == r.ref).values(
            malicious=True, detectors=f.detectors,
            infrastructure=sorted(set(r.infrastructure) | set(f.infrastructure))))
        record(conn, [entry("delivery.malicious", r.ts_us, event=r.event, delivery=r.ref,
                            sender=r.sender, targets=list(r.targets), detectors=f.detectors,
                            rule="retro-hunt", object=f.path)])
    return len(rows)


def _calls(conn: sa.Connection, f: Found) -> int:
    e = db.events
    count = 0
    for r in conn.execute(sa.select(e.c.ref, e.c.id, e.c.ts_us).where(
            e.c.type == "call.media", e.c.sha256 == f.sha256)).all():
        marked = mark_malicious_call(conn, r.ref, r.id, r.ts_us, f.sha256, f.detectors,
                                     f.infrastructure)
        if marked:
            record(conn, marked)
            count += 1
    return count
