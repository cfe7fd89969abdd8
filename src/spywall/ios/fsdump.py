"""A full iOS filesystem dump (the input of MVT's ``check-fs``), opened without changing it.

- Recognised by its layout: ``private/var/mobile`` or ``private/var/db`` in the folder, or
  in one folder below it (dumps often keep a leading root folder).
- The tree is walked once, without following symlinks, within caps on entries, depth and
  time; what the walk did not reach is said (``truncated``), never silently dropped.
- Backup modules find their artifacts by (domain, relativePath) as in a backup:
  ``DOMAIN_ROOTS`` maps fixed domains to their folder on the phone, and app and system
  group containers (UUID folders) are named by their container-manager metadata plist.
- Every file a module reads is resolved (symlinks included) and must stay inside the dump
  (``FormatError`` otherwise); its SHA-256 goes to ``inputs``. Databases are opened by
  ``device.sqlite`` (read-only, immutable, a WAL applied on a private copy).
"""

from __future__ import annotations

import os
import posixpath
import time
from pathlib import Path

from spywall.device.base import load_plist
from spywall.errors import FormatError, InputError, LimitExceeded
from spywall.ios.backup import Entry, read_capped, sha256_file

MARKERS = ("private/var/mobile", "private/var/db")
MAX_ENTRIES = 2_000_000
MAX_DEPTH = 48
MAX_CONTAINERS = 20_000
MAX_META = 1024 * 1024
FILE, FOLDER, LINK = 1, 2, 4
# Where a backup domain's files live on the phone.
DOMAIN_ROOTS = {
    "HomeDomain": "private/var/mobile",
    "MediaDomain": "private/var/mobile",
    "RootDomain": "private/var/root",
    "WirelessDomain": "private/var/wireless",
    "SystemPreferencesDomain": "private/var/preferences",
    "KeychainDomain": "private/var/Keychains",
    "ManagedPreferencesDomain": "private/var/Managed Preferences",
}
# Container domains: prefix of the domain name -> folder holding one UUID folder per container.
CONTAINER_ROOTS = {
    "AppDomain-": "private/var/mobile/Containers/Data/Application",
    "AppDomainGroup-": "private/var/mobile/Containers/Shared/AppGroup",
    "SysContainerDomain-": "private/var/containers/Data/System",
    "SysSharedContainerDomain-": "private/var/containers/Shared/SystemGroup",
}
_IN_CONTAINERS = tuple(f"{b}/" for b in CONTAINER_ROOTS.values())
CONTAINER_META = ".com.apple.mobile_container_manager.metadata.plist"
SYSTEM_VERSION = "System/Library/CoreServices/SystemVersion.plist"


def text(name: str) -> str:
    """A file name fit for reports: bytes that are not UTF-8 (kept by the OS as lone
    surrogates) become ``\\xNN`` escapes. Reading uses the name as it is on disk."""
    if name.isascii():
        return name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return name


def find_root(path: str | Path) -> Path | None:
    """The dump's root folder (the one holding ``private/``), or None if not a dump."""
    top = Path(path)
    if not top.is_dir():
        return None
    candidates = [top]
    try:
        with os.scandir(top) as it:
            kids = sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
    except OSError:
        kids = []
    candidates += [top / k for k in kids[:64]]
    for c in candidates:
        if any((c / m).is_dir() and not (c / m).is_symlink() for m in MARKERS):
            return c
    return None


class FsDump:
    """One dump (built once per check: a plain class)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.info: dict[str, object] = {}
        self.entries: list[Entry] = []
        self.inputs: dict[str, str] = {}
        self.containers: dict[str, str] = {}  # domain -> dump folder
        self.truncated = ""
        self.info_source = SYSTEM_VERSION  # where ``info`` comes from (a backup: Info.plist)
        self.real_root = root.resolve()
        self._by_disk: dict[str, Entry] = {}
        self._folder_domain: dict[str, str] = {}
        self._file_names: frozenset[str] | None = None

    def file_names(self) -> frozenset[str]:
        """The names of the dump's files (built once, when a module asks)."""
        if self._file_names is None:
            self._file_names = frozenset(posixpath.basename(e.disk) for e in self.entries
                                         if e.flags == FILE)
        return self._file_names

    @property
    def encrypted(self) -> bool:
        return False

    @property
    def fork_safe(self) -> bool:
        """Modules may run in forked workers: every access opens the dump's files afresh."""
        return True

    # -- finding files by backup address -------------------------------------------------
    def folder_of(self, domain: str) -> str | None:
        return DOMAIN_ROOTS.get(domain) or self.containers.get(domain)

    def get(self, domain: str, relative_path: str) -> Entry | None:
        base = self.folder_of(domain)
        rel = posixpath.normpath(relative_path)
        if base is None or rel.startswith(("/", "../")) or rel in ("..", "."):
            return None
        e = self.by_disk(f"{base}/{rel}")
        if e is not None and (e.domain, e.relative_path) != (domain, rel):
            e = Entry("", domain, rel, e.flags, None, e.disk)
        return e

    def by_disk(self, disk: str) -> Entry | None:
        """The entry at a path inside the dump (``private/var/...``)."""
        e = self._by_disk.get(disk)
        if e is None and self.truncated:  # beyond a cut walk: look (never following links)
            p = self.root / disk
            if not os.path.lexists(p) or ".." in disk.split("/"):
                return None
            flags = LINK if p.is_symlink() else FILE if p.is_file() else FOLDER
            domain, rel = self._assign(disk)
            e = Entry("", domain, rel, flags, None, disk)
        return e

    def with_suffix(self, suffix: str) -> list[Entry]:
        return [e for e in self.entries if e.flags != FOLDER and e.disk.endswith(suffix)]

    def display(self, entry: Entry) -> str:
        return text(str(self.root / entry.disk))

    # -- reading, contained ---------------------------------------------------------------
    def resolve(self, disk: str) -> Path:
        """The real path of a dump file; ``FormatError`` if it is missing, not a regular
        file, or resolves (through any symlink) outside the dump."""
        try:
            real = (self.root / disk).resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise FormatError(f"{disk}: cannot be resolved in the dump") from exc
        if not real.is_relative_to(self.real_root):
            raise FormatError(f"{disk}: resolves outside the dump (symlink not followed)")
        if not real.is_file():
            raise FormatError(f"{disk}: not a regular file")
        return real

    def size(self, entry: Entry) -> int:
        """Bytes of the entry's file (0 when it cannot be found): nothing read."""
        try:
            return self.resolve(entry.disk).stat().st_size
        except (OSError, FormatError):
            return 0

    def local_path(self, entry: Entry) -> Path:
        real = self.resolve(entry.disk)
        self.inputs.setdefault(self.display(entry), sha256_file(real))
        return real

    def read(self, entry: Entry, limit: int) -> bytes:
        return read_capped(self.local_path(entry), limit, entry.disk)

    def read_head(self, entry: Entry, limit: int) -> tuple[bytes, bool]:
        """At most ``limit`` bytes from the start, and whether the file is longer."""
        path = self.local_path(entry)
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
        return data[:limit], len(data) > limit

    def wal(self, entry: Entry) -> Path | None:
        disk = entry.disk + "-wal"
        if not os.path.lexists(self.root / disk):
            return None
        return self.local_path(Entry("", entry.domain, entry.relative_path + "-wal", FILE,
                                     None, disk))

    # -- opening ----------------------------------------------------------------------------
    def _assign(self, disk: str) -> tuple[str, str]:
        """(domain, relativePath) of a dump path, as a backup would name it."""
        if not disk.startswith("private/var/"):
            return "", disk
        for base in CONTAINER_ROOTS.values() if disk.startswith(_IN_CONTAINERS) else ():
            if disk.startswith(base + "/"):
                uuid, _, rest = disk[len(base) + 1:].partition("/")
                domain = self._folder_domain.get(f"{base}/{uuid}")
                if domain is not None and rest:
                    return domain, rest
        for domain, base in DOMAIN_ROOTS.items():
            if disk.startswith(base + "/"):
                return domain, disk[len(base) + 1:]
        return "", disk

    def _read_containers(self) -> None:
        for prefix, base in CONTAINER_ROOTS.items():
            folder = self.root / base
            if not folder.is_dir() or folder.is_symlink():
                continue
            try:
                with os.scandir(folder) as it:
                    uuids = [e.name for e in it if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue
            for uuid in sorted(uuids)[:MAX_CONTAINERS]:
                ident = self._container_id(f"{base}/{uuid}/{CONTAINER_META}")
                if ident:
                    self.containers.setdefault(prefix + ident, f"{base}/{uuid}")
                    self._folder_domain[f"{base}/{uuid}"] = prefix + ident

    def _container_id(self, disk: str) -> str:
        try:
            real = self.resolve(disk)
            if real.stat().st_size > MAX_META:
                return ""
            meta = load_plist(real.read_bytes(), MAX_META)
        except (FormatError, LimitExceeded, OSError):
            return ""
        ident = meta.get("MCMMetadataIdentifier") if isinstance(meta, dict) else None
        return ident if isinstance(ident, str) and 0 < len(ident) < 256 else ""

    def _read_version(self) -> None:
        try:
            real = self.resolve(SYSTEM_VERSION)
            if real.stat().st_size > MAX_META:
                return
            meta = load_plist(real.read_bytes(), MAX_META)
        except (FormatError, LimitExceeded, OSError):
            return
        if isinstance(meta, dict):
            for key, name in (("ProductVersion", "Product Version"),
                              ("ProductBuildVersion", "Build Version")):
                if isinstance(meta.get(key), str):
                    self.info[name] = meta[key]

    def walk(self, seconds: float, max_entries: int = MAX_ENTRIES,
             max_depth: int = MAX_DEPTH) -> None:
        """List every path once (symlinks listed, never followed), within the caps."""
        deadline = time.monotonic() + seconds
        stack: list[tuple[str, int]] = [("", 0)]
        skipped = 0
        while stack:
            rel_dir, depth = stack.pop()
            try:
                with os.scandir(self.root / rel_dir if rel_dir else self.root) as it:
                    items = list(it)
            except OSError:
                skipped += 1
                continue
            for item in items:
                disk = f"{rel_dir}/{item.name}" if rel_dir else item.name
                try:
                    if item.is_symlink():
                        flags = LINK
                    elif item.is_dir(follow_symlinks=False):
                        flags = FOLDER
                    elif item.is_file(follow_symlinks=False):
                        flags = FILE
                    else:
                        continue  # sockets, devices, fifos: nothing to read or match
                except OSError:
                    skipped += 1
                    continue
                if len(self.entries) >= max_entries:
                    self.truncated = f"walk stopped at the cap of {max_entries} entries"
                    return
                domain, rel = self._assign(text(disk))
                e = Entry("", domain, rel, flags, None, disk)
                self.entries.append(e)
                self._by_disk[disk] = e
                if flags == FOLDER:
                    if depth + 1 < max_depth:
                        stack.append((disk, depth + 1))
                    else:
                        self.truncated = f"folders deeper than {max_depth} levels not listed"
            if time.monotonic() > deadline:
                self.truncated = f"walk stopped at the time budget of {seconds:g}s"
                return
        if skipped and not self.truncated:
            self.truncated = f"{skipped} folder(s) could not be read"


def open_dump(path: str | Path, seconds: float = 60.0,
              max_entries: int = MAX_ENTRIES) -> FsDump:
    """Open a filesystem dump folder; ``InputError`` when it does not look like one."""
    root = find_root(path)
    if root is None:
        raise InputError(f"{path}: not an iOS filesystem dump (no {' or '.join(MARKERS)})")
    dump = FsDump(root)
    dump._read_containers()
    dump._read_version()
    # the installed apps, as Info.plist lists them: the ids of the app data containers
    dump.info["Installed Applications"] = sorted(
        d.removeprefix("AppDomain-") for d in dump.containers if d.startswith("AppDomain-"))
    dump.walk(seconds, max_entries)
    return dump
