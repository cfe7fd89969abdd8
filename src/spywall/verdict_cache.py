"""A verdict cache: the same content is parsed once, however often it is forwarded.

Keyed by the SHA-256 of an input's content and a *version*: the detector set's version
(``detector_set_version``: spywall's version, the registry's formats and detector ids, and
a digest of the source of every module that parses or judges) plus the caps the scan ran
under, since a different cap can give a different result. A code change or other caps
therefore never reuse an old verdict.

A ``Verdict`` is what a scan says about the content, independent of the name it came
under: the format, the objects examined, the findings and the errors, with paths relative
to the input (``Verdict.of(subject)``, ``verdict.subject(path, ...)`` for the way back).
A verdict whose scan hit a ``limit`` (which includes the time budget, and so depends on
the machine's load), or that carries a finding in ``UNCACHED_RULES``, is never stored:
that content is scanned again next time.

The cache holds at most ``max_entries`` verdicts in memory (least recently used evicted)
and, with a ``path``, in a SQLite file that other processes (scan workers, the platform
gate) share: ``get(sha256)`` and ``put(sha256, verdict)``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections import OrderedDict
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from spywall import __version__
from spywall.limits import Limits
from spywall.report import ErrorEntry, Finding, Subject

if TYPE_CHECKING:
    import sqlite3

DEFAULT_ENTRIES = 10_000
# Findings that say the examination stopped short (a cap or the time budget): such a
# result may differ on a less loaded machine, so it is not kept.
UNCACHED_RULES = frozenset({"incomplete-examination"})
# Modules whose code decides a verdict, besides every format and detector module.
_CORE_MODULES = ("engine", "limits", "registry", "report", "errors")


class Verdict(msgspec.Struct, frozen=True):
    """A scan's result for some content; paths are relative to the input ("" is itself)."""

    format: str | None
    objects: int
    findings: tuple[Finding, ...]
    errors: tuple[ErrorEntry, ...]

    @classmethod
    def of(cls, subject: Subject) -> Verdict | None:
        """The subject's verdict, or ``None`` if it must not be cached."""
        top = subject.path
        paths = [f.path for f in subject.findings] + [e.path for e in subject.errors]
        if (any(e.code in ("limit", "io") for e in subject.errors)
                or any(f.rule in UNCACHED_RULES for f in subject.findings)
                or not all(p.startswith(top) for p in paths)):
            return None
        n = len(top)
        return cls(format=subject.format, objects=subject.objects,
                   findings=tuple(msgspec.structs.replace(f, path=f.path[n:])
                                  for f in subject.findings),
                   errors=tuple(msgspec.structs.replace(e, path=e.path[n:])
                                for e in subject.errors))

    def subject(self, path: str, size: int | None, sha256: str | None) -> Subject:
        """The subject a fresh scan of this content under ``path`` gives."""
        return Subject(path=path, sha256=sha256, size=size, format=self.format,
                       objects=self.objects,
                       findings=[msgspec.structs.replace(f, path=path + f.path)
                                 for f in self.findings],
                       errors=[msgspec.structs.replace(e, path=path + e.path)
                               for e in self.errors])


@cache
def detector_set_version() -> str:
    """A digest of what decides a verdict: spywall's version, the registry (format names,
    parser modules, detector modules, detector ids) and the source of those modules."""
    from spywall import registry

    h = hashlib.sha256(__version__.encode())
    modules = [f"spywall.{m}" for m in _CORE_MODULES]
    for entry in registry.FORMATS:
        h.update(f"|{entry.name}:{entry.module}:{','.join(entry.detectors)}".encode())
        modules.append(f"spywall.formats.{entry.module}")
        modules += [f"spywall.detectors.{d}" for d in entry.detectors]
    h.update(",".join(sorted(d.info.id for d in registry.all_detectors())).encode())
    package = Path(__file__).parent
    # .py, .pyx, .pyi, and the C header a compiled helper includes (_bytescan_vec.h)
    sources = {p for pattern in ("*.py*", "*.h") for p in (package / "formats").glob(pattern)}
    for name in dict.fromkeys(modules):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None:
            sources.add(Path(spec.origin))
    for path in sorted(sources):
        h.update(path.name.encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:32]


def limits_version(limits: Limits) -> str:
    """The caps that can change a result (hashing, mapping and the memory ceiling cannot:
    a verdict that met the ceiling has a ``limit`` entry and is never cached)."""
    caps = msgspec.structs.replace(limits, hash_inputs=True, map_inputs=True, max_memory=0)
    return hashlib.sha256(msgspec.json.encode(caps)).hexdigest()[:16]


_SCHEMA = ("CREATE TABLE IF NOT EXISTS verdicts (sha256 TEXT NOT NULL, version TEXT NOT NULL,"
           " value BLOB NOT NULL, used INTEGER NOT NULL, PRIMARY KEY (sha256, version))")
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Verdict)


class VerdictCache:
    """``get``/``put`` verdicts by content SHA-256, in memory and optionally on disk."""

    def __init__(self, limits: Limits | None = None, path: str | None = None,
                 max_entries: int = DEFAULT_ENTRIES, version: str | None = None) -> None:
        self.limits = limits or Limits()
        self.path = path
        self.max_entries = max(1, max_entries)
        self.version = version or f"{detector_set_version()}-{limits_version(self.limits)}"
        self._memory: OrderedDict[str, Verdict] = OrderedDict()
        self._db: sqlite3.Connection | None = None
        self._clock = 0
        self._lock = threading.Lock()  # one cache may serve several threads (a gate)
        self.hits = self.misses = 0

    def _conn(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        if self._db is None:
            import sqlite3  # only for a cache with a file

            db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                 check_same_thread=False)  # calls hold self._lock
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            row = db.execute("SELECT coalesce(max(used), 0) FROM verdicts").fetchone()
            self._clock = int(row[0])
            self._db = db
        return self._db

    def get(self, sha256: str) -> Verdict | None:
        """The cached verdict for content of this SHA-256 (hex), if any."""
        with self._lock:
            return self._get(sha256)

    def _get(self, sha256: str) -> Verdict | None:
        verdict = self._memory.get(sha256)
        if verdict is not None:
            self._memory.move_to_end(sha256)
            self.hits += 1
            return verdict
        db = self._conn()
        if db is not None:
            row = db.execute("SELECT value FROM verdicts WHERE sha256 = ? AND version = ?",
                             (sha256, self.version)).fetchone()
            if row is not None:
                try:
                    verdict = _DECODER.decode(row[0])
                except msgspec.DecodeError:
                    verdict = None  # a damaged row: scanned again and overwritten
                if verdict is not None:
                    self._clock += 1
                    db.execute("UPDATE verdicts SET used = ? WHERE sha256 = ? AND version = ?",
                               (self._clock, sha256, self.version))
                    self._remember(sha256, verdict)
                    self.hits += 1
                    return verdict
        self.misses += 1
        return None

    def put(self, sha256: str, verdict: Verdict) -> None:
        """Store the verdict for content of this SHA-256 (hex)."""
        with self._lock:
            self._put(sha256, verdict)

    def _put(self, sha256: str, verdict: Verdict) -> None:
        self._remember(sha256, verdict)
        db = self._conn()
        if db is None:
            return
        self._clock += 1
        db.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?)",
                   (sha256, self.version, _ENCODER.encode(verdict), self._clock))
        if self._clock % 256 == 0:  # trim now and then, to the newest max_entries rows
            db.execute("DELETE FROM verdicts WHERE used <= (SELECT used FROM verdicts "
                       "ORDER BY used DESC LIMIT 1 OFFSET ?)", (self.max_entries,))

    def _remember(self, sha256: str, verdict: Verdict) -> None:
        self._memory[sha256] = verdict
        self._memory.move_to_end(sha256)
        while len(self._memory) > self.max_entries:
            self._memory.popitem(last=False)

    def __len__(self) -> int:
        return len(self._memory)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __reduce__(self) -> tuple[object, tuple[Limits, str | None, int, str]]:
        # A worker process gets (and keeps) its own handle on the same file.
        return (_shared, (self.limits, self.path, self.max_entries, self.version))


_SHARED: dict[tuple[Limits, str | None, int, str], VerdictCache] = {}


def _shared(limits: Limits, path: str | None, max_entries: int, version: str) -> VerdictCache:
    key = (limits, path, max_entries, version)
    if key not in _SHARED:
        _SHARED[key] = VerdictCache(limits, path, max_entries, version)
    return _SHARED[key]


__all__ = ["Verdict", "VerdictCache", "detector_set_version", "limits_version"]
