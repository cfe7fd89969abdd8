"""Text parsers for what a bugreport holds: the dumpstate text (system properties and the
package manager's dump) and tombstones (native crash reports). Also used for androidqf's
``getprop.txt``, whose lines have the same ``[key]: [value]`` form.

Pure functions over decoded text; every loop is bounded by a record cap.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import msgspec

MAX_RECORDS = 500_000

_PROP = re.compile(r"^\[([^\]\r\n]{1,512})\]: \[([^\r\n]{0,4096})\]$", re.M)
_SECTION_END = re.compile(r"^(?:------ |-{9,}|DUMP OF SERVICE )", re.M)
_PROPS_HEADER = re.compile(r"^------ SYSTEM PROPERTIES[^\r\n]*$", re.M)
_SERVICE = "DUMP OF SERVICE {}:"
_PACKAGE = re.compile(r"^ {2}Package \[([^\]\r\n]{1,512})\] \([0-9a-f]+\):$", re.M)
_PKG_FIELD = re.compile(r"^ {4}([A-Za-z]{1,40})=([^\r\n]{0,1024})$", re.M)
_PKG_FIELDS = frozenset({"installerPackageName", "codePath", "firstInstallTime",
                         "lastUpdateTime", "versionName", "userId", "pkgFlags", "flags",
                         "timeStamp", "versionCode"})


def decode(data: bytes) -> str:
    """A text artifact as text: UTF-8 (bad bytes replaced), CRLF line ends as LF (a
    capture copied through Windows; the line-anchored patterns expect LF)."""
    text = data.decode("utf-8", "replace")
    return text.replace("\r\n", "\n") if "\r" in text else text


def properties(text: str) -> dict[str, str]:
    """``[key]: [value]`` lines (getprop output), at most ``MAX_RECORDS``."""
    out: dict[str, str] = {}
    for m in _PROP.finditer(text):
        out[m.group(1)] = m.group(2)
        if len(out) >= MAX_RECORDS:
            break
    return out


def section(text: str, header: re.Pattern[str] | str) -> str | None:
    """The body of a dumpstate section: from after its header line to the next one."""
    if isinstance(header, str):
        start = text.find(header)
        if start < 0:
            return None
        start = text.find("\n", start)
    else:
        m = header.search(text)
        if m is None:
            return None
        start = m.end()
    if start < 0:
        return ""
    end = _SECTION_END.search(text, start + 1)
    return text[start + 1 : end.start() if end else len(text)]


def system_properties(text: str) -> dict[str, str] | None:
    body = section(text, _PROPS_HEADER)
    return None if body is None else properties(body)


class Package(msgspec.Struct):
    name: str
    fields: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def installer(self) -> str | None:
        v = self.fields.get("installerPackageName")
        return None if v in (None, "", "null") else v

    @property
    def system(self) -> bool:
        code = self.fields.get("codePath", "")
        flags = self.fields.get("pkgFlags", "") + self.fields.get("flags", "")
        return code.startswith(("/system", "/product", "/vendor", "/apex", "/system_ext")) or \
            " SYSTEM " in f" {flags.strip('[] ')} "


def packages(text: str) -> list[Package] | None:
    """Packages of the ``DUMP OF SERVICE package:`` section (None if absent)."""
    body = section(text, _SERVICE.format("package"))
    if body is None:
        return None
    found: dict[str, Package] = {}
    heads = list(_PACKAGE.finditer(body))[:MAX_RECORDS]
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(body)
        pkg = found.setdefault(m.group(1), Package(m.group(1)))
        for f in _PKG_FIELD.finditer(body, m.end(), end):
            if f.group(1) in _PKG_FIELDS:
                pkg.fields.setdefault(f.group(1), f.group(2).strip())
    return list(found.values())


_COMPONENT = re.compile(r"\b([A-Za-z][A-Za-z0-9_]{0,100}(?:\.[A-Za-z0-9_]{1,100}){1,20})"
                        r"/(\.?[A-Za-z0-9_$]{1,200}(?:\.[A-Za-z0-9_$]{1,200}){0,30})")
_ENABLED = re.compile(r"^\s*enabled services:?[^\r\n]*$", re.M | re.I)
_BOUND = re.compile(r"^\s*bound services:?[^\r\n]*$", re.M | re.I)


_A11Y_USER = re.compile(r"attributes:\{id=([0-9]{1,9})")
_A11Y_COUNT = re.compile(r"installedServiceCount=([0-9]{1,9})")


class Accessibility(msgspec.Struct, frozen=True):
    """``DUMP OF SERVICE accessibility``: its services (``accessibility_services``) and,
    for each user whose ``attributes:{id=N, ...}`` line states an
    ``installedServiceCount`` larger than the components the dump names for that user,
    (user, stated count, how many are not named)."""

    services: dict[str, bool | None]
    unnamed: list[tuple[int | None, int, int]]


def accessibility(text: str) -> Accessibility | None:
    """The accessibility section read (None if absent). On most builds the user's
    ``installedServiceCount`` is the dump's only statement of installed services: a
    count its named services do not add up to is kept, as MVT keeps it."""
    body = section(text, _SERVICE.format("accessibility"))
    if body is None:
        return None
    counts: dict[int | None, int] = {}
    named: dict[int | None, set[str]] = {}
    user: int | None = None
    for line in body.splitlines():
        if m := _A11Y_USER.search(line):
            user = int(m.group(1))
        if m := _A11Y_COUNT.search(line):
            counts[user] = int(m.group(1))
        seen = named.setdefault(user, set())
        if len(seen) < MAX_RECORDS:
            seen.update(c.group(0) for c in _COMPONENT.finditer(line))
    unnamed = [(u, n, n - len(named.get(u, ()))) for u, n in counts.items()
               if n > len(named.get(u, ()))]
    return Accessibility(_services(body), unnamed)


def accessibility_services(text: str) -> dict[str, bool | None] | None:
    """Components (``pkg/.Service``) named in ``DUMP OF SERVICE accessibility``, each with
    whether it is active: on an ``Enabled services`` or ``Bound services`` line (True),
    installed only (False), or None when the dump prints no ``Enabled services`` line
    (the state is not stated, which is not "off"). None if the section is absent."""
    body = section(text, _SERVICE.format("accessibility"))
    return None if body is None else _services(body)


def _services(body: str) -> dict[str, bool | None]:
    stated = _ENABLED.search(body) is not None
    found: dict[str, bool | None] = {}
    for m in _COMPONENT.finditer(body):
        found.setdefault(m.group(0), False if stated else None)
        if len(found) >= MAX_RECORDS:
            break
    for line in itertools.chain(_ENABLED.finditer(body), _BOUND.finditer(body)):
        for m in _COMPONENT.finditer(line.group(0)):
            found[m.group(0)] = True
    return found


class Tombstone(msgspec.Struct, frozen=True):
    pid: int | None
    name: str | None          # the thread/process name of the ``pid:`` line
    executable: str | None    # between >>> and <<<
    cmdline: str | None
    timestamp: str | None
    uid: int | None
    signal: str | None
    tid: int | None = None
    build_fingerprint: str | None = None
    abort_message: str | None = None
    revision: str | None = None
    arch: str | None = None      # the ABI line
    uptime: int | None = None    # seconds
    cause: str | None = None


_TS_LINE = {
    "cmdline": re.compile(r"^Cmdline: ([^\r\n]{1,4096})$", re.M),
    "timestamp": re.compile(r"^Timestamp: ([0-9][^\r\n]{0,64})$", re.M),
    "uid": re.compile(r"^uid: ([0-9]{1,10})$", re.M),
    "signal": re.compile(r"^signal ([^\r\n]{1,200})$", re.M),
    "build_fingerprint": re.compile(r"^Build fingerprint: '?([^\r\n']{1,512})'?$", re.M),
    "abort_message": re.compile(r"^Abort message: '?([^\r\n]{1,2048}?)'?$", re.M),
    "revision": re.compile(r"^Revision: '?([^\r\n']{1,256})'?$", re.M),
    "arch": re.compile(r"^ABI: '?([^\r\n']{1,64})'?$", re.M),
    "uptime": re.compile(r"^Process uptime: ([0-9]{1,12})s?$", re.M),
    "cause": re.compile(r"^Cause: ([^\r\n]{1,2048})$", re.M),
}
_PID = re.compile(r"^pid: ([0-9]{1,10}), tid: ([0-9]{1,10}), name: ([^\r\n]{0,256}?)"
                  r"(?:  >>> ([^\r\n]{1,4096}) <<<)?$", re.M)


def tombstone(text: str) -> Tombstone:
    """The header fields of a text tombstone (absent fields are None)."""
    got = {k: (m.group(1).strip() if (m := r.search(text, 0, 65536)) else None)
           for k, r in _TS_LINE.items()}
    pid = _PID.search(text, 0, 65536)
    return Tombstone(
        pid=int(pid.group(1)) if pid else None,
        name=pid.group(3).strip() or None if pid else None,
        executable=pid.group(4) if pid and pid.group(4) else None,
        cmdline=got["cmdline"], timestamp=got["timestamp"],
        uid=int(got["uid"]) if got["uid"] else None, signal=got["signal"],
        tid=int(pid.group(2)) if pid else None,
        build_fingerprint=got["build_fingerprint"], abort_message=got["abort_message"],
        revision=got["revision"], arch=got["arch"],
        uptime=int(got["uptime"]) if got["uptime"] else None, cause=got["cause"],
    )


def key_values(text: str, sep: str = "=") -> Iterator[tuple[str, str]]:
    """``key=value`` lines (settings dumps), at most ``MAX_RECORDS``."""
    for n, line in enumerate(text.splitlines()):
        if n >= MAX_RECORDS:
            return
        key, eq, value = line.partition(sep)
        if eq and key.strip():
            yield key.strip(), value.strip()
