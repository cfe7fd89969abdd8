"""The scan engine: walks inputs, sniffs formats by content, applies budgets, runs
detectors, recurses into containers and appended data, fans out over processes.

It knows formats and detectors only through ``spywall.registry``, and imports a format's
parser and detectors only when it meets that format.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from types import FrameType
from typing import TYPE_CHECKING, cast

from spywall import incomplete, registry
from spywall.detectors.base import Detector
from spywall.errors import FormatError, LimitExceeded, SpywallError
from spywall.formats import appended
from spywall.formats.base import SNIFF_BYTES, Child, FormatSpec, ParseContext, Parsed
from spywall.limits import Budget, Limits
from spywall.report import (
    MEMBER_SEP,
    ErrorEntry,
    Finding,
    Location,
    Subject,
)
from spywall.safeopen import open_regular_fd

if TYPE_CHECKING:
    from spywall import workers
    from spywall.verdict_cache import VerdictCache
else:  # (its process pool, and multiprocessing, only for a scan of many files or an
    # out-of-memory message: a device check that scans an attachment needs neither)
    from spywall.lazy import lazy_module

    workers = lazy_module("spywall.workers")

STDIN = "-"


class _Registry:
    """The registered formats, each parser and its detectors imported on first use.

    Sniffing runs the light sniffers of ``registry.FORMATS``; a format's module is
    imported when an object is first sniffed (or forced) as that format, and a detector's
    when the first ``Parsed`` it applies to comes back. Both are kept for the next object.
    """

    def __init__(self, formats: Sequence[registry.FormatEntry] = registry.FORMATS) -> None:
        self.formats = tuple(formats)
        self._entries = {entry.name: entry for entry in self.formats}
        self._specs: dict[str, FormatSpec] = {}
        self._detectors: dict[str, tuple[Detector, ...]] = {}

    def spec(self, entry: registry.FormatEntry) -> FormatSpec:
        spec = self._specs.get(entry.name)
        if spec is None:
            spec = self._specs[entry.name] = registry.load_format(entry)
        return spec

    def by_name(self, name: str) -> FormatSpec | None:
        entry = self._entries.get(name)
        return None if entry is None else self.spec(entry)

    def detectors(self, fmt: str) -> tuple[Detector, ...]:
        """The detectors for a ``Parsed.format`` name (a format's own or a subtype)."""
        dets = self._detectors.get(fmt)
        if dets is None:
            dets = self._detectors[fmt] = registry.detectors_for(fmt)
        return dets

    def plain(self, name: str) -> str:
        """What a person calls format ``name``: the first words of an error entry."""
        entry = self._entries.get(name)
        return entry.plain if entry is not None and entry.plain else name

    def sniff_name(self, head: bytes) -> str | None:
        """The first format that claims ``head``, by name: nothing is imported."""
        return next((entry.name for entry in self.formats if entry.sniff(head)), None)

    def sniff(self, head: bytes) -> FormatSpec | None:
        name = self.sniff_name(head)
        return None if name is None else self.by_name(name)

    def sniff_all(self, head: bytes) -> list[FormatSpec]:
        return [self.spec(entry) for entry in self.formats if entry.sniff(head)]


_REGISTRY: _Registry | None = None


def _reg() -> _Registry:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _Registry()
    return _REGISTRY


def sniff(data: bytes) -> str | None:
    """The registered format name that the content of ``data`` matches, if any."""
    return _reg().sniff_name(data[:SNIFF_BYTES])


class _Walk:
    """State of the scan of one top-level input."""

    def __init__(self, subject: Subject, limits: Limits, started: float | None = None
                 ) -> None:
        self.subject = subject
        self.budget = Budget(limits)
        if started is not None:  # the time budget covers opening and reading the input
            self.budget.started = started
        self.reg = _reg()

    def error(self, path: str, code: str, message: str) -> None:
        self.subject.errors.append(ErrorEntry(path=path, code=code, message=message))

    def said(self, fmt: str, message: str) -> str:
        """``message`` as a person reads it: led by what the object is ("WebP image: ...");
        the parser's words name the structure and its offset."""
        label = self.reg.plain(fmt)
        return message if message.startswith(f"{label}:") else f"{label}: {message}"

    def run_detectors(self, parsed: Parsed, data: bytes, path: str, top: bool) -> None:
        for det in self.reg.detectors(parsed.format):
            for hit in det.detect(parsed):
                info = det.info
                self.subject.findings.append(
                    Finding(
                        rule=info.id,
                        title=info.title,
                        kind=info.kind,
                        severity=hit.severity or info.severity,
                        message=hit.message,
                        path=path,
                        cves=list(info.cves),
                        references=list(info.references),
                        location=Location(offset=hit.offset),
                        object_sha256=self.subject.sha256 if top and self.subject.sha256
                        else hashlib.sha256(data).hexdigest(),
                        detail=dict(hit.detail),
                    )
                )

    def scan(self, data: bytes, path: str, depth: int, forced: str | None = None) -> str | None:
        """Scan one object; return its format name (``None`` if not recognised).

        An object that several formats claim (a polyglot: a GIF whose first KiB also holds
        a PDF header) is parsed as each of them, since a victim's software may take either
        reading. The first claimant names the object; a failure of a later reading is an
        error entry that does not hide the first one's findings.
        """
        self.budget.check_time()
        self.subject.objects += 0 if depth == 0 else 1
        if forced is not None:
            spec = self.reg.by_name(forced)
            if spec is None:
                if forced == "encrypted":
                    self.error(path, "unsupported", "encrypted member: not examined")
                return forced
            specs = [spec]
        else:
            specs = self.reg.sniff_all(data[:SNIFF_BYTES])
            if not specs:
                return None
        name = self.scan_as(specs[0], data, path, depth)
        for other in specs[1:]:
            try:
                self.scan_as(other, data, path, depth)
            except (FormatError, LimitExceeded) as exc:
                self.error(path, exc.code, f"{exc} (the same bytes read as a second format: "
                           "a polyglot)")
        return name

    def scan_as(self, spec: FormatSpec, data: bytes, path: str, depth: int) -> str:
        ctx = ParseContext(budget=self.budget, depth=depth, path=path)
        try:
            parsed = spec.parse(data, ctx)
        except (FormatError, LimitExceeded) as exc:
            exc.args = (self.said(spec.name, str(exc)),)  # recorded by whoever catches it
            raise
        for w in parsed.warnings:
            self.error(path, "malformed", self.said(spec.name, w))
        for cap in parsed.incomplete:  # the structure is partial: detectors still run
            self.error(path, "limit", self.said(spec.name, cap))
        self.run_detectors(parsed, data, path, depth == 0)
        if spec.container or parsed.children:
            self.scan_children(parsed.children, path, depth, spec.name)
        end = parsed.logical_end
        if parsed.format in registry.ARCHIVE_CARRIERS:
            hidden = appended.trailing_zip_start(data)
            if hidden is not None and hidden > 0 and (end is None or hidden < end):
                end = hidden  # a zip inside what the host claims as its own data
        if end is not None and 0 <= end < len(data) and spec.name != "appended":
            self.scan_appended(parsed.format, data, end, path, depth)
        return parsed.format

    def scan_children(self, children: Iterable[Child], path: str, depth: int, fmt: str) -> None:
        if depth + 1 > self.budget.limits.max_depth:
            self.error(path, "limit", self.said(fmt, f"containers nested more than "
                       f"{self.budget.limits.max_depth} deep: the inner ones not examined"))
            return
        it = iter(children)
        while True:
            try:
                child = next(it)
            except StopIteration:
                return
            except (FormatError, LimitExceeded) as exc:
                self.error(path, exc.code, self.said(fmt, str(exc)))
                return
            except MemoryError:  # reading the next member: the ones after it are lost
                self.error(path, "limit", workers.out_of_memory())
                return
            child_path = f"{path}{MEMBER_SEP}{child.name}"
            if child.error is not None:
                self.error(child_path, child.code, self.said(fmt, child.error))
                continue
            self.scan_guarded(child.data, child_path, depth + 1, child.format)

    def scan_appended(self, host: str, data: bytes, end: int, path: str, depth: int) -> None:
        tail = data[end:]
        if not tail.strip(b"\x00 \r\n\t"):
            return
        info = appended.describe(host, end, tail)
        self.run_detectors(Parsed(format="appended", structure=info), data, path, depth == 0)
        # An archive, or any other format spywall reads (an image appended to an image):
        # what a decoder reading from that offset would find is scanned too.
        start = info.archive_at or 0
        if info.archive is None and not self.reg.sniff_all(tail[:SNIFF_BYTES]):
            return
        if depth + 1 > self.budget.limits.max_depth:
            self.error(path, "limit", f"data appended at {end} lies deeper than "
                       f"{self.budget.limits.max_depth} containers: not examined")
            return
        self.scan_guarded(tail[start:], f"{path}{MEMBER_SEP}<appended@{end + start}>",
                          depth + 1, None)

    def scan_guarded(self, data: bytes, path: str, depth: int, forced: str | None) -> None:
        try:
            self.scan(data, path, depth, forced)
        except (FormatError, LimitExceeded) as exc:
            self.error(path, exc.code, str(exc))
        except RecursionError:
            self.error(path, "limit", "structure nested too deeply")
        except MemoryError:
            self.error(path, "limit", workers.out_of_memory())


HARD_LIMIT_FACTOR = 2.0


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise LimitExceeded("hard time limit reached (a parser overran its time budget)")


class _hard_deadline:  # noqa: N801 (used as a context manager, like contextlib's)
    """Backstop for the cooperative time budget: SIGALRM at ``2 x budget + 1`` seconds.

    Parsers check the budget themselves; this catches a Python-level loop that forgot to.
    Only armed on the main thread of a POSIX process (workers of the pool qualify).
    A class: it is entered once per input, and a ``contextlib`` generator cost several
    microseconds more a file.
    """

    __slots__ = ("armed", "previous", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed = False
        self.previous: Callable[[int, FrameType | None], object] | int | None = None

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread() or not hasattr(
            signal, "setitimer"
        ):
            return
        self.previous = signal.signal(signal.SIGALRM, _on_alarm)
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds * HARD_LIMIT_FACTOR + 1.0)

    def __exit__(self, *exc: object) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


def mark_incomplete(subject: Subject, limits: Limits) -> Subject:
    """Fail closed (``spywall.incomplete``): each cap the subject hit, and each part it
    could not open, becomes an ``incomplete-examination`` finding unless
    ``limits.allow_incomplete``."""
    return incomplete.mark_incomplete(subject, limits.allow_incomplete,
                                      codes=incomplete.SCAN_CODES)


def scan_bytes(data: bytes, path: str, limits: Limits | None = None, *,
               started: float | None = None, cache: VerdictCache | None = None) -> Subject:
    """Scan an in-memory object as a top-level input.

    ``started`` (``time.monotonic``) is when the input's time budget began, if before now.
    With a ``cache``, content scanned before (same SHA-256, detector set and caps) is
    not parsed again: the cached verdict is the fresh scan's result under this ``path``
    (a verdict that hit a limit is never cached).
    """
    limits = limits or Limits()
    if cache is not None:
        from spywall.verdict_cache import Verdict  # imported by whoever made the cache

        digest = hashlib.sha256(data).hexdigest()
        verdict = cache.get(digest)
        if verdict is not None:
            return verdict.subject(path, len(data), digest if limits.hash_inputs else None)
        subject = _scan_deadline(data, path, limits, started, digest)
        verdict = Verdict.of(subject)
        if verdict is not None:
            cache.put(digest, verdict)
        return subject
    return _scan_deadline(data, path, limits, started, None)


def _scan_deadline(data: bytes, path: str, limits: Limits, started: float | None,
                   digest: str | None) -> Subject:
    subject = Subject(path=path, size=len(data))
    try:
        with _hard_deadline(limits.seconds):
            _scan_top(data, subject, limits, started, digest)
    except LimitExceeded as exc:  # the alarm fired outside the walk's own handlers
        if subject.format is None:
            subject.format = sniff(data) or "unknown"
        subject.errors.append(ErrorEntry(path=path, code=exc.code, message=str(exc)))
    return mark_incomplete(subject, limits)


def _scan_top(data: bytes, subject: Subject, limits: Limits, started: float | None,
              digest: str | None) -> Subject:
    path = subject.path
    if limits.hash_inputs:
        subject.sha256 = digest or hashlib.sha256(data).hexdigest()
    walk = _Walk(subject, limits, started)
    try:
        subject.format = walk.scan(data, path, 0) or "unknown"
    except (FormatError, LimitExceeded) as exc:
        walk.error(path, exc.code, str(exc))
        subject.format = sniff(data) or "unknown"
    except RecursionError:
        walk.error(path, "limit", "structure nested too deeply")
    except MemoryError:
        walk.error(path, "limit", workers.out_of_memory())
    return subject


# Files at least this big are memory-mapped rather than read: a parser then pays only for
# the pages it touches (a JPEG's last bytes, a PNG's chunk headers, a TIFF's IFDs), not
# for a copy of pixel data it never looks at. Smaller files are cheaper to read.
MAP_MIN_BYTES = 1 * 1024 * 1024


STDIN_CHUNK = 1 << 20


def _read_stdin(cap: int, seconds: float, started: float) -> bytes:
    """Standard input up to ``cap + 1`` bytes, in chunks, within the time budget: a pipe
    that never ends (``cat /dev/zero``) or never writes is a ``limit``, not a hang, and
    no buffer of the cap's size is allocated up front."""
    import select

    fd = sys.stdin.buffer.fileno()
    out = bytearray()
    while len(out) <= cap:
        left = seconds - (time.monotonic() - started)
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise LimitExceeded(f"time budget of {seconds:g}s exhausted while reading "
                                f"standard input ({len(out)} bytes read)")
        chunk = os.read(fd, min(STDIN_CHUNK, cap + 1 - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def read_input(path: str, limits: Limits, started: float | None = None) -> bytes:
    """Read a file (or standard input for ``-``) up to the byte cap.

    A regular file of ``MAP_MIN_BYTES`` or more is mapped read-only instead (unless
    ``limits.map_inputs`` is off): the object returned is then an ``mmap.mmap``, which
    parsers use through the operations it shares with ``bytes`` (slicing, indexing,
    ``len``, ``find``/``rfind``, ``struct``, ``re``, ``numpy.frombuffer``, hashing).
    Release it with ``release``. Mapping is what ClamAV and YARA do, with their caveat:
    a file truncated by another process while it is being scanned makes the process
    fault (SIGBUS). So ``scan_paths`` maps inputs only in its worker processes, whose
    supervisor scans such an input again, read (``spywall.workers``); a caller of
    ``scan_path`` in its own process passes ``map_inputs=False`` unless no other process
    can write its files.
    """
    cap = limits.max_file_bytes
    if path == STDIN:
        data = _read_stdin(cap, limits.seconds,
                           time.monotonic() if started is None else started)
    else:
        # Only a regular file is opened (never blocking: a FIFO or a device is an ``io``
        # error entry, not a hang); a folder's walk lists FIFOs like files.
        with os.fdopen(open_regular_fd(path), "rb") as fh:
            st = os.fstat(fh.fileno())
            size = st.st_size
            if size > cap:
                raise LimitExceeded(f"file of {size} bytes is over the cap of {cap}")
            if (limits.map_inputs and size >= max(MAP_MIN_BYTES, 1)
                    and stat.S_ISREG(st.st_mode) and not _dense(fh.fileno())):
                # Both share the buffer protocol and the read-only sequence operations
                # parsers are held to (tests/test_mapped_inputs.py runs every sample
                # both ways); the cast is the one place the two meet.
                return cast(bytes, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))
            # Ask for what the file holds (plus one byte to see growth), never for the cap:
            # read(n) allocates n bytes up front, and the cap is a gigabyte.
            data = fh.read(min(size, cap) + 1)
    if len(data) > cap:
        raise LimitExceeded(f"input over the cap of {cap} bytes")
    return data


def _dense(fd: int) -> bool:
    """Whether the format a file's first bytes claim reads it whole (``FormatSpec.dense``)."""
    specs = _reg().sniff_all(os.pread(fd, SNIFF_BYTES, 0))
    return bool(specs) and specs[0].dense


def release(data: bytes) -> None:
    """Unmap a mapped input; a buffer still exported (a numpy view) is left to the GC."""
    if isinstance(data, mmap.mmap):
        with suppress(BufferError):
            data.close()


def scan_path(path: str, limits: Limits | None = None,
              cache: VerdictCache | None = None) -> Subject:
    """Scan one file; I/O problems and caps become error entries of the subject."""
    limits = limits or Limits()
    started = time.monotonic()
    try:
        data = read_input(path, limits, started)
    except (OSError, ValueError) as exc:  # ValueError: mmap of a file that shrank to 0
        return Subject(path=path, errors=[ErrorEntry(path=path, code="io",
                                                     message=getattr(exc, "strerror", None)
                                                     or str(exc))])
    except SpywallError as exc:  # over the size cap (limit), not a regular file (io)
        subject = Subject(path=path, errors=[ErrorEntry(path=path, code=exc.code,
                                                        message=str(exc))])
        return mark_incomplete(subject, limits)
    except MemoryError:  # an input read whole (PDF, zip, stdin) past the memory ceiling
        subject = Subject(path=path, errors=[ErrorEntry(
            path=path, code="limit", message=workers.out_of_memory("reading the input"))])
        return mark_incomplete(subject, limits)
    try:
        return scan_bytes(data, path, limits, started=started, cache=cache)
    finally:
        release(data)


def expand(paths: Iterable[str]) -> Iterator[str]:
    """Files under the given paths (folders walked recursively, sorted, no symlink loops)."""
    for p in paths:
        if p == STDIN or not os.path.isdir(p):
            yield p
            continue
        for root, dirs, files in os.walk(p, followlinks=False):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                if not os.path.islink(full):
                    yield full


def scan_paths(
    paths: Sequence[str],
    limits: Limits | None = None,
    jobs: int | None = None,
    on_done: Callable[[Subject], None] | None = None,
    cache: VerdictCache | None = None,
) -> list[Subject]:
    """Scan every file under ``paths`` in ``jobs`` worker processes (default: every
    core), each under the memory ceiling and supervised (``spywall.workers``).

    With a ``cache``, each worker process looks verdicts up in (and adds them to) a cache
    of its own in memory, and in the cache's SQLite file if it has one.
    """
    limits = limits or Limits()
    files = list(expand(paths))
    return workers.scan_files(files, limits, jobs or os.cpu_count() or 1, on_done, cache)


def count_files(paths: Sequence[str]) -> int:
    return sum(1 for _ in expand(paths))


__all__ = ["count_files", "scan_bytes", "scan_path", "scan_paths", "sniff"]
