"""An iOS sysdiagnose, as ``mvt-ios check-sysdiagnose`` takes it: the archive the phone
writes (``sysdiagnose_<YYYY.MM.DD_HH-MM-SS+ZZZZ>_<device>_<OS>_<build>.tar.gz``, one
folder inside), or that folder extracted.

The archive is read once, streaming (``tarstream``): every member's name is listed, and
only the files a module reads are kept in memory (each under a cap), so nothing is
written to disk and a member's name is never a path here. Hostile archives are bounded:
members, bytes decompressed (also against the compression ratio), a long name or pax
header, the time budget. A name that is absolute or climbs out (``..``) is counted and
never used; links, devices and FIFOs are listed, never read; AppleDouble sidecars
(``._name``) are not sysdiagnose content. An archive cut short, or one whose reading
stopped at a cap, keeps what was read: each module then says that the files past that
point were not examined (a ``limit`` or ``malformed`` error entry: the check is
incomplete). A folder is walked without following links (entries, depth and time
capped) and its files opened only if they are regular files inside it.

Names are relative to the folder holding the sysdiagnose folder (the archive's own
names: ``sysdiagnose_.../remotectl_dumpstate.txt``), and the modules find their files
at any depth below it, as MVT does.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import posixpath
import re
import time
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from spywall.errors import FormatError, InputError, LimitExceeded
from spywall.ios import tarstream
from spywall.limits import Limits
from spywall.safeopen import open_regular

# The files the modules read (``Sysdiagnose.matching``), below any folder.
WANTED = re.compile(
    r".+/(?:remotectl_dumpstate\.txt|sysdiagnose\.log"
    r"|logs/MobileActivation/collection_oob_request\.txt"
    r"|logs/appinstallation/appstored\.sqlitedb(?:-wal|-shm)?"
    r"|system_logs\.logarchive/Extra/[Ss]hutdown(?:\.\d{1,4})?\.log)")
MAX_MEMBERS = 500_000
MAX_ARCHIVE_BYTES = 32 * 1024 * 1024 * 1024  # a sysdiagnose's tar: a few GiB at most
MAX_FILE = 64 * 1024 * 1024                  # one file a module reads
MAX_DEPTH = 32
_GZIP = b"\x1f\x8b"
_READ_ERRORS = (OSError, EOFError, zlib.error)


class _Hashing:
    """A file read from the front: its SHA-256 and its size as it is read."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1, /) -> bytes:
        data = self.fh.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data

    def seek(self, n: int, /) -> object:
        raise OSError("a stream read once")  # (gzip reads on, never back)


class _Ratio:
    """The decompressed stream, held to ``max_ratio`` times what was read compressed
    (plus a MiB: the first blocks of any archive)."""

    def __init__(self, gz: gzip.GzipFile, raw: _Hashing, ratio: int) -> None:
        self.gz, self.raw, self.ratio, self.out = gz, raw, ratio, 0

    def read(self, n: int = -1, /) -> bytes:
        data = self.gz.read(n)
        self.out += len(data)
        if self.out > self.ratio * self.raw.size + (1 << 20):
            raise LimitExceeded(f"decompressed {self.out} bytes from {self.raw.size}: over "
                                f"the ratio cap of {self.ratio}")
        return data


def safe_name(name: str) -> str | None:
    """A member name as a relative POSIX path (backslashes as folder separators, as MVT
    reads them), or None when it is absolute, climbs out, is empty or an AppleDouble
    sidecar."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or not p.parts or p.name.startswith("._"):
        return None
    return p.as_posix()


class Sysdiagnose:
    """A sysdiagnose's listing and the files the modules read.

    ``names``: every regular file, in archive (or sorted walk) order; ``stopped``: why
    the archive was not read to its end (``None`` when it was), with its error code;
    ``unsafe``: names refused; ``inputs``: path -> SHA-256 of what was read (the
    archive, or each file read from a folder)."""

    fork_safe = False  # (two small modules: not worth a worker)

    def __init__(self, root: Path, archive: bool, names: list[str],
                 kept: dict[str, bytes | None], stopped: tuple[str, str] | None,
                 unsafe: int, inputs: dict[str, str]) -> None:
        self.root = root
        self.archive = archive
        self.names = names
        self._kept = kept
        self.stopped = stopped
        self.unsafe = unsafe
        self.inputs = inputs

    def matching(self, pattern: re.Pattern[str]) -> list[str]:
        """The names ``pattern`` matches whole, in order."""
        return [n for n in self.names if pattern.fullmatch(n)]

    def display(self, name: str) -> str:
        return f"{self.root}!/{name}" if self.archive else str(self.root.parent / name)

    def read(self, name: str) -> bytes:
        """A file's bytes (``LimitExceeded`` over ``MAX_FILE``, ``OSError`` when a folder's
        file cannot be opened or is not a regular file inside the folder)."""
        if self.archive:
            if name not in self._kept:
                raise FormatError(f"{name}: not kept from the archive")
            data = self._kept[name]
            if data is None:
                raise LimitExceeded(f"{name}: over the cap of {MAX_FILE} bytes")
            return data
        path = self.root.parent / name
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise OSError(f"{name}: outside the sysdiagnose folder")
        with open_regular(path, follow=False) as fh:
            data = fh.read(MAX_FILE + 1)
        if len(data) > MAX_FILE:
            raise LimitExceeded(f"{name}: over the cap of {MAX_FILE} bytes")
        self.inputs[str(path)] = hashlib.sha256(data).hexdigest()
        return data


def _member_cap(limits: Limits) -> int:
    """Members (files) of a sysdiagnose: it holds tens of thousands (logs, crash reports,
    their AppleDouble sidecars), so 25 times a container's member cap (500,000 with the
    defaults, ``MAX_MEMBERS`` at most)."""
    return min(limits.max_members * 25, MAX_MEMBERS)


def open_sysdiagnose(path: str | Path, limits: Limits) -> Sysdiagnose:
    """The sysdiagnose at ``path`` (archive or folder); ``InputError`` when it is neither
    a tar archive (gzip-compressed or not) nor a folder, or holds no file at all."""
    p = Path(path)
    if p.is_dir():
        return _folder(p, limits)
    try:
        fh = open_regular(p)
    except OSError as exc:
        raise InputError(f"{p}: {getattr(exc, 'strerror', None) or exc}") from exc
    with fh:
        return _archive(p, fh, limits)


def _archive(p: Path, fh: BinaryIO, limits: Limits) -> Sysdiagnose:
    raw = _Hashing(fh)
    head = fh.read(2)
    fh.seek(0)
    caps = tarstream.Caps(max_members=_member_cap(limits),
                          max_bytes=MAX_ARCHIVE_BYTES, max_member=MAX_FILE,
                          seconds=limits.seconds)
    names: list[str] = []
    kept: dict[str, bytes | None] = {}
    unsafe = 0
    stopped: tuple[str, str] | None = None
    gz = gzip.GzipFile(fileobj=raw, mode="rb") if head == _GZIP else None
    stream: tarstream.Readable = _Ratio(gz, raw, limits.max_ratio) if gz else raw

    def wanted(name: str) -> bool:
        clean = safe_name(name)
        return clean is not None and WANTED.fullmatch(clean) is not None

    try:
        for m in tarstream.members(stream, caps, wanted):
            clean = safe_name(m.name)
            if clean is None:
                unsafe += 1
            elif m.is_file:
                names.append(clean)
                if wanted(m.name):
                    kept[clean] = m.data
    except (FormatError, LimitExceeded) as exc:
        stopped = (exc.code, str(exc))
    except _READ_ERRORS as exc:  # a gzip stream cut short or damaged
        stopped = ("malformed", f"bad gzip stream: {exc}")
    finally:
        if gz is not None:
            gz.close()
    if not names and stopped is not None:
        raise InputError(f"{p}: not a sysdiagnose archive (a .tar.gz): {stopped[1]}")
    if not names:
        raise InputError(f"{p}: an archive with no file in it")
    inputs: dict[str, str] = {}
    if stopped is None and _read_rest(raw):  # (the hash of the whole file, as read)
        inputs[str(p)] = raw.sha.hexdigest()
    return Sysdiagnose(p, True, names, kept, stopped, unsafe, inputs)


def _read_rest(raw: _Hashing, cap: int = 256 * 1024 * 1024) -> bool:
    """Read what follows the archive's end (its padding) into the hash; False when more
    than ``cap`` bytes follow (the file's hash is then not given)."""
    left = cap
    while left > 0:
        got = raw.read(min(left, 1 << 20))
        if not got:
            return True
        left -= len(got)
    return not raw.read(1)


def _folder(p: Path, limits: Limits) -> Sysdiagnose:
    """The files below ``p`` (links not followed), named from ``p``'s parent."""
    names: list[str] = []
    stopped: tuple[str, str] | None = None
    deadline = time.monotonic() + limits.seconds
    base = p.parent
    cap = _member_cap(limits)
    for top, dirs, files in os.walk(p):
        rel = Path(top).relative_to(base).as_posix()
        if rel.count("/") >= MAX_DEPTH:
            dirs.clear()
            stopped = ("limit", f"folders deeper than {MAX_DEPTH} levels were not listed")
        dirs.sort()
        names += [posixpath.join(rel, f) for f in sorted(files) if not f.startswith("._")]
        if len(names) > cap:
            del names[cap:]
            stopped = ("limit", f"more than {cap} files in the sysdiagnose folder")
            break
        if time.monotonic() > deadline:
            stopped = ("limit", f"time budget of {limits.seconds:g}s spent listing the folder")
            break
    if not names:
        raise InputError(f"{p}: a folder with no file in it")
    return Sysdiagnose(p, False, names, {}, stopped, 0, {})
