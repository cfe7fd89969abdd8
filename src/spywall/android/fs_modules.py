"""Modules over the file system state a capture records: the mount table (androidqf's
``mounts.json``; a bugreport's ``FS/proc/<pid>/mountinfo``), and the modification times
of the files a capture holds (a bugreport's ``FS/`` tree, androidqf's ``logs/``), for the
timeline, as MVT's ``bugreport_timestamps`` and ``aqf_log_timestamps`` give them.

File times: a zip stores each member's time as the local time of the device that wrote
it, without a zone; it is kept as written (``YYYY-MM-DDThh:mm:ss``). A folder's file times
are the file system's, in UTC. The record's ``event`` is MVT's MACB column: ``M---`` (only
the modification time is known).

Heuristics, as MVT raises them, at MVT's levels:
- ``android-system-rw-mount`` (high): a system partition (``/system``, ``/vendor``,
  ``/product``, ``/system_ext`` and below) mounted read-write: the phone is rooted or
  its system was modified.
- ``android-suspicious-mount-options`` (medium): a system partition mounted ``remount``,
  ``noatime`` or ``nodiratime`` (noatime is normal on ``/system_ext``, ``/product``,
  ``/vendor``, ``/system_dlkm``, ``/vendor_dlkm``). MVT also lists ``rw`` here; a
  read-write mount is the first rule's alone, so that one mount gives one alert.
Mount points and devices are matched as file-path indicators.
"""

from __future__ import annotations

import re

from spywall.android import mounts as mt
from spywall.android.bugreport_modules import bugreport
from spywall.android.capture import Capture
from spywall.android.common import Ctx, Result, mvt_form, ok, read_qf, skipped
from spywall.device.base import FnModule, SchemaUnknown
from spywall.errors import FormatError
from spywall.report import Scalar, Severity

_MOUNTINFO = re.compile(r"FS/proc/(\d{1,10})/mountinfo")
MAX_MOUNTINFO = 4096
MAX_MOUNTINFO_BYTES = 4 * 1024 * 1024

Identity = tuple[str | None, str | None, str, str, str, str]


def _qf_mounts(cap: Capture) -> tuple[str, list[mt.Mount], int] | None:
    """androidqf's mount table: (member, mounts, lines skipped), None if it has none."""
    got = read_qf(cap, "mounts.json") if cap.kind == "androidqf" else None
    if got is None:
        return None
    name, doc = got
    if isinstance(doc, dict):  # a version that wraps the list
        doc = next((v for v in doc.values() if isinstance(v, list)), None)
    if not isinstance(doc, list):
        raise SchemaUnknown(f"{name}: expected a JSON list of mount lines")
    lines, bad = mt.mount_lines([x for x in doc if isinstance(x, str)])
    return name, lines, bad + sum(1 for x in doc if not isinstance(x, str))


def _mountinfo(
    ctx: Ctx,
) -> tuple[Capture, dict[Identity, tuple[mt.Mount, list[str], str]], int] | None:
    """The bugreport's mount namespaces, one entry per distinct mount (with the pids
    that see it and the first file that shows it), and the lines skipped."""
    br = bugreport(ctx.evidence)
    if br is None:
        return None
    names = [(n, hit.group(1)) for n in br.members() if (hit := _MOUNTINFO.fullmatch(n))][
        :MAX_MOUNTINFO
    ]
    if not names:
        return None
    unique: dict[Identity, tuple[mt.Mount, list[str], str]] = {}
    bad = 0
    for name, pid in names:
        data = br.read(name, MAX_MOUNTINFO_BYTES) or b""
        got, skipped_lines = mt.mountinfo(data.decode("utf-8", "replace"))
        bad += skipped_lines
        for m in got:
            key = (
                m.major_minor,
                m.root,
                m.mount_point,
                m.device,
                m.filesystem_type,
                m.mount_options,
            )
            if key in unique:
                unique[key][1].append(pid)
            else:
                unique[key] = (m, [pid], br.where(name))
    return br, unique, bad


def _judge(ctx: Ctx, m: mt.Mount, where: str, extra: dict[str, Scalar]) -> None:
    ctx.evidence.budget.charge_elements()
    data: dict[str, Scalar] = {
        "device": m.device,
        "mount_point": m.mount_point,
        "filesystem_type": m.filesystem_type,
        "mount_options": m.mount_options,
        "is_system_partition": m.is_system_partition,
        "is_read_write": m.is_read_write,
        **extra,
    }
    rec = ctx.record("mounts", None, f"mount {m.mount_point}", data)
    if m.is_system_partition and m.is_read_write:
        what = (
            "the /system partition is mounted read-write: a sign of root"
            if m.mount_point == "/system"
            else f"the system partition {m.mount_point} "
            "is mounted read-write: a sign of system modifications"
        )
        ctx.heuristic(
            "android-system-rw-mount",
            "System partition mounted read-write",
            f"{what} ({m.device}, {m.mount_options})",
            rec=rec,
            path=where,
            severity=Severity.HIGH,
            detail={"mount_point": m.mount_point},
        )
    odd = [o for o in m.suspicious_options() if o != "rw"]
    if odd:
        ctx.heuristic(
            "android-suspicious-mount-options",
            "Suspicious system mount options",
            f"suspicious mount options for {m.mount_point}: {', '.join(odd)}",
            rec=rec,
            path=where,
            severity=Severity.MEDIUM,
            detail={"mount_point": m.mount_point, "options": ",".join(odd)},
        )
    ctx.check("file_path", m.mount_point, rec=rec, path=where, what="mount point")
    ctx.check("file_path", m.device, rec=rec, path=where, what="mounted device")


def mounts(ctx: Ctx) -> Result:
    """androidqf ``mounts.json`` and the bugreport's ``FS/proc/*/mountinfo``, both when
    the capture holds both."""
    cap = ctx.evidence
    qf = _qf_mounts(cap)
    n, bad = 0, 0
    notes: list[str] = []
    try:
        info = _mountinfo(ctx)
    except FormatError as exc:  # the bugreport modules report it too
        if qf is None:
            raise
        info = None
        notes.append(f"bugreport unreadable: {exc}")
    if qf is None and info is None:
        return skipped("no mounts.json or FS/proc/*/mountinfo")
    if qf is not None:
        name, got, bad = qf
        for m in got:
            _judge(ctx, m, cap.where(name), {"source": name})
        n += len(got)
        notes.append(f"{len(got)} mount(s) in {name}")
    if info is not None:
        _, unique, skipped_lines = info
        bad += skipped_lines
        for m, pids, where in unique.values():
            _judge(
                ctx,
                m,
                where,
                {
                    "major_minor": m.major_minor,
                    "root": m.root,
                    "super_options": m.super_options,
                    "process_ids": ",".join(pids),
                    "source": "mountinfo",
                },
            )
        n += len(unique)
        notes.append(f"{len(unique)} distinct mount(s) in mountinfo")
    if bad:
        notes.append(f"{bad} line(s) of another shape skipped")
    return ok(n, "; ".join(notes))


MAX_TIMESTAMPS = 200_000


def _timestamps(ctx: Ctx, cap: Capture, names: list[str], module: str) -> int:
    for name in names[:MAX_TIMESTAMPS]:
        cap.budget.charge_elements()
        ts = cap.mtime(name)
        ctx.record(
            module, ts, "M---", {"path": name, "modified_time": mvt_form(ts) if ts else None}
        )
    return min(len(names), MAX_TIMESTAMPS)


def bugreport_timestamps(ctx: Ctx) -> Result:
    br = bugreport(ctx.evidence)
    names = [n for n in br.members() if n.startswith("FS/")] if br is not None else []
    if br is None or not names:
        return skipped("no FS/ folder in a bugreport")
    return ok(_timestamps(ctx, br, names, "bugreport_timestamps"))


def log_timestamps(ctx: Ctx) -> Result:
    cap = ctx.evidence
    names = (
        [n for n in cap.members() if n.startswith("logs/") or "/logs/" in n]
        if cap.kind == "androidqf"
        else []
    )
    if not names:
        return skipped("no logs/ folder in an androidqf capture")
    return ok(_timestamps(ctx, cap, names, "log_timestamps"))


FS_MODULES: tuple[FnModule[Capture], ...] = (
    FnModule(
        "mounts",
        "androidqf mounts.json (or mounts.pb), bugreport FS/proc/*/mountinfo: system "
        "partitions mounted read-write or with odd options; paths",
        mounts,
    ),
    FnModule(
        "bugreport_timestamps",
        "bugreport FS/ tree: file modification times for the timeline",
        bugreport_timestamps,
    ),
    FnModule(
        "log_timestamps",
        "androidqf logs/ folder: file modification times for the timeline",
        log_timestamps,
    ),
)
