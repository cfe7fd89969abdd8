"""Mount tables of an Android phone, in the three forms acquisition tools write them.

- ``mount`` output (androidqf ``mounts.json``, a JSON list of lines; ``mounts.pb``):
  ``/dev/block/dm-12 on / type ext4 (ro,seclabel,noatime)``
- ``/proc/mounts`` lines: ``/dev/block/dm-4 /system_ext ext4 ro,seclabel,noatime 0 0``
- ``/proc/<pid>/mountinfo`` (a bugreport's ``FS/proc/<pid>/mountinfo``, proc(5)):
  ``36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue``;
  fields 1-6, optional ``tag[:value]`` fields up to ``-``, then type, source, super
  options. Paths escape space, tab, newline and backslash as ``\\ooo``.

Lines of another shape are counted as skipped, never an error: a truncated last line is
what a dump cut short looks like.
"""

from __future__ import annotations

import re

import msgspec

MAX_MOUNTS = 100_000
MAX_LINE = 8192
# MVT's lists: system partitions, options that are suspicious on them, and the
# partitions that are mounted noatime on stock phones.
SYSTEM_MOUNT_POINTS = ("/system", "/vendor", "/product", "/system_ext")
SUSPICIOUS_OPTIONS = ("rw", "remount", "noatime", "nodiratime")
NOATIME_ALLOWED = frozenset({"/system_dlkm", "/system_ext", "/product", "/vendor", "/vendor_dlkm"})
_OCTAL = re.compile(r"\\([0-7]{3})")


class Mount(msgspec.Struct):
    device: str
    mount_point: str
    filesystem_type: str
    mount_options: str
    major_minor: str | None = None
    root: str | None = None
    super_options: str | None = None

    @property
    def options(self) -> list[str]:
        return [o.strip() for o in self.mount_options.split(",") if o.strip()]

    @property
    def is_system_partition(self) -> bool:
        return any(self.mount_point.startswith(p) for p in SYSTEM_MOUNT_POINTS)

    @property
    def is_read_write(self) -> bool:
        return "rw" in self.options

    def suspicious_options(self) -> list[str]:
        """MVT's suspicious options on a system partition (noatime is normal on the
        partitions of ``NOATIME_ALLOWED``); ``[]`` elsewhere."""
        if not self.is_system_partition:
            return []
        if "noatime" in self.mount_options and self.mount_point in NOATIME_ALLOWED:
            return []
        return [o for o in self.options if o in SUSPICIOUS_OPTIONS]


def _unescape(path: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), path)


def mount_line(line: str) -> Mount | None:
    """One line of ``mount`` output or of ``/proc/mounts``; None for another shape."""
    line = line.strip()
    if not line or len(line) > MAX_LINE:
        return None
    if " on " in line and " type " in line:
        device, _, rest = line.partition(" on ")
        point, _, fs = rest.rpartition(" type ")
        fs = fs.strip()
        options = ""
        if fs.endswith(")") and "(" in fs:
            fs, _, options = fs[:-1].partition("(")
        device, point, fs = device.strip(), point.strip(), fs.strip()
        if not (device and point and fs) or " " in fs:
            return None
        return Mount(device, point, fs, options.strip())
    cols = line.split()
    if len(cols) in (4, 6) and cols[1].startswith("/"):
        return Mount(_unescape(cols[0]), _unescape(cols[1]), cols[2], cols[3])
    return None


def mount_lines(lines: list[str]) -> tuple[list[Mount], int]:
    """(mounts, lines skipped) of ``mount`` output or ``/proc/mounts`` lines."""
    out: list[Mount] = []
    bad = 0
    for line in lines[:MAX_MOUNTS]:
        got = mount_line(line)
        if got is not None:
            out.append(got)
        elif line.strip():
            bad += 1
    return out, bad


def mountinfo(text: str) -> tuple[list[Mount], int]:
    """(mounts, lines skipped) of a ``/proc/<pid>/mountinfo`` text."""
    out: list[Mount] = []
    bad = 0
    for line in text.splitlines()[:MAX_MOUNTS]:
        cols = line.split()
        if not cols:
            continue
        try:
            sep = cols.index("-", 6)
        except ValueError:
            bad += 1
            continue
        if len(cols) < sep + 3 or not cols[0].isdigit() or ":" not in cols[2]:
            bad += 1
            continue
        super_opts = cols[sep + 3] if len(cols) > sep + 3 else ""
        out.append(
            Mount(
                _unescape(cols[sep + 2]),
                _unescape(cols[4]),
                cols[sep + 1],
                cols[5],
                cols[2],
                _unescape(cols[3]),
                super_opts,
            )
        )
    return out, bad
