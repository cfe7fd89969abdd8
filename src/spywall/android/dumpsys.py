"""Parsers for more ``dumpsys`` sections of a bugreport (or androidqf's dumpsys.txt), in the
layouts Android prints them; each takes the section body (``dumpstate.section``) and is
bounded by ``MAX_RECORDS``.

- ``appops``: ``  Uid <uid>:`` / ``    Package <name>:`` / ``      <OP> (<mode>):`` then
  ``          Access: [<flags>]<YYYY-MM-DD hh:mm:ss.mmm> (...)`` or ``Reject:`` lines.
- ``resolver``: a resolver table of the package dump (``Receiver Resolver Table:`` or
  ``Activity Resolver Table:``), its ``  Non-Data Actions:`` part: an action line at six
  spaces ending in ``:``, then components at eight (``<hash> <pkg>/<class> filter <id>``).
- ``platform_compat``: the ``ChangeId(168419799; name=DOWNSCALED; ...)`` line's
  ``rawOverrides={pkg=..., pkg=...}``: packages the system still remembers, installed
  or not.
- ``dbinfo``: ``Connection pool for <path>:`` then ``Most recently executed operations:``
  lines ``[<time>] [Pid:(<pid>)]<operation> ... sql="..."``.
- ``adb_keys``: the trusted adb hosts of ``debugging_manager`` (the keystore's
  ``adbKey`` entries with their last connection, and the ``user_keys=`` lines: base64
  RSA key and ``user@host``), fingerprinted as adb shows them (MD5, colon pairs).
- ``battery_history`` / ``battery_daily``: package events of the battery history
  (``pkginst=``, ``pkgunin=``, ``+job=`` / ``-job=``, ``+top=`` / ``-top=``, ``*walarm*``
  wake locks) and the daily stats' ``Update <pkg> vers=<n>`` lines by period.
- ``processes``: ``ps -A`` style output (the dumpstate ``PROCESSES AND THREADS``
  section); kernel threads are printed in brackets (``[kworker/0:1]``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

import msgspec

from spywall.android import ps
from spywall.report import Scalar

MAX_RECORDS = 500_000


class AppOpEntry(msgspec.Struct, frozen=True):
    access: str  # Access | Reject
    flags: str
    time: str | None  # "YYYY-MM-DD hh:mm:ss.mmm" (device local time)


class AppOp(msgspec.Struct):
    package: str
    uid: str
    op: str
    mode: str
    entries: list[AppOpEntry] = msgspec.field(default_factory=list)


_UID = re.compile(r"^  Uid ([^:\s]{1,64}):\s*$")
_PKG = re.compile(r"^    Package ([A-Za-z0-9_.]{1,256}):\s*$")
_OP = re.compile(r"^      ([A-Z][A-Z0-9_]{1,80})(?: \(([^)\n]{0,200})\))?:?\s*$")
_ACCESS = re.compile(r"^ {8,}(Access|Reject): \[([^\]\n]{0,40})\]"
                     r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?)?")


def appops(body: str) -> list[AppOp]:
    out: list[AppOp] = []
    uid = ""
    package: str | None = None
    op: AppOp | None = None
    for line in body.splitlines():
        if (m := _UID.match(line)) is not None:
            uid, package, op = m.group(1), None, None
        elif (m := _PKG.match(line)) is not None:
            package, op = m.group(1), None
        elif package is not None and (m := _OP.match(line)) is not None:
            mode = (m.group(2) or "").split(" / ")[0].strip()
            op = AppOp(package, uid, m.group(1), mode)
            out.append(op)
            if len(out) >= MAX_RECORDS:
                break
        elif (op is not None and len(op.entries) < 1000
              and (m := _ACCESS.match(line)) is not None):
            op.entries.append(AppOpEntry(m.group(1), m.group(2), m.group(3)))
    return out


class Component(msgspec.Struct, frozen=True):
    action: str
    package: str
    component: str


_ACTION = re.compile(r"^ {6}(\S[^\n]{0,300}):\s*$")
_COMPONENT_LINE = re.compile(r"^ {8,}[0-9a-f]{1,16} ([A-Za-z0-9_.]{1,256})/(\S{1,512})")


def resolver(body: str, table: str) -> list[Component] | None:
    """Components of the ``Non-Data Actions`` of ``table`` (``Receiver`` or ``Activity``
    resolver table); None when the table is absent."""
    start = body.find(f"{table} Resolver Table:")
    if start < 0:
        return None
    out: list[Component] = []
    in_actions = False
    action: str | None = None
    for line in body[start:].splitlines()[1:]:
        if not in_actions:
            in_actions = line.startswith("  Non-Data Actions:")
            if not in_actions and line and not line.startswith(" "):
                break  # the table ended without such a part
            continue
        if not line.startswith(" " * 6):
            break  # a blank line or the table's next part (MIME Typed Actions ...)
        if not line.startswith(" " * 8):
            m = _ACTION.match(line)
            action = m.group(1) if m is not None else None
            continue
        c = _COMPONENT_LINE.match(line)
        if action is not None and c is not None:
            out.append(Component(action, c.group(1), f"{c.group(1)}/{c.group(2)}"))
            if len(out) >= MAX_RECORDS:
                break
    return out


_DOWNSCALED = re.compile(r"ChangeId\(168419799; name=DOWNSCALED;[^\n]*?rawOverrides=\{"
                         r"([^}\n]{0,200000})\}")


def platform_compat(body: str) -> list[str]:
    m = _DOWNSCALED.search(body)
    if m is None:
        return []
    names = [e.split("=", 1)[0].strip() for e in m.group(1).split(",")]
    return [n for n in dict.fromkeys(names) if n][:MAX_RECORDS]


class DbOperation(msgspec.Struct, frozen=True):
    path: str
    time: str
    pid: str | None
    operation: str
    sql: str


_POOL = re.compile(r"^Connection pool for ([^\n]{1,4096}?):?\s*$")
_OPERATION = re.compile(r"^ {4,}\d{0,6}:? ?\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\]"
                        r"(?: \[Pid:\((\d{1,10})\)\])? ?(\w{1,64})[^\n]*?sql=\"([^\n]{0,4096}?)\"")


def dbinfo(body: str) -> list[DbOperation]:
    out: list[DbOperation] = []
    pool: str | None = None
    for line in body.splitlines():
        if (m := _POOL.match(line)) is not None:
            pool = m.group(1)
            continue
        if pool is None:
            continue
        if (m := _OPERATION.match(line)) is not None:
            out.append(DbOperation(pool, m.group(1), m.group(2), m.group(3), m.group(4)))
            if len(out) >= MAX_RECORDS:
                break
    return out


class AdbKey(msgspec.Struct, frozen=True):
    user: str
    fingerprint: str  # "" when the key is not base64 (an invalid key)
    key: str = ""  # the key as adb stores it (base64), as MVT keeps it
    last_connected: int | None = None  # milliseconds (the keystore's lastConnection)


_USER_KEYS = re.compile(r"^[ \t]*user_keys=", re.M)
_STRUCTURAL = re.compile(r"[ \t]*[A-Za-z_][A-Za-z0-9_]*=")
_ADB_KEY_TAG = re.compile(r"<adbKey\b([^<>]{0,20000})>")
_ATTR = re.compile(r'\b(key|lastConnection)="([^"]{0,10000})"')
_KEYSTORE = re.compile(r"^[ \t]*keystore=[ \t]*", re.M)
# An adb key recovered from a binary (ABX) keystore: a run of 300 or more base64
# characters (a host key is about 700), then its `` user@host``, as MVT recovers them.
_ABX_KEY = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{300,}={0,2}(?: [A-Za-z0-9_.@-]{1,256})?")
_VALUE_END = re.compile(r"\n[ \t]*\n|\n[ \t]*[A-Za-z_][A-Za-z0-9_]*=")
MAX_ABX = 1 << 20


def adb_keys(body: str) -> list[AdbKey] | None:
    """Trusted adb host keys of ``debugging_manager`` (None without one): the keystore's
    ``<adbKey key="<base64> user@host" lastConnection="<ms>"/>`` entries (XML; Android
    11+; in binary XML, ``_abx_keys``), then the ``user_keys=`` lines (one key a line,
    up to a blank line or the next ``name=`` field) not already there, as MVT merges
    them; a key that is not base64 is kept with no fingerprint (MVT flags it)."""
    at = body.find("debugging_manager=")
    if at < 0:
        return None
    out: dict[str, AdbKey] = {}

    def add(text: str, last: int | None) -> None:
        token, _, user = text.strip().partition(" ")
        if token and token not in out and len(out) < 1000:
            out[token] = AdbKey(user.strip(), adb_fingerprint(token) or "", token, last)

    for tag in _ADB_KEY_TAG.finditer(body, at):
        attrs = {m.group(1): m.group(2) for m in _ATTR.finditer(tag.group(1))}
        last = attrs.get("lastConnection", "")
        add(attrs.get("key", ""), int(last) if last.isdigit() and len(last) < 19 else None)
    for key in _abx_keys(body, at):
        add(key, None)
    m = _USER_KEYS.search(body, at)
    if m is not None:
        first = True
        for line in body[m.end():].splitlines():
            if not line.strip() or (not first and _STRUCTURAL.match(line)):
                break
            first = False
            add(line, None)
    return list(out.values())


def _abx_keys(body: str, at: int) -> list[str]:
    """The ``<base64> user@host`` keys of a ``keystore=`` value in Android's binary XML
    (ABX, ``ABX\\0`` first: newer builds write adb_temp_keys.xml so), up to the value's
    end (a blank line or the next ``name=`` field; read within ``MAX_ABX`` characters).
    Dumped as text, its binary tokens are not what the file held (the dump's bytes were
    replaced where not UTF-8), so its structure is not read: the keys are recovered as
    MVT recovers them, runs of 300 or more base64 characters that decode, each with the
    ``user@host`` after it; their last connection (a binary long) is not known."""
    m = _KEYSTORE.search(body, at)
    if m is None or not body.startswith("ABX\0", m.end()):
        return []
    region = body[m.end():m.end() + MAX_ABX]
    end = _VALUE_END.search(region)
    region = region[:end.start()] if end else region
    out: list[str] = []
    for k in _ABX_KEY.finditer(region):
        token = k.group().partition(" ")[0]
        if adb_fingerprint(token) is not None:
            out.append(k.group())
    return out


def adb_fingerprint(key: str) -> str | None:
    """adb's fingerprint of a host key (its base64 text): the MD5 of the decoded key in
    colon-separated upper-case hex; None when the text is not base64."""
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        return None
    digest = hashlib.md5(raw).hexdigest().upper()  # noqa: S324 (adb's fingerprint)
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


class BatteryEvent(msgspec.Struct, frozen=True):
    event: str  # install, uninstall, start_job, end_job, start_top, end_top, wake
    package: str
    uid: str
    elapsed: str
    service: str = ""  # a job's or alarm's component (``pkg/.Service``), as MVT keeps it


_HISTORY_EVENTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("install", re.compile(r"pkginst=(\d{1,10}):\"([A-Za-z][\w.]{0,255})\"")),
    ("uninstall", re.compile(r"pkgunin=(\d{1,10}):\"([A-Za-z][\w.]{0,255})\"")),
    ("start_job", re.compile(r"\+job=(\w{1,16}):\"(([A-Za-z][\w.]{0,255})/[^\"]{0,512})")),
    ("end_job", re.compile(r"-job=(\w{1,16}):\"(([A-Za-z][\w.]{0,255})/[^\"]{0,512})")),
    ("start_top", re.compile(r"\+top=(\w{1,16}):\"([A-Za-z][\w.]{0,255})\"")),
    ("end_top", re.compile(r"-top=(\w{1,16}):\"([A-Za-z][\w.]{0,255})\"")),
    ("wake", re.compile(r"\+wake_lock=(\w{1,16}):\"\*walarm\*:(([A-Za-z][\w.]{0,255})/"
                        r"[^\"]{0,512})")),
)


def battery_history(body: str) -> list[BatteryEvent]:
    out: list[BatteryEvent] = []
    for line in body.splitlines():
        if "=" not in line:
            continue
        elapsed = line.strip().split(" ", 1)[0]
        for event, rx in _HISTORY_EVENTS:
            out.extend(BatteryEvent(event, m.group(3), m.group(1), elapsed, m.group(2))
                       if rx.groups == 3 else BatteryEvent(event, m.group(2), m.group(1), elapsed)
                       for m in rx.finditer(line))
        if len(out) >= MAX_RECORDS:
            break
    return out[:MAX_RECORDS]


class DailyUpdate(msgspec.Struct, frozen=True):
    package: str
    version: int
    period_start: str  # "YYYY-MM-DD hh:mm:ss" (device local time)
    action: str = "update"  # update | uninstall | downgrade
    previous: int | None = None


_DAILY = re.compile(r"^  Daily from (\d{4}-\d\d-\d\d)-(\d\d)-(\d\d)-(\d\d) to ")
_UPDATE = re.compile(r"^\s+Update ([A-Za-z][\w.]{0,255}) vers=(\d{1,19})\s*$")


def battery_daily(body: str) -> list[DailyUpdate]:
    """Daily ``Update`` lines, oldest period first as they follow each other, each marked
    ``uninstall`` (version 0) or ``downgrade`` (lower than the one seen before)."""
    rows: list[tuple[str, str, int]] = []
    period: str | None = None
    for line in body.splitlines():
        if (m := _DAILY.match(line)) is not None:
            period = f"{m.group(1)} {m.group(2)}:{m.group(3)}:{m.group(4)}"
        elif period is not None and (u := _UPDATE.match(line)) is not None:
            rows.append((period, u.group(1), int(u.group(2))))
            if len(rows) >= MAX_RECORDS:
                break
    out: list[DailyUpdate] = []
    seen: dict[str, int] = {}
    for period, pkg, vers in sorted(dict.fromkeys(rows)):
        if vers == 0:
            out.append(DailyUpdate(pkg, 0, period, "uninstall"))
            seen.pop(pkg, None)
            continue
        before = seen.get(pkg)
        action = "downgrade" if before is not None and vers < before else "update"
        out.append(DailyUpdate(pkg, vers, period, action, before if action != "update"
                               else None))
        seen[pkg] = vers
    return out


class Proc(msgspec.Struct, frozen=True):
    pid: str
    user: str | None
    name: str
    kernel_thread: bool
    fields: dict[str, Scalar] = msgspec.field(default_factory=dict)  # MVT's names


_PROCESSES_HEADER = re.compile(r"^------ PROCESSES AND THREADS[^\n]*$", re.M)


def processes(text: str) -> list[Proc] | None:
    """The processes of a ``ps -A`` style table (``android.ps``) whose header is in the
    first 50 lines; None when there is none. Kernel threads lose their brackets."""
    lines = text.splitlines()
    head = next((i for i, line in enumerate(lines[:50]) if ps.is_header(line)), None)
    if head is None:
        return None
    rows, _ = ps.table(lines[head:])
    return [Proc(r.pid or "", r.user, r.name, r.kernel_thread, r.mvt_fields())
            for r in rows if r.pid]


def processes_section(text: str) -> str | None:
    """The body of the dumpstate ``PROCESSES AND THREADS`` section."""
    m = _PROCESSES_HEADER.search(text)
    if m is None:
        return None
    end = text.find("\n------ ", m.end())
    return text[m.end() + 1:end if end >= 0 else len(text)]
