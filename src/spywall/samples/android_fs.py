"""File system state of a generated Android capture, as phones and tools write it.

- androidqf ``mounts.json``: the lines of ``mount`` (toybox) as a JSON list:
  ``<device> on <mount point> type <fs> (<options>)``. A stock phone of the
  system-as-root era mounts ``/`` read-only from a dm-verity device, ``/system_ext``,
  ``/product`` and ``/vendor`` read-only ``noatime``, ``/data`` read-write.
- a bugreport's ``FS/proc/<pid>/mountinfo`` (dumpstate adds one per mount namespace),
  proc(5) lines ``id parent major:minor root mount-point options [tags] - fs source
  super-options``; a path with a space is written ``\\040``.
Planted: ``/system`` remounted read-write (what root tools do), ``/vendor`` with
``nodiratime``.
"""

from __future__ import annotations

import json

_STOCK = [
    ("/dev/block/dm-8", "/", "ext4", "ro,seclabel,nodev,noatime"),
    ("tmpfs", "/dev", "tmpfs", "rw,seclabel,nosuid,relatime,size=3857212k,mode=755"),
    ("proc", "/proc", "proc", "rw,relatime,gid=3009,hidepid=invisible"),
    ("/dev/block/dm-9", "/system_ext", "ext4", "ro,seclabel,nodev,noatime"),
    ("/dev/block/dm-10", "/product", "ext4", "ro,seclabel,nodev,noatime"),
    ("/dev/block/dm-11", "/vendor", "ext4", "ro,seclabel,nodev,noatime"),
    ("/dev/block/sda21", "/metadata", "ext4", "rw,sync,seclabel,nosuid,nodev,noatime"),
    ("/dev/block/dm-46", "/data", "f2fs", "rw,lazytime,seclabel,nosuid,nodev,noatime"),
    ("/dev/fuse", "/storage/emulated", "fuse", "rw,lazytime,nosuid,nodev,noexec,noatime"),
]
_PLANTED = [
    ("/dev/block/dm-8", "/system", "ext4", "rw,seclabel,relatime"),
    ("/dev/block/sda15", "/vendor/firmware_mnt", "vfat", "ro,nodiratime,context=u:r:fw"),
]


_PER_MOUNT = frozenset(
    {
        "ro",
        "rw",
        "nosuid",
        "nodev",
        "noexec",
        "noatime",
        "nodiratime",
        "relatime",
        "lazytime",
        "sync",
    }
)


def _table(planted: bool) -> list[tuple[str, str, str, str]]:
    return _STOCK + (_PLANTED if planted else [])


def mounts_json(planted: bool) -> bytes:
    return json.dumps(
        [f"{d} on {p} type {t} ({o})" for d, p, t, o in _table(planted)], indent=1
    ).encode()


def mountinfo(planted: bool, crlf: bool = False) -> bytes:
    """One namespace's mountinfo; ``crlf``: line ends as a Windows copy leaves them."""
    lines = []
    for i, (dev, point, fs, opts) in enumerate(_table(planted)):
        # per-mount flags before the separator, the file system's options after it
        flags = [o for o in opts.split(",") if o in _PER_MOUNT]
        rest = [o for o in opts.split(",") if o not in _PER_MOUNT or o in ("ro", "rw")]
        tags = "shared:1 " if point == "/" else ""
        lines.append(
            f"{20 + i} {19 if i else 1} 253:{i} / {point} {','.join(flags)} "
            f"{tags}- {fs} {dev} {','.join(rest)}"
        )
    lines.append("99 20 0:55 / /mnt/media\\040rw rw,nosuid - tmpfs tmpfs rw")
    end = "\r\n" if crlf else "\n"
    return (end.join(lines) + end).encode()
