"""androidqf captures in the protobuf layout: ``packages.pb``, ``files.pb``,
``root_binaries.pb`` and ``mounts.pb`` in place of their JSON files, each a stream of
size-delimited proto3 messages (schemas in ``spywall.android.qf_pb``), encoded here by
the wire-format rules (varint keys ``field << 3 | wire type``; strings and messages
length-delimited; doubles fixed 64-bit little-endian; default values omitted, as proto3
writes them). The tests decode these with Google's protobuf runtime as the oracle.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from spywall.samples import android as gen


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def text(field: int, value: str) -> bytes:
    raw = value.encode()
    return varint(field << 3 | 2) + varint(len(raw)) + raw if raw else b""


def sub(field: int, body: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(body)) + body


def number(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value) if value else b""


def double(field: int, value: float) -> bytes:
    return varint(field << 3 | 1) + struct.pack("<d", value) if value else b""


def delimited(messages: list[bytes]) -> bytes:
    return b"".join(varint(len(m)) + m for m in messages)


def strings(values: list[str]) -> bytes:
    return delimited([text(1, v) for v in values])


def _cert(c: dict[str, Any]) -> bytes:
    keys = ("Md5", "Sha1", "Sha256", "ValidFrom", "ValidTo", "Issuer", "Subject")
    return b"".join(text(i + 1, str(c.get(k, ""))) for i, k in enumerate(keys))


def _apk(f: dict[str, Any]) -> bytes:
    keys = ("path", "local_name", "md5", "sha1", "sha256", "sha512")
    body = b"".join(text(i + 1, str(f.get(k, ""))) for i, k in enumerate(keys))
    return body + (sub(8, _cert(f["certificate"])) if "certificate" in f else b"")


def packages(planted: bool) -> bytes:
    out = []
    for p in json.loads(gen.androidqf_files(planted, with_bugreport=False)["packages.json"]):
        installer = "" if p["installer"] == "null" else p["installer"]
        out.append(
            text(1, p["name"])
            + text(2, installer)
            + number(3, p["uid"])
            + number(5, int(p["system"]))
            + number(6, int(p["third_party"]))
            + b"".join(sub(7, _apk(f)) for f in p["files"])
        )
    return delimited(out)


def files(planted: bool) -> bytes:
    entries = json.loads(gen.androidqf_files(planted, with_bugreport=False)["files.json"])
    return delimited(
        [
            text(1, f["path"])
            + double(2, float(f["modified_time"]))
            + text(3, f["mode"])
            + number(4, f["size"])
            + text(5, "shell")
            + text(6, "shell")
            for f in entries
        ]
    )


def androidqf_files(planted: bool) -> gen.Files:
    """An androidqf capture whose inventories are protobuf."""
    out = gen.androidqf_files(planted, with_bugreport=False)
    binaries = json.loads(out.pop("root_binaries.json"))
    mounts = json.loads(out.pop("mounts.json"))
    del out["packages.json"], out["files.json"]
    out["packages.pb"] = packages(planted)
    out["files.pb"] = files(planted)
    out["root_binaries.pb"] = strings(binaries)
    out["mounts.pb"] = strings(mounts)
    return out
