"""Manifest.db ``Files.file`` blobs: binary NSKeyedArchiver plists of an ``MBFile``.

The archive is a plist ``{"$archiver": "NSKeyedArchiver", "$top": {"root": UID},
"$objects": [...]}``; the root object is a dictionary whose scalar fields (Birth,
LastModified, LastStatusChange as unix seconds, Mode, UserID, GroupID, Size, InodeNumber,
ProtectionClass, Flags) are stored inline and whose object fields (RelativePath, Target,
EncryptionKey) are UIDs into ``$objects``. Only the scalar fields and the presence of an
encryption key are read; nothing is followed recursively, so the cost is bounded by the
blob size cap.
"""

from __future__ import annotations

import plistlib

import msgspec

from spywall.device.base import load_plist
from spywall.errors import FormatError

MAX_BLOB = 64 * 1024
_INT_FIELDS = ("Birth", "LastModified", "LastStatusChange", "Mode", "UserID", "GroupID",
               "Size", "InodeNumber", "ProtectionClass", "Flags")


class MBFile(msgspec.Struct, frozen=True):
    birth: int | None = None
    last_modified: int | None = None
    last_status_change: int | None = None
    mode: int | None = None
    size: int | None = None
    protection_class: int | None = None
    encrypted: bool = False
    key_length: int = 0


def _int(obj: dict[object, object], key: str) -> int | None:
    v = obj.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def decode(blob: bytes | None) -> MBFile | None:
    """The MBFile fields of one blob; None for an empty blob. ``FormatError`` if malformed."""
    if not blob:
        return None
    archive = load_plist(blob, MAX_BLOB)
    if not isinstance(archive, dict):
        raise FormatError("MBFile blob is not an NSKeyedArchiver dictionary")
    objects, top = archive.get("$objects"), archive.get("$top")
    root = top.get("root") if isinstance(top, dict) else None
    if not isinstance(objects, list) or not isinstance(root, plistlib.UID):
        raise FormatError("MBFile blob lacks $objects / $top.root")
    if not 0 <= root.data < len(objects) or not isinstance(objects[root.data], dict):
        raise FormatError("MBFile root UID points outside $objects")
    obj: dict[object, object] = objects[root.data]
    ints = {k: _int(obj, k) for k in _INT_FIELDS}
    key, key_length = obj.get("EncryptionKey"), 0
    if isinstance(key, plistlib.UID) and 0 <= key.data < len(objects):
        wrapped = objects[key.data]
        data = wrapped.get("NS.data") if isinstance(wrapped, dict) else None
        key_length = len(data) if isinstance(data, bytes) else 0
    return MBFile(
        birth=ints["Birth"], last_modified=ints["LastModified"],
        last_status_change=ints["LastStatusChange"], mode=ints["Mode"], size=ints["Size"],
        protection_class=ints["ProtectionClass"],
        encrypted=isinstance(key, plistlib.UID), key_length=key_length,
    )
