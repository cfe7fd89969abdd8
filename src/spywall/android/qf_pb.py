"""androidqf's protobuf artifacts (``packages.pb``, ``files.pb``, ``root_binaries.pb``,
``mounts.pb``), read into the shapes of their JSON twins so that one parser serves both.

Each file is a stream of size-delimited proto3 messages (a varint length, then the
message), as protobuf's ``writeDelimitedTo`` writes them. The schemas (public, in the
acquisition tool and in MVT's docs):

- ``StringRecord { string value = 1; }`` (root_binaries.pb, mounts.pb)
- ``FilesRecord { string path = 1; double mtime = 2; string mode = 3; int64 size = 4;
  string user = 5; string group = 6; }``
- ``PackagesRecord { string name = 1; string installer = 2; int32 uid = 3;
  bool disabled = 4; bool system = 5; bool third_party = 6;
  repeated PackageFileRecord files = 7; }``, ``PackageFileRecord { string path = 1;
  string local_name = 2; string md5 = 3; string sha1 = 4; string sha256 = 5;
  string sha512 = 6; bool suspicious = 7; repeated PackageCertificateRecord
  certificates = 8; repeated string infiles = 9; }``,
  ``PackageCertificateRecord { string md5 = 1; string sha1 = 2; string sha256 = 3;
  string valid_from = 4; string valid_to = 5; string issuer = 6; string subject = 7;
  string signature_algorithm = 8; string serial_number = 9; }``

The reader is a bounded wire-format walk: every length is checked against what remains,
varints stop at ten bytes, counts are capped, unknown fields are skipped (a newer
version's additions), and anything else is a ``FormatError``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

from spywall.errors import FormatError, LimitExceeded

MAX_MESSAGES = 1_000_000
Fields = dict[int, list[int | bytes]]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(pos, min(pos + 10, len(data))):
        b = data[i]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i + 1
        shift += 7
    raise FormatError("protobuf: truncated or overlong varint")


def delimited(data: bytes, name: str) -> Iterator[bytes]:
    """The messages of a size-delimited stream."""
    pos = n = 0
    while pos < len(data):
        size, pos = _varint(data, pos)
        if size > len(data) - pos:
            raise FormatError(f"{name}: message {n} runs past the end of the file")
        yield data[pos : pos + size]
        pos += size
        n += 1
        if n > MAX_MESSAGES:
            raise FormatError(f"{name}: more than {MAX_MESSAGES} records")


def fields(msg: bytes, only: frozenset[int] | None = None, cap: int = 0) -> Fields:
    """Field number -> values (varint ints, or bytes of length-delimited and fixed).
    ``only``: keep these field numbers alone (the others are walked and checked, not
    kept); ``cap``: more values kept than that is a ``LimitExceeded``."""
    out: Fields = {}
    pos = kept = 0
    while pos < len(msg):
        key, pos = _varint(msg, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(msg, pos)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(msg):
                raise FormatError("protobuf: truncated fixed-width field")
            value, pos = msg[pos : pos + width], pos + width
        elif wire == 2:
            size, pos = _varint(msg, pos)
            if size > len(msg) - pos:
                raise FormatError("protobuf: field runs past its message")
            value, pos = msg[pos : pos + size], pos + size
        else:
            raise FormatError(f"protobuf: wire type {wire} (groups) not expected")
        if number == 0:
            raise FormatError("protobuf: field number 0")
        if only is None or number in only:
            out.setdefault(number, []).append(value)
            kept += 1
            if cap and kept > cap:
                raise LimitExceeded(f"protobuf: more than {cap} fields in a message")
    return out


def field_text(f: Fields, n: int) -> str:
    v = f.get(n, [b""])[-1]
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else ""


def field_int(f: Fields, n: int, signed_bits: int = 64) -> int:
    v = f.get(n, [0])[-1]
    if not isinstance(v, int):
        return 0
    v &= (1 << 64) - 1
    if signed_bits == 32:
        v &= 0xFFFFFFFF
    top = 1 << (signed_bits - 1)
    return v - (top << 1) if v & top else v


def _double(f: Fields, n: int) -> float:
    v = f.get(n, [b""])[-1]
    return float(struct.unpack("<d", v)[0]) if isinstance(v, bytes) and len(v) == 8 else 0.0


def field_subs(f: Fields, n: int) -> list[Fields]:
    return [fields(v) for v in f.get(n, []) if isinstance(v, bytes)]


def string_records(data: bytes, name: str) -> list[str]:
    """root_binaries.pb, mounts.pb: the ``value`` of each record."""
    return [field_text(fields(m), 1) for m in delimited(data, name)]


def _file(f: Fields) -> dict[str, Any]:
    mtime = _double(f, 2)
    return {
        "path": field_text(f, 1),
        "modified_time": mtime or None,
        "mode": field_text(f, 3),
        "size": field_int(f, 4),
        "user_name": field_text(f, 5),
        "group_name": field_text(f, 6),
    }


def files_records(data: bytes, name: str) -> list[dict[str, Any]]:
    """files.pb as files.json entries."""
    return [_file(fields(m)) for m in delimited(data, name)]


_CERT = (
    (1, "Md5"),
    (2, "Sha1"),
    (3, "Sha256"),
    (4, "ValidFrom"),
    (5, "ValidTo"),
    (6, "Issuer"),
    (7, "Subject"),
    (8, "SignatureAlgorithm"),
    (9, "SerialNumber"),
)
_APK = ((1, "path"), (2, "local_name"), (3, "md5"), (4, "sha1"), (5, "sha256"), (6, "sha512"))


def _apk(f: Fields) -> dict[str, Any]:
    out: dict[str, Any] = {key: field_text(f, n) for n, key in _APK}
    certs = [{key: field_text(c, n) for n, key in _CERT if field_text(c, n)}
             for c in field_subs(f, 8)[:64]]
    if certs:  # (packages.json has one ``certificate``; the protobuf a list)
        out["certificates"] = certs
    out["suspicious"] = bool(field_int(f, 7))
    return out


def _package(f: Fields) -> dict[str, Any]:
    return {
        "name": field_text(f, 1),
        "installer": field_text(f, 2) or "null",
        "uid": field_int(f, 3, 32),
        "disabled": bool(field_int(f, 4)),
        "system": bool(field_int(f, 5)),
        "third_party": bool(field_int(f, 6)),
        "files": [_apk(x) for x in field_subs(f, 7)[:256]],
    }


def packages_records(data: bytes, name: str) -> list[dict[str, Any]]:
    """packages.pb as packages.json entries."""
    return [_package(fields(m)) for m in delimited(data, name)]


# JSON name -> (protobuf twin, reader into the JSON shape)
TWINS: dict[str, tuple[str, Callable[[bytes, str], list[Any]]]] = {
    "packages.json": ("packages.pb", packages_records),
    "files.json": ("files.pb", files_records),
    "root_binaries.json": ("root_binaries.pb", string_records),
    "mounts.json": ("mounts.pb", string_records),
}
