"""Modules that only a filesystem dump can feed: Shutdown.log, netusage.sqlite, and every
path on disk. Each skips on a backup (its artifacts are not in one).

- ``shutdown_log`` (private/var/db/diagnostics/shutdown.log, and the rotated
  shutdown.N.log beside it, oldest first): at each shutdown the log
  lists the processes still running ("remaining client pid: N (path)") after
  ``After NN.NNs`` delays, and closes the shutdown with ``SIGTERM: [<unix time>]``. Each
  client path is matched as a ``file:path`` and its last component as a ``process:name``
  (the index handles 15/16-character truncation). Heuristic ``ios-shutdown-unusual-path``:
  a client running from /private/var/db/ or /private/var/tmp/, where no Apple daemon
  lives; Pegasus ran from there (Kaspersky's iShutdown method).
- ``netusage`` (private/var/networkd[/db]/netusage.sqlite): the DataUsage schema, read by
  the same function (``system.process_usage``), Triangulation's BackupAgent rule included.
- ``filesystem``: every path the walk listed, as ``file:path`` and ``file:name``, the
  name of an executable file as a ``process:name``, and the site of a WebKit storage
  name (``https_<host>_<port>``) as a domain, except in the folders the ``webkit_*``
  modules read (``webkit_folders``). File contents are not read.
"""

from __future__ import annotations

import posixpath
import re
import stat
from typing import Any

import msgspec

from spywall.device.base import CheckContext, FnModule, Record, iso_unix
from spywall.ios.backup import Entry
from spywall.ios.common import SKIPPED, Ctx, Result, ok
from spywall.ios.fsdump import FILE, FOLDER, LINK, FsDump, text
from spywall.ios.inventory import WEBKIT_ORIGIN
from spywall.ios.system import process_usage
from spywall.ios.webkit_folders import folder_kind
from spywall.report import ErrorEntry, Scalar, Severity

SHUTDOWN_LOG = "private/var/db/diagnostics/shutdown.log"
# Rotated logs beside it: shutdown.0.log, shutdown.1.log, ... (older shutdowns).
_ROTATED = re.compile(r"private/var/db/diagnostics/[Ss]hutdown\.(\d{1,4})\.log")
MAX_LOGS = 64
NETUSAGE = ("private/var/networkd/netusage.sqlite", "private/var/networkd/db/netusage.sqlite")
MAX_LOG_BYTES = 64 * 1024 * 1024
MAX_LINE = 4096
MAX_CLIENTS = 200_000
# Folders on the phone (not on this machine) where no Apple process runs from.
UNUSUAL_DIRS = ("/private/var/db/", "/private/var/tmp/", "/var/db/", "/var/tmp/")  # noqa: S108
ISHUTDOWN = ("https://securelist.com/shutdown-log-lightweight-ios-malware-detection-method/"
             "111734/", "https://github.com/KasperskyLab/iShutdown")
_CLIENT = re.compile(r"\s*remaining client pid:\s*(\d{1,10})\s*\((.{1,2048})\)\s*")
_AFTER = re.compile(r"\s*After\s+(\d{1,9}(?:\.\d{1,6})?)s\b")
_SIGTERM = re.compile(r"\s*SIGTERM:\s*\[(\d{1,12})\]")


def path_forms(path: str) -> list[str]:
    """A phone path and its /private alias (/var is a link to /private/var on iOS)."""
    if path.startswith("/private/var/"):
        return [path, path[len("/private"):]]
    if path.startswith("/var/"):
        return [path, "/private" + path]
    return [path]


def _dump(ctx: Ctx) -> FsDump | None:
    ev = ctx.evidence
    return ev if isinstance(ev, FsDump) else None


def _limit(ctx: Ctx, path: str, message: str) -> None:
    ctx.subject.errors.append(ErrorEntry(path=path, code="limit", message=message[:600]))


# -- shutdown_log -------------------------------------------------------------------------

class Client(msgspec.Struct):
    pid: int
    path: str
    after: float | None


class Shutdown(msgspec.Struct):
    """One shutdown: the clients still running, and its SIGTERM time (unix seconds)."""

    clients: dict[tuple[int, str], Client] = msgspec.field(default_factory=dict)
    sigterm: int | None = None


def parse_shutdown_log(text: str) -> tuple[list[Shutdown], int]:
    """The shutdowns of a Shutdown.log, and how many lines were malformed or too long.

    Lines other than the three kinds are ignored; clients not yet closed by a SIGTERM
    line at the end form a last shutdown without a time."""
    out: list[Shutdown] = []
    cur = Shutdown()
    after: float | None = None
    bad = total = 0
    for line in text.splitlines():
        if len(line) > MAX_LINE:
            bad += 1
            continue
        if "remaining client" in line:
            m = _CLIENT.fullmatch(line)
            if m is None or total >= MAX_CLIENTS:
                bad += 1
                continue
            key = (int(m.group(1)), m.group(2).strip())
            if key not in cur.clients:
                total += 1
            cur.clients[key] = Client(key[0], key[1], after)
        elif "SIGTERM" in line:
            m = _SIGTERM.match(line)
            if m is None:
                bad += 1
                continue
            cur.sigterm = int(m.group(1))
            out.append(cur)
            cur, after = Shutdown(), None
        elif (m := _AFTER.match(line)) is not None:
            after = float(m.group(1))
    if cur.clients:
        out.append(cur)
    return out, bad


def shutdown_logs(dump: FsDump) -> list[Entry]:
    """The shutdown logs of a dump: rotated ones (highest number, the oldest, first),
    then the current one; at most ``MAX_LOGS``."""
    rotated = [(int(m.group(1)), e) for e in dump.entries
               if e.flags == FILE and (m := _ROTATED.fullmatch(e.disk)) is not None]
    rotated.sort(key=lambda r: -r[0])
    current = dump.by_disk(SHUTDOWN_LOG)
    found = [e for _, e in rotated] + ([current] if current is not None else [])
    return found[-MAX_LOGS:]


def _shutdown_log(ctx: Ctx) -> Result:
    dump = _dump(ctx)
    logs = shutdown_logs(dump) if dump else []
    if dump is None or not logs:
        return SKIPPED
    flagged: set[str] = set()
    n = total = bad = 0
    for entry in logs:
        path = dump.display(entry)
        data, cut = dump.read_head(entry, MAX_LOG_BYTES)
        shutdowns, bad_here = parse_shutdown_log(data.decode("utf-8", "replace"))
        if cut:
            _limit(ctx, path, f"{posixpath.basename(entry.disk)}: only the first "
                   f"{MAX_LOG_BYTES} bytes were read")
        total += len(shutdowns)
        bad += bad_here
        n += record_clients(ctx, shutdowns, path, posixpath.basename(entry.disk), flagged)
    parts = [f"{total} shutdown(s) in {len(logs)} log(s)"]
    if bad:
        parts.append(f"{bad} malformed line(s) skipped")
    return ok(n, "; ".join(parts))


def record_clients(ctx: CheckContext[Any], shutdowns: list[Shutdown], path: str, log: str,
                   flagged: set[str]) -> int:
    """The clients of ``shutdowns`` (from the log ``log`` at ``path``) as records of
    ``shutdown_log``, matched, with the unusual-folder heuristic (once per path in
    ``flagged``). A filesystem dump's logs and a sysdiagnose's are read alike. Every
    part of a client's path is matched as a process, as MVT matches them (a process
    name as a folder: ``/private/var/tmp/<name>/helper``)."""
    n = 0
    for sd in shutdowns:
        when = iso_unix(sd.sigterm)
        for c in sd.clients.values():
            n += 1
            name = posixpath.basename(c.path)
            parts = list(dict.fromkeys(p for p in c.path.split("/") if p))
            forms = path_forms(c.path)
            if not (ctx.timeline or ctx.any_hit("process", parts)
                    or ctx.any_hit("file_path", forms)
                    or c.path.startswith(UNUSUAL_DIRS)):
                continue
            rec = ctx.record("shutdown_log", when, "remaining_client",
                             {"pid": c.pid, "client": c.path, "after_seconds": c.after,
                              "sigterm": sd.sigterm, "log": log})
            detail: dict[str, Scalar] = {"client": c.path, "pid": c.pid}
            for p in forms:
                if ctx.check("file_path", p, rec=rec, path=path, detail=detail,
                             what="process still running at shutdown"):
                    break
            for part in parts:
                ctx.check("process", part, rec=rec, path=path, detail=detail,
                          what="process still running at shutdown" if part == name
                          else "folder of a process still running at shutdown")
            _unusual(ctx, c, rec, path, flagged)
    return n


def _unusual(ctx: CheckContext[Any], c: Client, rec: Record, path: str, flagged: set[str]) -> None:
    if not c.path.startswith(UNUSUAL_DIRS) or c.path in flagged:
        return
    flagged.add(c.path)
    ctx.heuristic(
        "ios-shutdown-unusual-path", "Process running from an unusual folder",
        f"Shutdown.log shows {c.path!r} (pid {c.pid}) still running at shutdown; no "
        "Apple process runs from /private/var/db/ or /private/var/tmp/, where Pegasus "
        "processes were found. Not proof on its own: check the process name",
        rec=rec, path=path, severity=Severity.MEDIUM,
        detail={"client": c.path, "pid": c.pid}, references=ISHUTDOWN)


# -- netusage ------------------------------------------------------------------------------

def _netusage(ctx: Ctx) -> Result:
    dump = _dump(ctx)
    entry = next((e for d in NETUSAGE if dump and (e := dump.by_disk(d))), None)
    if dump is None or entry is None:
        return SKIPPED
    return process_usage(ctx, entry, dump.display(entry), "netusage", "netusage.sqlite")


# -- filesystem ----------------------------------------------------------------------------

def _mtime(dump: FsDump, e: Entry) -> tuple[str | None, int]:
    try:
        st = (dump.root / e.disk).lstat()
    except OSError:
        return None, 0
    return iso_unix(st.st_mtime), st.st_mode


def _filesystem(ctx: Ctx) -> Result:
    dump = _dump(ctx)
    if dump is None:
        return SKIPPED
    kinds = {FILE: "file", FOLDER: "folder", LINK: "symlink"}
    index = ctx.index
    # The /var alias of each /private/var path costs a second look-up: only when some
    # indicator is written that way.
    alias = any(i.kind == "file_path" and i.value.startswith("/var/") for i in index.indicators)
    for e in dump.entries:
        full = "/" + text(e.disk)
        name = posixpath.basename(full)
        forms = path_forms(full) if alias else [full]
        # (every folder is an entry of its own, so each path component is looked at once)
        proc = ctx.any_hit("process", (name,))
        # (a site's name in the folders the webkit_* modules read is theirs to report)
        origins = ([m.group(1) for m in WEBKIT_ORIGIN.finditer(name)]
                   if "http" in name and folder_kind(e.disk.rpartition("/")[0]) is None
                   else [])
        # Paths are unique: matched without the memo (names repeat, and go through it).
        if not (ctx.timeline or proc or ctx.any_hit("file_name", (name,))
                or any(index.match("file_path", p) for p in forms)
                or ctx.any_hit("domain", origins)):
            continue
        when, mode = _mtime(dump, e)
        rec = ctx.record("filesystem", when, "modified",
                         {"path": full, "kind": kinds.get(e.flags, "other")})
        where = dump.display(e)
        detail: dict[str, Scalar] = {"path": full}
        # (high, as MVT's filesystem module marks its matches: a name or path alone)
        ctx.check("file_name", name, rec=rec, path=where, what="file name on the phone",
                  severity=Severity.HIGH, detail=detail)
        for p in forms:
            if ctx.check("file_path", p, rec=rec, path=where, what="path on the phone",
                         severity=Severity.HIGH, detail=detail):
                break
        if proc and e.flags == FILE and stat.S_ISREG(mode) and mode & 0o111:
            ctx.check("process", name, rec=rec, path=where, what="executable on the phone",
                      severity=Severity.HIGH, detail=detail)
        elif proc:  # MVT matches every path component (HIGH); a name alone says less
            ctx.check("process", name, rec=rec, path=where, severity=Severity.MEDIUM,
                      what=f"{kinds.get(e.flags, 'entry')} named like a process (not an "
                           "executable)", detail=detail)
        for origin in origins:
            ctx.check("domain", origin, rec=rec, path=where, detail=detail,
                      severity=Severity.HIGH, what="WebKit storage of a site")
    if dump.truncated:
        _limit(ctx, str(dump.root), f"filesystem: {dump.truncated}")
    return ok(len(dump.entries), dump.truncated)


MODULES = (
    FnModule("filesystem", "every path in the dump: file names, paths, executables",
             _filesystem),
    FnModule("shutdown_log", "processes still running at shutdown (Shutdown.log)",
             _shutdown_log),
    FnModule("netusage", "network use per process (netusage.sqlite)", _netusage),
)
