"""Parsers for androidqf artifacts: packages.json, processes.json / ps.txt, files.json,
root_binaries.json. JSON is decoded once (size-capped by the caller); every field is
type-checked, so a capture from another androidqf version gives fewer fields, not errors.
A file that is not the expected JSON shape raises ``SchemaUnknown``.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from spywall.android import ps
from spywall.device.base import SchemaUnknown
from spywall.errors import FormatError
from spywall.report import Scalar

MAX_RECORDS = 1_000_000
_HASH_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256"}


def load_json(data: bytes, name: str) -> Any:
    """JSON, or JSON lines (one object per line) as older androidqf wrote some files."""
    try:
        return json.loads(data)
    except RecursionError as exc:
        raise FormatError(f"{name}: JSON nested too deeply") from exc
    except ValueError:
        pass
    out: list[Any] = []
    try:
        for line in data.splitlines():
            if line.strip():
                out.append(json.loads(line))
                if len(out) > MAX_RECORDS:
                    raise FormatError(f"{name}: more than {MAX_RECORDS} records")
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"{name}: not JSON: {str(exc)[:200]}") from exc
    return out


def _list(doc: Any, name: str) -> list[dict[str, Any]]:
    if isinstance(doc, dict):  # some versions wrap the list
        doc = next((v for v in doc.values() if isinstance(v, list)), None)
    if not isinstance(doc, list):
        raise SchemaUnknown(f"{name}: expected a JSON list of objects")
    return [d for d in doc[:MAX_RECORDS] if isinstance(d, dict)]


def _str(d: dict[str, Any], *keys: str) -> str | None:
    for k in keys:
        v = d.get(k)
        if isinstance(v, str) and v:
            return v
        if isinstance(v, int | float) and not isinstance(v, bool):
            return str(v)
    return None


# The spellings androidqf versions have used for hash fields (looked up directly: a
# files.json can hold hundreds of thousands of entries).
_HASH_KEYS: tuple[tuple[str, str], ...] = tuple(
    (spelling, algo) for algo in ("md5", "sha1", "sha256")
    for spelling in (algo, algo.upper(), algo.capitalize(), algo.replace("sha", "sha_"),
                     algo.upper().replace("SHA", "SHA-"))
)


def _hashes(d: dict[str, Any]) -> dict[str, str]:
    """md5/sha1/sha256 fields of a dict, whatever their case (``Sha256``, ``SHA-256``...)."""
    out: dict[str, str] = {}
    for key, algo in _HASH_KEYS:
        v = d.get(key)
        if isinstance(v, str) and algo not in out:
            h = v.strip().lower().replace(":", "")
            if _HASH_LENGTHS.get(len(h)) == algo:
                out[algo] = h
    return out


def _cert_hashes(f: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for k, v in f.items():
        if "cert" not in str(k).lower():
            continue
        items = v if isinstance(v, list) else [v]
        for item in items[:64]:
            if isinstance(item, dict):
                out.extend(_hashes(item).values())
            elif isinstance(item, str) and len(item.replace(":", "")) in _HASH_LENGTHS:
                out.append(item.replace(":", "").lower())
    return out


class ApkFile(msgspec.Struct):
    path: str | None
    hashes: dict[str, str]
    cert_hashes: list[str]


class QfPackage(msgspec.Struct):
    name: str
    installer: str | None
    system: bool
    files: list[ApkFile] = msgspec.field(default_factory=list)
    timestamp: str | None = None
    uid: int | None = None
    disabled: bool = False
    third_party: bool = False


def packages(doc: Any) -> list[QfPackage]:
    out: list[QfPackage] = []
    for d in _list(doc, "packages.json"):
        name = _str(d, "name", "package_name")
        if not name:
            continue
        installer = _str(d, "installer")
        raw = d.get("files")
        files = [ApkFile(_str(f, "path", "local_name"), _hashes(f), _cert_hashes(f))
                 for f in (raw if isinstance(raw, list) else [])[:256] if isinstance(f, dict)]
        system = bool(d.get("system")) and not bool(d.get("third_party"))
        uid = d.get("uid")
        out.append(QfPackage(name, None if installer in (None, "null") else installer, system,
                             files, _str(d, "first_install_time", "timestamp"),
                             uid if isinstance(uid, int) and not isinstance(uid, bool) else None,
                             d.get("disabled") is True, d.get("third_party") is True))
    return out


class Process(msgspec.Struct, frozen=True):
    pid: str | None
    name: str
    cmdline: str | None
    user: str | None
    kernel_thread: bool = False
    fields: dict[str, Scalar] = msgspec.field(default_factory=dict)  # MVT's, from ps.txt


def processes_json(doc: Any) -> list[Process]:
    out: list[Process] = []
    for d in _list(doc, "processes.json"):
        cmd = d.get("cmdline")
        cmdline = " ".join(map(str, cmd[:64])) if isinstance(cmd, list) else _str(d, "cmdline")
        words = cmdline.split() if cmdline else []     # (a blank cmdline has no word)
        name = _str(d, "name", "proc_name") or (words[0] if words else None)
        if name:
            out.append(Process(_str(d, "pid"), name, cmdline, _str(d, "uid", "user")))
    return out


def ps_text(text: str) -> list[Process]:
    """``ps -A`` output (``android.ps``): a header line, then columns."""
    lines = text.splitlines()
    if not lines:
        return []
    if not ps.is_header(lines[0]):
        raise SchemaUnknown("ps.txt: no PID ... NAME header")
    rows, _ = ps.table(lines)
    return [Process(r.pid, r.name, None, r.user, r.kernel_thread, r.mvt_fields())
            for r in rows[:MAX_RECORDS]]


class FileEntry(msgspec.Struct, frozen=True):
    path: str
    size: int | None
    mode: str | None
    hashes: dict[str, str]
    modified: str | int | float | None
    # the entry's other scalar fields as androidqf writes them (user_name, group_name,
    # access_time, changed_time, context, error...): at most MAX_FIELDS
    fields: dict[str, Scalar] = msgspec.field(default_factory=dict)


MAX_FIELDS = 40
_FILE_KEYS = frozenset({"path", "file_path", "size", "mode", "modified_time", "mtime"})


def _scalars(d: dict[str, Any]) -> dict[str, Scalar]:
    out: dict[str, Scalar] = {}
    for k, v in d.items():
        if len(out) >= MAX_FIELDS:
            break
        if k in _FILE_KEYS:
            continue
        if isinstance(v, str):
            out[k] = v[:512]
        elif v is None or isinstance(v, int | float | bool):
            out[k] = v
    return out


def files(doc: Any) -> list[FileEntry]:
    out: list[FileEntry] = []
    for d in _list(doc, "files.json"):
        path = _str(d, "path", "file_path")
        if not path:
            continue
        size = d.get("size")
        mtime = d.get("modified_time", d.get("mtime"))
        out.append(FileEntry(
            path, size if isinstance(size, int) and not isinstance(size, bool) else None,
            _str(d, "mode"), _hashes(d),
            mtime if isinstance(mtime, str | int | float) and not isinstance(mtime, bool)
            else None, _scalars(d)))
    return out


def root_binaries(doc: Any) -> list[str]:
    if isinstance(doc, dict):
        doc = next((v for v in doc.values() if isinstance(v, list)), [])
    if not isinstance(doc, list):
        raise SchemaUnknown("root_binaries.json: expected a JSON list")
    return [str(x) for x in doc[:10_000] if isinstance(x, str) and x.strip()]
