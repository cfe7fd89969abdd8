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


def signed(field: int, value: int) -> bytes:
    """An int32 / int64 field: a negative value as its 64-bit two's complement (ten
    bytes), as proto3 writes one."""
    return varint(field << 3) + varint(value) if value else b""


def tombstone_pb(command_line: list[str], *, uid: int, pid: int = 6150, tid: int = 6171,
                 thread: str = "", other_threads: tuple[tuple[int, str], ...] = (),
                 signal: tuple[int, str, int, str] = (11, "SIGSEGV", 1, "SEGV_MAPERR"),
                 cause: str = "null pointer dereference",
                 timestamp: str = "2024-01-14 22:41:03.118272104+0100",
                 android12: bool = False) -> bytes:
    """A ``tombstone_NN.pb`` as debuggerd writes it (the Tombstone message of AOSP's
    tombstone.proto: field numbers in ``spywall.android.tombstones``): the crashing
    thread ``tid`` named ``thread`` (the first command-line word cut to 15 characters,
    as the kernel keeps thread names, when not given) among ``other_threads``, each
    with registers and a backtrace frame; memory maps, a log buffer and open files that
    the reader must walk past; a selinux label ending in NUL, as debuggerd reads it.
    ``android12``: one ``cause`` (Android 12 declared ``causes`` 15 as a single
    message) and the command line as the single ``process_name`` string."""
    name = thread or command_line[0].rpartition("/")[2][:15]
    frame = number(1, 0x4F21C) + number(2, 0x7A3C44F21C) + text(6, "/system/lib64/libc.so")
    threads = b""
    for t_id, t_name in ((tid, name), *other_threads):
        body = (number(1, t_id) + text(2, t_name) + sub(3, text(1, "x0") + number(2, 0))
                + sub(3, text(1, "pc") + number(2, 0x7A3C44F21C)) + sub(4, frame))
        threads += sub(16, number(1, t_id) + sub(2, body))
    words = [" ".join(command_line)] if android12 else command_line
    sig = (signed(1, signal[0]) + text(2, signal[1]) + signed(3, signal[2]) + text(4, signal[3])
           + number(8, 1) + number(9, 0x10))
    mapping = (number(1, 0x7A3C400000) + number(2, 0x7A3C500000) + number(4, 1) + number(6, 1)
               + text(7, "/system/lib64/libc.so"))
    logs = sub(2, text(1, timestamp[:23]) + number(2, pid) + number(3, tid) + number(4, 6)
               + text(5, "libc") + text(6, "Fatal signal 11 (SIGSEGV)"))
    return (number(1, 1)  # ARM64
            + text(2, "google/oriole/oriole:14/UP1A.231105.003/11010452:user/release-keys")
            + text(3, "MP1.0") + text(4, timestamp) + number(5, pid) + number(6, tid)
            + number(7, uid) + text(8, "u:r:untrusted_app:s0:c155,c256,c512,c768\x00")
            + b"".join(text(9, w) for w in words) + sub(10, sig)
            + text(14, "") + sub(15, text(1, cause)) + threads
            + sub(17, mapping) + sub(18, text(1, "main") + logs)
            + sub(19, number(1, 3) + text(2, "/dev/null")) + number(20, 37) + number(22, 4096))
