"""Modules over androidqf artifacts. Each reads one artifact, records what it saw and
matches it against the indicators; a missing artifact is ``skipped``."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from spywall.android import apk, backup, qf
from spywall.android.capture import Capture
from spywall.android.common import (
    Ctx,
    Result,
    disabled_check,
    iso_any,
    mvt_form,
    ok,
    package_checks,
    process_checks,
    property_checks,
    read_json,
    read_qf,
    read_text,
    setting_check,
    skipped,
)
from spywall.android.dumpstate import key_values, properties
from spywall.device.base import FnModule, Record
from spywall.report import Severity


def packages(ctx: Ctx) -> Result:
    cap = ctx.evidence
    got = read_qf(cap, "packages.json")
    if got is None:
        return skipped("no packages.json or packages.pb")
    where = cap.where(got[0])
    pkgs = qf.packages(got[1])
    for p in pkgs:
        cap.budget.charge_elements()
        rec = ctx.record("packages", iso_any(p.timestamp), f"package {p.name}",
                         {"name": p.name, "installer": p.installer or "null", "uid": p.uid,
                          "disabled": p.disabled, "system": p.system,
                          "third_party": p.third_party, "files": len(p.files)})
        package_checks(ctx, rec, p.name, p.installer, p.system, where)
        if p.disabled:
            disabled_check(ctx, rec, p.name, where)
        for f in p.files:
            what = f"APK of {p.name} ({f.path or 'unknown path'})"
            for h in f.hashes.values():
                ctx.check("hash", h, rec=rec, path=where, what=what)
            for c in f.cert_hashes:
                ctx.check("app_cert", c, rec=rec, path=where,
                          what=f"signing certificate of {p.name}")
            if f.path:
                ctx.check("file_path", f.path, rec=rec, path=where, what=what)
    return ok(len(pkgs))


def processes(ctx: Ctx) -> Result:
    cap = ctx.evidence
    name = cap.first("processes.json", "ps.txt")
    if name is None:
        return skipped("no processes.json or ps.txt")
    if name == "ps.txt":
        procs = qf.ps_text(read_text(cap, name) or "")
    else:
        procs = qf.processes_json(read_json(cap, name))
    where = cap.where(name)
    for p in procs:
        cap.budget.charge_elements()
        kernel = p.kernel_thread or (p.name.startswith("[") and p.name.endswith("]"))
        name = p.name[1:-1] if kernel and p.name.startswith("[") else p.name
        rec = ctx.record("processes", None, f"process {name}",
                         {"user": p.user, "pid": p.pid, **p.fields, "proc_name": name,
                          "cmdline": p.cmdline, "kernel_thread": kernel})
        process_checks(ctx, rec, name, where)
    return ok(len(procs))


def getprop(ctx: Ctx) -> Result:
    cap = ctx.evidence
    text = read_text(cap, "getprop.txt")
    if text is None:
        return skipped("no getprop.txt")
    props = properties(text)
    cap.cache["props"] = props
    return ok(property_checks(ctx, "getprop", props, cap.where("getprop.txt")))


_SETTINGS_FILE = re.compile(r"settings_([a-z0-9_]{1,32})\.txt")


def settings(ctx: Ctx) -> Result:
    """Every ``settings_<namespace>.txt`` of the capture (global, secure, system and any
    other namespace androidqf writes): each setting recorded, the dangerous ones flagged."""
    cap = ctx.evidence
    names = sorted(n for n in cap.members() if _SETTINGS_FILE.fullmatch(n))
    if not names:
        return skipped("no settings_*.txt")
    n = 0
    for name in names:
        m = _SETTINGS_FILE.fullmatch(name)
        ns = m.group(1) if m else name
        text = read_text(cap, name) or ""
        for key, value in key_values(text):
            n += 1
            rec = ctx.record("settings", None, f"setting {ns}/{key}",
                             {"namespace": ns, "name": key, "value": value})
            setting_check(ctx, rec, ns, key, value, cap.where(name))
    return ok(n, f"{len(names)} settings file(s)")


TMP_DIR = "/data/local/tmp/"
# androidqf's own collector, pushed there for the acquisition (MVT skips it too)
COLLECTOR = "/data/local/tmp/collector"
FILE_TIMES = ("access_time", "changed_time", "modified_time")


def _mode_bits(mode: str) -> int | None:
    """A numeric mode: octal permission digits (``0755``, ``4755`` as find's ``%m`` and
    files.pb write them) or a decimal ``st_mode`` (``33261``)."""
    if not mode.isdigit() or len(mode) > 7:
        return None
    if mode.startswith("0") or len(mode) <= 4:
        return int(mode, 8) if set(mode) <= set("01234567") else None
    return int(mode)


# A mode as text: Go's ``FileMode.String()`` (androidqf's collector: type and set-id
# letters before the nine permission letters, ``urwxr-xr-x`` for a set-user-ID file,
# ``Lrwxrwxrwx`` for a link) or ls's (``-rwsr-xr-x``, ``lrwxrwxrwx``).
_MODE_TEXT = re.compile(r"([-dalTLDpSugct?bs]{0,13})([r-][w-][xsS-][r-][w-][xsS-][r-][w-][xtT-])")
_OTHER = frozenset("DpScb?s")  # devices, pipes, sockets, irregular files


def file_mode(mode: str | None) -> tuple[str, int] | None:
    """(``file``, ``dir``, ``link`` or ``other``; permission bits with set-user-ID 0o4000,
    set-group-ID 0o2000 and sticky 0o1000) of a files.json mode, None when unreadable."""
    if not mode:
        return None
    if mode.isdigit():
        bits = _mode_bits(mode)
        if bits is None:
            return None
        kind = {0: "file", 0o100000: "file", 0o040000: "dir",
                0o120000: "link"}.get(bits & 0o170000, "other")
        return kind, bits & 0o7777
    m = _MODE_TEXT.fullmatch(mode)
    if m is None:
        return None
    head, perms = m.groups()
    bits = sum(1 << (8 - i) for i, c in enumerate(perms) if c not in "-ST")
    bits |= (0o4000 if "u" in head or perms[2] in "sS" else 0) | (
        0o2000 if "g" in head or perms[5] in "sS" else 0) | (
        0o1000 if "t" in head or perms[8] in "tT" else 0)
    kind = ("dir" if "d" in head else "link" if "L" in head or "l" in head
            else "other" if _OTHER & set(head) else "file")
    return kind, bits


def _executable(mode: str | None) -> bool:
    got = file_mode(mode)
    return got is not None and got[0] == "file" and got[1] & 0o111 != 0


def _directory(mode: str | None) -> bool:
    got = file_mode(mode)
    return got is not None and got[0] == "dir"


def _setid_check(ctx: Ctx, rec: Record, f: qf.FileEntry, where: str) -> None:
    """A set-user-ID or set-group-ID file: Android has shipped none since 4.3 (its
    privileged helpers use capabilities), so one is left by rooting tools or exploits."""
    got = file_mode(f.mode)
    if got is None or got[0] != "file" or not got[1] & 0o6000:
        return
    which = "set-user-ID" if got[1] & 0o4000 else "set-group-ID"
    ctx.heuristic("android-setuid-file", "Set-user-ID file",
                  f"{f.path} is {which} ({f.mode}): Android ships no such programs; "
                  "rooting tools and exploits leave them to regain root", rec=rec,
                  path=where, severity=Severity.MEDIUM,
                  detail={"file": f.path, "mode": f.mode})


def _tmp_check(ctx: Ctx, rec: Record, f: qf.FileEntry, where: str) -> None:
    """MVT's suspicious path: a file in /data/local/tmp, where adb users, exploits and
    implants stage files (high, as MVT raises it, executable or not)."""
    if not f.path.startswith(TMP_DIR) or f.path == COLLECTOR or _directory(f.mode):
        return
    if _executable(f.mode):
        ctx.heuristic("android-tmp-executable", "Executable in a temporary folder",
                      f"{f.path} is executable in /data/local/tmp, where exploits and "
                      "implants are often staged", rec=rec, path=where,
                      severity=Severity.HIGH, detail={"file": f.path})
    else:
        ctx.heuristic("android-tmp-file", "File in a temporary folder",
                      f"{f.path} is in /data/local/tmp, where exploits and implants are "
                      "staged (and adb users leave files)", rec=rec, path=where,
                      severity=Severity.HIGH, detail={"file": f.path})


def file_time(value: object) -> str | None:
    """A files.json time (unix seconds, as androidqf's collector writes them) in MVT's
    form, None when it holds none. MVT takes any number ``datetime`` can hold, 0 (the
    epoch) included: so does this, beyond the plausible years ``iso_any`` reads."""
    when = iso_any(value)
    if when:
        return mvt_form(when)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    except (OverflowError, ValueError, OSError):  # (NaN, a year past 9999)
        return None


def files(ctx: Ctx) -> Result:
    cap = ctx.evidence
    got = read_qf(cap, "files.json")
    if got is None:
        return skipped("no files.json or files.pb")
    where = cap.where(got[0])
    entries = qf.files(got[1])
    for f in entries:
        cap.budget.charge_elements()
        fields = dict(f.fields)
        for key in FILE_TIMES:  # MVT's form of each time (the timeline's rows: a row
            # a distinct one, ``device.timeline.MACB``)
            raw = f.modified if key == "modified_time" else fields.get(key)
            fields[key] = file_time(raw) or raw
        rec = ctx.record("files", iso_any(f.modified), f"file {f.path}",
                         {"path": f.path, "size": f.size, "mode": f.mode, **fields,
                          **f.hashes})
        ctx.check("file_path", f.path, rec=rec, path=where, what="file on the phone")
        ctx.check("file_name", f.path.rpartition("/")[2], rec=rec, path=where,
                  what="file name on the phone")
        for h in f.hashes.values():
            ctx.check("hash", h, rec=rec, path=where, what=f"file {f.path}")
        _tmp_check(ctx, rec, f, where)
        _setid_check(ctx, rec, f, where)
    return ok(len(entries))


def root_binaries(ctx: Ctx) -> Result:
    cap = ctx.evidence
    got = read_qf(cap, "root_binaries.json")
    if got is None:
        return skipped("no root_binaries.json or root_binaries.pb")
    found = qf.root_binaries(got[1])
    for b in found:
        rec = ctx.record("root_binaries", None, f"root binary {b}", {"path": b})
        ctx.heuristic("android-root-binary", "Root binary present",
                      f"{b} was found: the phone is (or was) rooted", rec=rec,
                      path=cap.where(got[0]), severity=Severity.HIGH,
                      detail={"binary": b})
    return ok(len(found))


def apks(ctx: Ctx) -> Result:
    """APK files collected in the capture: file hashes and signing certificates."""
    cap = ctx.evidence
    names = [n for n in cap.members() if n.lower().endswith(".apk")]
    if not names:
        return skipped("no APK files in the capture")
    for name in names:
        data = cap.read(name) or b""
        digests = {"sha256": hashlib.sha256(data).hexdigest(),
                   "sha1": hashlib.sha1(data).hexdigest(),  # noqa: S324 (indicator form)
                   "md5": hashlib.md5(data).hexdigest()}  # noqa: S324
        certs = apk.certificate_hashes(data)
        rec = ctx.record("apks", None, f"apk {name}", {"file": name, "size": len(data),
                                                      "certificates": ",".join(certs),
                                                      **digests})
        for h in digests.values():
            ctx.check("hash", h, rec=rec, path=cap.where(name), what=f"APK file {name}")
        for c in certs:
            ctx.check("app_cert", c, rec=rec, path=cap.where(name),
                      what=f"signing certificate of {name}")
    return ok(len(names))


def sms(ctx: Ctx) -> Result:
    """Links in the SMS / MMS of androidqf's backup.ab (or of an ``adb backup`` file)."""
    cap = ctx.evidence
    name = cap.members()[0] if cap.kind == "backup" else "backup.ab"
    data = cap.read(name)
    if data is None:
        return skipped("no backup.ab")
    if not data:  # androidqf leaves it empty when the backup is declined on the phone
        return skipped(f"{name} is empty: no backup was made (declined on the phone?)")
    try:
        messages = backup.sms(data, cap.budget, cap.password)
    except backup.EncryptedBackup as exc:  # unreadable without its password: an error
        return ("error", 0, str(exc))
    where = cap.where(name)
    for m in messages:
        links = backup.urls(m.body)
        when = iso_any(m.date)
        rec = ctx.record("sms", when, f"{m.kind} from {m.address or '?'}",
                         {**m.fields, "address": m.address, "body": m.body[:2000],
                          "isodate": mvt_form(when) if when else None,
                          "direction": m.direction,
                          "links": " ".join(links)})
        for link in links:
            ctx.check("url", link, rec=rec, path=where, what=f"link in an {m.kind.upper()}")
    return ok(len(messages))


QF_MODULES: tuple[FnModule[Capture], ...] = (
    FnModule("packages", "androidqf packages.json (or packages.pb): app ids, APK hashes and "
             "certificates; root apps, sideloaded apps, apps from third-party stores "
             "(information), disabled security and update apps", packages),
    FnModule("processes", "androidqf ps.txt / processes.json: process names", processes),
    FnModule("getprop", "androidqf getprop.txt: system properties", getprop),
    FnModule("settings", "androidqf settings_*.txt: weakened protection settings", settings),
    FnModule("files", "androidqf files.json (or files.pb): file paths, names and hashes; "
             "files in /data/local/tmp, set-user-ID files", files),
    FnModule("root_binaries", "androidqf root_binaries.json (or .pb): su, magisk...",
             root_binaries),
    FnModule("apks", "APK files in the capture: hashes and signing certificates", apks),
    FnModule("sms", "androidqf backup.ab: links in SMS and MMS", sms),
)
