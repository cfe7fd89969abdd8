"""Android tombstones (native crash reports in ``/data/tombstones``), text and protobuf.

Since Android 12, debuggerd writes each crash twice: ``tombstone_NN`` (text) and
``tombstone_NN.pb``, a ``Tombstone`` message of AOSP's public
``system/core/debuggerd/proto/tombstone.proto``; bugreports carry both (androidqf carries
them inside its bugreport.zip), and a phone that ran out of space may keep only one. The
fields read here (numbers as the .proto declares them):

- ``Tombstone``: ``arch`` 1 (enum: ARM32, ARM64, X86, X86_64, RISCV64),
  ``build_fingerprint`` 2, ``revision`` 3, ``timestamp`` 4 (text, as the text tombstone
  writes it), ``pid`` 5, ``tid`` 6, ``uid`` 7, ``selinux_label`` 8, ``command_line`` 9
  (repeated; Android 12 declared it as one ``process_name`` string, read the same way),
  ``signal_info`` 10, ``abort_message`` 14, ``causes`` 15 (Android 12: one ``cause``),
  ``threads`` 16 (a map uint32 -> ``Thread``), ``process_uptime`` 20.
- ``Signal``: ``number`` 1, ``name`` 2, ``code`` 3, ``code_name`` 4.
- ``Cause``: ``human_readable`` 1. ``Thread``: ``id`` 1, ``name`` 2.

The crashing process is named, as in the text tombstone's ``name:``, by the name of the
thread whose id is ``tid``. The other fields (registers, backtraces, memory maps and
dumps, log buffers, open files) are walked, bounds-checked and not kept.

MVT's tombstones module: one record per crash (the text and protobuf files of one crash
merged, the protobuf's fields first), the crashed process's name and the base name of
its first command-line word matched as process indicators, and a crash of a process
running as root, system or shell (uid 0, 1000, 2000) reported as potentially suspicious.
spywall also matches those names as app ids (``com.app:service`` -> ``com.app``) and an
absolute path as a file path. A file that cannot be read is an error entry of its own
(the check is then incomplete); the other crashes are still read.
"""

from __future__ import annotations

import re

import msgspec

from spywall.android.capture import Capture
from spywall.android.common import ANDROID_DAEMONS, Ctx, Result, iso_any, mvt_form, ok, skipped
from spywall.android.dumpstate import decode, tombstone
from spywall.android.qf_pb import Fields, field_int, field_subs, field_text, fields
from spywall.device.base import Record
from spywall.errors import FormatError, LimitExceeded
from spywall.report import ErrorEntry, Scalar, Severity

# MVT's glob ``*/tombstone_*``: a tombstone of any folder of the bugreport
TOMBSTONE = re.compile(r"(?:.{1,4096}/)?tombstone_[^/]{1,64}")
MAX_TOMBSTONES = 1000
MAX_TOMBSTONE_BYTES = 8 * 1024 * 1024
MAX_FIELDS = 100_000      # values kept from one message (threads, command-line words...)
MAX_TEXT = 4096           # characters kept of one text field
# uids whose crashes MVT calls potentially suspicious: root, system, the adb shell
PRIVILEGED_UIDS = {0: "root", 1000: "system", 2000: "shell"}
ARCH = ("arm", "arm64", "x86", "x86_64", "riscv64", "none")
_TOP = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 20})
_THREAD = frozenset({1, 2})


class Crash(msgspec.Struct, frozen=True):
    """One tombstone's fields (either format), as the record shows them."""

    pid: int | None = None
    tid: int | None = None
    uid: int | None = None
    process_name: str | None = None   # the crashing thread's name
    binary_path: str | None = None    # the first command-line word (text: >>> ... <<<)
    command_line: str | None = None
    timestamp: str | None = None
    build_fingerprint: str | None = None
    revision: str | None = None
    arch: str | None = None
    selinux_label: str | None = None
    process_uptime: int | None = None
    signal_info: str | None = None
    cause: str | None = None
    abort_message: str | None = None


def _cut(value: str) -> str | None:
    value = value[:MAX_TEXT].rstrip("\x00")
    return value or None


def _signal(f: Fields) -> str | None:
    """The Signal message as the text tombstone's signal line reads:
    ``11 (SIGSEGV), code 1 (SEGV_MAPERR)``."""
    if not f:
        return None
    number, code = field_int(f, 1, 32), field_int(f, 3, 32)
    name, code_name = field_text(f, 2)[:64], field_text(f, 4)[:64]
    return (f"{number} ({name or '?'}), code {code} ({code_name or '?'})")


def parse_pb(data: bytes) -> Crash:
    """A ``tombstone_NN.pb``. ``FormatError`` / ``LimitExceeded`` when it is not a
    well-formed Tombstone message (an empty file is not one)."""
    if not data:
        raise FormatError("empty protobuf tombstone")
    top = fields(data, _TOP, MAX_FIELDS)
    if not any(n in top for n in (5, 6, 7, 9, 10, 16)):
        raise FormatError("no pid, tid, uid, command line, signal or thread: "
                          "not a protobuf tombstone")
    tid = field_int(top, 6)
    name = None
    for entry in field_subs(top, 16):  # map<uint32, Thread> entries: key 1, value 2
        value = entry.get(2, [b""])[-1]
        thread = fields(value, _THREAD, MAX_FIELDS) if isinstance(value, bytes) else {}
        if field_int(thread, 1, 32) == tid and field_text(thread, 2):
            name = _cut(field_text(thread, 2))
            break
    words = [w.decode("utf-8", "replace")[:MAX_TEXT] for w in top.get(9, [])[:256]
             if isinstance(w, bytes)]
    causes = [field_text(c, 1) for c in field_subs(top, 15)[:64]]
    arch = field_int(top, 1)
    signals = field_subs(top, 10)
    uptime = field_int(top, 20)
    return Crash(
        pid=field_int(top, 5), tid=tid, uid=field_int(top, 7), process_name=name,
        binary_path=_cut(words[0]) if words else None,
        command_line=_cut(" ".join(words)), timestamp=_cut(field_text(top, 4)),
        build_fingerprint=_cut(field_text(top, 2)), revision=_cut(field_text(top, 3)),
        arch=ARCH[arch] if 0 <= arch < len(ARCH) else str(arch),
        selinux_label=_cut(field_text(top, 8)), process_uptime=uptime or None,
        signal_info=_signal(signals[-1]) if signals else None,
        cause=_cut(next((c for c in causes if c), "")),
        abort_message=_cut(field_text(top, 14)))


def parse_text(data: bytes) -> Crash:
    """A text ``tombstone_NN``: the header lines (absent ones are None)."""
    t = tombstone(decode(data))
    return Crash(pid=t.pid, tid=t.tid, uid=t.uid, process_name=t.name,
                 binary_path=t.executable, command_line=t.cmdline, timestamp=t.timestamp,
                 build_fingerprint=t.build_fingerprint, revision=t.revision, arch=t.arch,
                 process_uptime=t.uptime, signal_info=t.signal, cause=t.cause,
                 abort_message=t.abort_message)


def merged(crashes: list[Crash]) -> Crash:
    """One crash of its parsed files (protobuf first): each field from the first file
    that has it, as MVT merges them."""
    out: dict[str, object] = {}
    for c in crashes:
        for key, value in msgspec.structs.asdict(c).items():
            if out.get(key) is None:
                out[key] = value
    return msgspec.convert(out, Crash)


def _checks(ctx: Ctx, rec: Record, crashes: list[Crash], where: str) -> None:
    """Match the names a crash goes by in all its files (the crashing thread's name, the
    first command-line word): each process name, app id and path once."""
    names: dict[str, None] = {}
    for c in crashes:
        words = c.command_line.split() if c.command_line else []
        for v in (c.process_name, c.binary_path, words[0] if words else None):
            if v:
                names.setdefault(v)
    for base in dict.fromkeys(v.rpartition("/")[2] for v in names):
        if base in ANDROID_DAEMONS:  # (MVT matches it; it is a stock daemon too)
            ctx.check("process", base, rec=rec, path=where, severity=Severity.MEDIUM,
                      what="crashed process (a name also used by a stock Android daemon)")
        else:
            ctx.check("process", base, rec=rec, path=where, what="crashed process")
    for app in dict.fromkeys(v.partition(":")[0] for v in names):
        ctx.check("app_id", app, rec=rec, path=where, what="crashed app process")
    for path in (v for v in names if v.startswith("/")):
        ctx.check("file_path", path, rec=rec, path=where, what="crashed executable")


def read_tombstones(ctx: Ctx, br: Capture) -> Result:
    """The ``tombstones`` module over a bugreport (``br``)."""
    names = sorted(n for n in br.members() if TOMBSTONE.fullmatch(n))
    if not names:
        return skipped("no tombstones")
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.removesuffix(".pb"), []).append(name)
    crashes = bad = 0
    for crash_id, files in list(groups.items())[:MAX_TOMBSTONES]:
        files.sort(key=lambda n: not n.endswith(".pb"))  # the protobuf first
        parsed: list[Crash] = []
        for name in files:
            try:
                raw = br.read(name, MAX_TOMBSTONE_BYTES) or b""
                parsed.append(parse_pb(raw) if name.endswith(".pb") else parse_text(raw))
            except (FormatError, LimitExceeded) as exc:
                bad += 1
                ctx.subject.errors.append(ErrorEntry(
                    path=br.where(name), code=exc.code,
                    message=f"tombstones: {str(exc)[:500]}"))
        if not parsed:
            continue
        crashes += 1
        c = merged(parsed)
        mtime = br.mtime(files[0])
        data: dict[str, Scalar] = {
            "file_name": files[0],
            "file_timestamp": mvt_form(mtime) if mtime else None,
            **msgspec.structs.asdict(c), "crash_id": crash_id.rpartition("/")[2],
            "source": "+".join("protobuf" if n.endswith(".pb") else "text" for n in files)}
        rec = ctx.record("tombstones", iso_any(c.timestamp),
                         f"crash of {c.process_name or c.binary_path or '?'}", data)
        where = br.where(files[0])
        if c.uid in PRIVILEGED_UIDS:
            ctx.heuristic("android-privileged-crash", "Crash of a privileged process",
                          f"{c.process_name or c.binary_path or '?'} crashed running as uid "
                          f"{c.uid} ({PRIVILEGED_UIDS[c.uid]}): exploits crash privileged "
                          "processes when they fail; look at the tombstone", rec=rec,
                          path=where, severity=Severity.MEDIUM,
                          detail={"process": c.process_name, "uid": c.uid,
                                  "file": files[0]})
        _checks(ctx, rec, parsed, where)
    more = len(groups) - MAX_TOMBSTONES
    if more > 0:
        ctx.subject.errors.append(ErrorEntry(
            path=br.where(names[0]).rpartition("/")[0] or br.path, code="limit",
            message=f"tombstones: {more} crash(es) past the first {MAX_TOMBSTONES} not read"))
    if not crashes:
        return ("error", 0, f"no tombstone could be read ({bad} file(s))")
    return ok(crashes, f"{bad} tombstone file(s) unreadable" if bad else "")
