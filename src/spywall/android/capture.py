"""An Android capture (bugreport or androidqf; folder, zip, or a lone dumpstate text or
``adb backup`` file),
read without changing it.

- Folders are walked without following symbolic links, and files are opened with
  ``O_NOFOLLOW``, so nothing outside the capture is read. Zips are read through
  ``zipfile`` with the caps of ``spywall.formats.zipfmt``: member count (checked by
  walking the central directory before ``zipfile`` builds an entry for each member),
  per-member and total decompressed output, ratio and time (one ``Budget`` per capture).
- Nothing is ever written next to the evidence; the sha256 of every evidence file read is
  kept in ``inputs`` for the results' ``info.json``.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

import msgspec

from spywall.android import age_capture
from spywall.device.base import iso_unix
from spywall.errors import FormatError, InputError, LimitExceeded
from spywall.formats.zipfmt import ZIP_ERRORS, open_capped
from spywall.limits import Budget, Limits
from spywall.safeopen import NotRegularFile, open_regular

SEP = "!/"
MAX_ENTRIES = 200_000
CHUNK = 1 << 20
QF_MARKERS = ("packages.json", "getprop.txt", "ps.txt", "processes.json", "files.json",
              "root_binaries.json", "settings_secure.txt", "settings_global.txt",
              "acquisition.json", "packages.pb", "files.pb")
BUGREPORT_MARKERS = ("main_entry.txt",)
# The dumpstate text of a bugreport without main_entry.txt: AOSP's bugreport-*.txt /
# dumpstate*.txt, or the dumpState_*.log of vendor bugreports (Samsung's, Huawei's).
DUMPSTATE_NAME = re.compile(r"(?:bugreport|dumpstate)[^/]{0,200}\.(?:txt|log)", re.I)


class Source(Protocol):
    """Files of a capture by relative POSIX name."""

    label: str

    def names(self) -> list[str]: ...

    def read(self, name: str, cap: int, budget: Budget) -> bytes: ...

    def mtime(self, name: str) -> str | None: ...

    def close(self) -> None: ...


def _capped(read: Callable[[int], bytes], cap: int, budget: Budget, name: str) -> bytes:
    out = bytearray()
    while True:
        chunk = read(min(CHUNK, cap + 1 - len(out)))
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > cap:
            raise LimitExceeded(f"{name}: larger than the cap of {cap} bytes")
        budget.check_time()


class DirSource:
    def __init__(self, root: Path, only: list[str] | None = None) -> None:
        self.root = root
        self.label = str(root)
        self._names: list[str] | None = only
        self._known: set[str] | None = None

    def names(self) -> list[str]:
        if self._names is None:
            out: list[str] = []
            for top, dirs, files in os.walk(self.root, followlinks=False):
                dirs.sort()
                rel = os.path.relpath(top, self.root)
                for f in sorted(files):
                    full = os.path.join(top, f)
                    if os.path.islink(full) or not os.path.isfile(full):
                        continue
                    out.append(f if rel == "." else posixpath.join(rel.replace(os.sep, "/"), f))
                    if len(out) > MAX_ENTRIES:
                        raise LimitExceeded(f"more than {MAX_ENTRIES} files in the capture")
            self._names = out
        return self._names

    def read(self, name: str, cap: int, budget: Budget) -> bytes:
        if self._known is None:
            self._known = set(self.names())
        if name not in self._known:
            raise FormatError(f"{name}: not in the capture")
        try:  # a regular file only, never through a link, never blocking (a FIFO)
            with open_regular(self.root / name, follow=False) as fh:
                return _capped(fh.read, cap, budget, name)
        except NotRegularFile as exc:
            raise FormatError(f"{name}: {exc}") from exc
        except OSError as exc:
            raise FormatError(f"{name}: cannot read: {exc.strerror or exc}") from exc

    def head(self, name: str, n: int) -> bytes:
        """The first ``n`` bytes of a file (a regular one, never through a link)."""
        try:
            with open_regular(self.root / name, follow=False) as fh:
                return fh.read(n)
        except (NotRegularFile, OSError):
            return b""

    def mtime(self, name: str) -> str | None:
        """The file's modification time (UTC ISO-8601), never through a link."""
        try:
            return iso_unix(os.lstat(self.root / name).st_mtime)
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        """Nothing stays open between reads."""


class ZipSource:
    def __init__(self, data: bytes | Path, label: str, limits: Limits) -> None:
        self.label = label
        cap = min(limits.max_members, MAX_ENTRIES)
        fp: BinaryIO = io.BytesIO(data) if isinstance(data, bytes) else open_regular(data)
        try:
            self._zip, entries = open_capped(fp, cap)
            infos = self._zip.infolist()
        except ZIP_ERRORS as exc:
            fp.close()
            raise FormatError(f"{label}: bad zip: {exc}") from exc
        if entries > cap:
            self._zip.close()
            fp.close()
            raise LimitExceeded(f"{label}: more than {cap} members, over the cap")
        self._fp = fp
        # Names as the capture's modules ask for them: a zip made by an old Windows tool
        # separates folders with backslashes (never a file name character on a phone).
        self._infos = {(i.filename.replace("\\", "/") if "/" not in i.filename
                        else i.filename): i
                       for i in infos if not i.filename.endswith(("/", "\\"))}

    def names(self) -> list[str]:
        return list(self._infos)

    def read(self, name: str, cap: int, budget: Budget) -> bytes:
        info = self._infos.get(name)
        if info is None:
            raise FormatError(f"{name}: not in the capture")
        if info.flag_bits & 0x1:
            raise FormatError(f"{name}: encrypted zip member")
        cap = min(cap, budget.stream_cap())
        try:
            with self._zip.open(info) as fh:
                data = _capped(fh.read, cap, budget, name)
        except ZIP_ERRORS as exc:
            raise FormatError(f"{name}: cannot extract: {exc}") from exc
        budget.charge_decompressed(len(data), info.compress_size)
        return data

    def head(self, name: str, n: int) -> bytes:
        """The first ``n`` bytes of a member (decompressed no further)."""
        info = self._infos.get(name)
        if info is None or info.flag_bits & 0x1:
            return b""
        try:
            with self._zip.open(info) as fh:
                return fh.read(n)
        except ZIP_ERRORS:
            return b""

    def mtime(self, name: str) -> str | None:
        """The member's modification time as the zip stores it: DOS local time, no zone
        (the time of the phone or computer that wrote it), ``YYYY-MM-DDThh:mm:ss``."""
        info = self._infos.get(name)
        if info is None:
            return None
        y, mo, d, h, mi, sec = info.date_time
        if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and sec < 60):
            return None
        return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{sec:02d}"

    def close(self) -> None:
        self._zip.close()
        self._fp.close()


def _depth(head: str) -> int:
    return head.count("/") + 1 if head else 0


def _base(names: list[str], markers: tuple[str, ...], what: str) -> str | None:
    """The shallowest folder holding one of ``markers`` (``""`` for the top).
    ``FormatError`` when several folders at that depth hold one: a folder of several
    captures, of which one alone would otherwise be checked without a word."""
    heads = {n.rpartition("/")[0] for n in names if n.rpartition("/")[2] in markers}
    if not heads:
        return None
    top = min(map(_depth, heads))
    found = sorted(h for h in heads if _depth(h) == top)
    if len(found) > 1:
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise FormatError(f"it holds {len(found)} {what} captures ({shown}): check each "
                          "one on its own")
    return found[0]


class Capture(msgspec.Struct):
    """One capture: where it is, what it is, and its files relative to ``prefix``."""

    path: str
    kind: str                  # androidqf | bugreport | dumpstate | backup | fs | history
                               # | intrusion (a folder or zip of intrusion-log exports)
    source: Source
    prefix: str
    budget: Budget
    limits: Limits
    inputs: dict[str, str] = msgspec.field(default_factory=dict)
    cache: dict[str, object] = msgspec.field(default_factory=dict)
    password: str | None = None  # of an encrypted backup.ab / adb backup

    def members(self) -> list[str]:
        """Names relative to the capture base."""
        pre = f"{self.prefix}/" if self.prefix else ""
        return [n[len(pre):] for n in self.source.names() if n.startswith(pre)]

    def has(self, name: str) -> bool:
        return name in self._set()

    def _set(self) -> set[str]:
        got = self.cache.get("_names")
        if not isinstance(got, set):
            got = set(self.members())
            self.cache["_names"] = got
        return got

    def where(self, name: str) -> str:
        """How a member is named in findings and info.json: ``capture.zip!/dir/name`` in
        a zip, ``folder/dir/name`` in a folder, the file itself for a lone text."""
        if self.kind in ("dumpstate", "backup"):
            return self.path
        if self.kind == "history":  # a lone database (and its -wal beside it)
            return os.path.join(os.path.dirname(self.path), name)
        full = f"{self.prefix}/{name}" if self.prefix else name
        sep = "/" if isinstance(self.source, DirSource) else SEP
        return f"{self.path.rstrip('/')}{sep}{full}"

    def read(self, name: str, cap: int | None = None) -> bytes | None:
        """A member's bytes (None if absent); its sha256 is kept in ``inputs``."""
        if not self.has(name):
            return None
        full = f"{self.prefix}/{name}" if self.prefix else name
        data = self.source.read(full, cap or self.limits.max_stream_bytes, self.budget)
        self.inputs.setdefault(self.where(name), hashlib.sha256(data).hexdigest())
        return data

    def mtime(self, name: str) -> str | None:
        """A member's modification time (``Source.mtime``), None if absent."""
        if not self.has(name):
            return None
        return self.source.mtime(f"{self.prefix}/{name}" if self.prefix else name)

    def close(self) -> None:
        """Close the capture and any nested bugreport opened from it."""
        self.source.close()
        for v in self.cache.values():
            if isinstance(v, Capture):
                v.close()

    def first(self, *names: str) -> str | None:
        return next((n for n in names if self.has(n)), None)


def _kind(names: list[str]) -> tuple[str, str] | None:
    qf = _base(names, QF_MARKERS, "androidqf")
    if qf is not None:
        return "androidqf", qf
    br = _base(names, BUGREPORT_MARKERS, "bugreport")
    if br is not None:
        return "bugreport", br
    heads = [n.rpartition("/")[0] for n in names if DUMPSTATE_NAME.fullmatch(n.rpartition("/")[2])]
    if heads:  # a vendor bugreport: its dumpstate text alone marks it
        return "bugreport", min(heads, key=lambda h: (_depth(h), h))
    return None


# Chromium History databases at their place in an Android file system dump (MVT's
# check-fs list): relative path -> (browser, package, profile).
FS_HISTORY: dict[str, tuple[str, str, str]] = {
    "data/data/com.android.chrome/app_chrome/Default/History":
        ("Chrome", "com.android.chrome", "Default"),
    "data/data/com.brave.browser/app_chrome/Default/History":
        ("Brave", "com.brave.browser", "Default"),
    "data/data/com.microsoft.emmx/app_chrome/Default/History":
        ("Microsoft Edge", "com.microsoft.emmx", "Default"),
    "data/data/com.sec.android.app.sbrowser/app_sbrowser/Default/History":
        ("Samsung Internet", "com.sec.android.app.sbrowser", "Default"),
}
SQLITE_MAGIC = b"SQLite format 3\x00"


def _regular_under(root: Path, rel: str) -> bool:
    """``root/rel`` is a regular file reached through no symbolic link."""
    here = root
    parts = rel.split("/")
    try:
        for i, part in enumerate(parts):
            here = here / part
            mode = os.lstat(here).st_mode
            if stat.S_ISLNK(mode) or (i < len(parts) - 1 and not stat.S_ISDIR(mode)):
                return False
        return stat.S_ISREG(mode)
    except OSError:
        return False


def _fs_dump(root: Path, limits: Limits, budget: Budget) -> Capture | None:
    """An Android file system dump (the folder holding ``data/data/...``), probed at the
    known places only: a dump holds millions of files, never walked."""
    found = [rel for rel in FS_HISTORY if _regular_under(root, rel)]
    if not found:
        return None
    names = [n for rel in found for n in (rel, f"{rel}-wal") if _regular_under(root, n)]
    return Capture(str(root), "fs", DirSource(root, names), "", budget, limits)


# A line of an Android intrusion-log export: a JSON object keyed by the event type.
_INTRUSION_LINE = re.compile(rb"\s*\{\s*\"(?:dns_event|connect_event|security_event)\"\s*:")
MAX_SNIFF = 16


def _intrusion_logs(source: DirSource | ZipSource, names: list[str]) -> bool:
    """A folder or zip of Android intrusion-log exports (MVT's check-intrusion-logs
    input): one of its first text files begins as an export line does."""
    texts = [n for n in names if n.lower().endswith(".txt")][:MAX_SNIFF]
    return any(_INTRUSION_LINE.match(source.head(n, 256)) for n in texts)


def from_source(source: Source, path: str, limits: Limits, budget: Budget) -> Capture:
    try:
        found = _kind(source.names())
    except FormatError as exc:
        raise FormatError(f"{path}: {exc}") from exc
    if found is None and isinstance(source, DirSource | ZipSource) and _intrusion_logs(
            source, source.names()):
        found = ("intrusion", "")
    if found is None:
        raise FormatError(f"{path}: neither an androidqf capture nor a bugreport "
                          f"(no {', '.join(QF_MARKERS[:3])}, main_entry.txt or dumpstate "
                          "text)")
    return Capture(path, found[0], source, found[1], budget, limits)


def open_capture(path: str | Path, limits: Limits | None = None, *,
                 age_keys: list[str] | None = None, passphrase: str | None = None) -> Capture:
    """Open a capture folder, zip (age-encrypted ones with ``age_keys`` or
    ``passphrase``: ``age_capture``) or dumpstate text. ``InputError`` if it is none of
    them."""
    limits = limits or Limits()
    budget = Budget(limits)
    p = Path(path)
    try:
        if p.is_dir():
            return _fs_dump(p, limits, budget) or from_source(DirSource(p), str(p), limits,
                                                               budget)
        if not p.is_file():
            raise InputError(f"{p}: no such file or folder")
        if p.stat().st_size > limits.max_file_bytes:
            raise InputError(f"{p}: larger than {limits.max_file_bytes} bytes")
        with p.open("rb") as fh:
            head = fh.read(32)
        if head.startswith(b"PK") or age_capture.is_age(head):
            src = (ZipSource(p, str(p), limits) if head.startswith(b"PK") else
                   ZipSource(age_capture.decrypt(p.read_bytes(), age_keys or [], passphrase),
                             str(p), limits))
            try:
                return from_source(src, str(p), limits, budget)
            except FormatError:
                src.close()
                raise
        # a lone file: an ``adb backup``, a Chromium History database or a dumpstate text
        if head.startswith(SQLITE_MAGIC):
            wal = [f"{p.name}-wal"] if _regular_under(p.parent, f"{p.name}-wal") else []
            return Capture(str(p), "history", DirSource(p.parent, [p.name, *wal]), "",
                           budget, limits)
        kind = "backup" if head.startswith(b"ANDROID BACKUP\n") else "dumpstate"
        return Capture(str(p), kind, DirSource(p.parent, [p.name]), "", budget, limits)
    except (FormatError, LimitExceeded) as exc:
        raise InputError(str(exc)) from exc
    except OSError as exc:
        raise InputError(f"{p}: {exc.strerror or exc}") from exc


def nested(parent: Capture, name: str) -> Capture | None:
    """A bugreport zip inside a capture (androidqf's bugreport.zip), or None."""
    data = parent.read(name)
    if data is None:
        return None
    src = ZipSource(data, parent.where(name), parent.limits)
    cap = from_source(src, parent.where(name), parent.limits, parent.budget)
    cap.inputs = parent.inputs
    return cap
