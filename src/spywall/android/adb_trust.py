"""Which computers the phone trusts for adb, against the one that made the androidqf
capture (MVT's ``dumpsys_adb_state`` in ``check-androidqf``, at MVT's levels).

androidqf records its own adb host key: ``adb_host_public_key`` in acquisition.json, or
the file ``adb_host_key.pub``. Each trusted key of the phone's adb state
(``dumpsys.adb_keys``) is then:
- ``android-adb-key-invalid`` (low): not base64, no key adb could have used;
- ``android-adb-key-unverified`` (low): trusted, and the capture records no host key to
  tell whether it is the capture's computer;
- ``android-adb-key-other-host`` (low): trusted, and not the capture's computer: another
  computer may debug the phone (install apps, read data) over USB;
- ``android-adb-key-old-connection`` (information): the capture's own computer, last
  connected a day or more before the capture (it was trusted earlier).
Only for an androidqf capture (a bare bugreport has no capture computer to compare).

A dump shows a keystore in binary XML (ABX) with its bytes replaced (``dumpsys``
recovers its keys as MVT does, without their last connection); a capture that holds the
keystore file itself (``adb_temp_keys.xml``, the raw bytes) has it read by the ABX reader
(``keystore_file``): its keys with their ``lastConnection``."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta

import msgspec

from spywall.android import abx
from spywall.android.common import Ctx, read_json, read_text
from spywall.android.dumpsys import AdbKey, adb_fingerprint
from spywall.device.base import Record
from spywall.errors import LimitExceeded, SpywallError
from spywall.report import ErrorEntry, Scalar, Severity

DAY_MS = 86_400_000
KEYSTORE_FILE = "adb_temp_keys.xml"
MAX_KEYS = 1000
TITLES = {"android-adb-key-invalid": "Invalid trusted adb key",
          "android-adb-key-unverified": "Trusted adb host not compared",
          "android-adb-key-other-host": "Phone trusts another computer for adb",
          "android-adb-key-old-connection": "Capture computer trusted earlier"}


def _material(text: object) -> str:
    """A key's base64 (a ``<base64> user@host`` text's first word); "" if not base64."""
    token = text.strip().split(" ", 1)[0] if isinstance(text, str) else ""
    try:
        return token if token and base64.b64decode(token, validate=True) else ""
    except (binascii.Error, ValueError):
        return ""


def _started_ms(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def acquisition(ctx: Ctx) -> tuple[str, int | None]:
    """(the capture computer's adb key, the capture's start in ms) of an androidqf
    capture; ("", None) when it records neither."""
    cap = ctx.evidence
    meta = read_json(cap, "acquisition.json") if cap.has("acquisition.json") else None
    meta = meta if isinstance(meta, dict) else {}
    key = _material(meta.get("adb_host_public_key"))
    if not key:
        name = next((n for n in cap.members()
                     if n.rpartition("/")[2] == "adb_host_key.pub"), None)
        key = _material(read_text(cap, name)) if name else ""
    return key, _started_ms(meta.get("started"))


def judge(ctx: Ctx, keys: list[AdbKey], recs: list[Record], where: str) -> None:
    """The heuristics above over the trusted ``keys`` (records ``recs``, in order)."""
    host, started = acquisition(ctx)
    for k, rec in zip(keys, recs, strict=True):
        who = f"{k.fingerprint or '<invalid key>'} ({k.user or 'unknown user'})"
        detail: dict[str, Scalar] = {"fingerprint": k.fingerprint, "user": k.user}
        if not k.fingerprint:
            rule, sev, msg = ("android-adb-key-invalid", Severity.LOW,
                              f"a trusted adb host key is not a valid key: {who}")
        elif not host:
            rule, sev, msg = ("android-adb-key-unverified", Severity.LOW,
                              f"the phone trusts the adb host {who}, and the capture does "
                              "not record its own host key to compare")
        elif k.key != host:
            rule, sev, msg = ("android-adb-key-other-host", Severity.LOW,
                              f"the phone trusts the adb host {who}, which is not the "
                              "computer that made this capture: another computer may "
                              "debug the phone over USB; check whose it is")
        elif (started is not None and k.last_connected is not None
              and k.last_connected <= started - DAY_MS):
            rule, sev, msg = ("android-adb-key-old-connection", Severity.INFO,
                              f"the capture's computer {who} was last connected "
                              f"{timedelta(milliseconds=started - k.last_connected).days} "
                              "day(s) before the capture: it was trusted earlier")
        else:
            continue
        ctx.heuristic(rule, TITLES[rule], msg, rec=rec, path=where, severity=sev,
                      detail=detail)


def keystore_file(ctx: Ctx) -> tuple[str, list[AdbKey]] | None:
    """(where, keys) of the capture's adb keystore file (``adb_temp_keys.xml``, in any
    folder) when it is in binary XML (ABX): each ``adbKey`` with its ``lastConnection``,
    at most ``MAX_KEYS``. None without one (or a text XML one: the dump shows it). A
    file the reader refuses (malformed, truncated, over its bounds) is an error entry
    and no keys."""
    cap = ctx.evidence
    name = next((n for n in cap.members() if n.rpartition("/")[2] == KEYSTORE_FILE), None)
    if name is None:
        return None
    where = cap.where(name)
    try:
        data = cap.read(name, abx.MAX_INPUT) or b""
        if not data.startswith(abx.MAGIC):
            return None
        found = abx.adb_keystore(data)
    except SpywallError as exc:
        code = "limit" if isinstance(exc, LimitExceeded) else "malformed"
        ctx.subject.errors.append(ErrorEntry(path=where, code=code,
                                             message=f"{KEYSTORE_FILE}: {exc}"[:600]))
        return where, []
    out: dict[str, AdbKey] = {}
    for text, last in found:
        token, _, user = text.strip().partition(" ")
        if token and token not in out and len(out) < MAX_KEYS:
            out[token] = AdbKey(user.strip(), adb_fingerprint(token) or "", token, last)
    return where, list(out.values())


def merge(keys: list[AdbKey], where: str,
          stored: tuple[str, list[AdbKey]] | None) -> list[tuple[AdbKey, str]]:
    """(key, where) of the dump's ``keys`` (at ``where``), then the keystore file's not
    among them; a dump key without a last connection takes the file's."""
    out = {k.key: (k, where) for k in keys}
    for k in stored[1] if stored else []:
        had = out.get(k.key)
        if had is None and len(out) < MAX_KEYS:
            out[k.key] = (k, stored[0] if stored else where)
        elif had is not None and had[0].last_connected is None:
            out[k.key] = (msgspec.structs.replace(had[0], last_connected=k.last_connected),
                          had[1])
    return list(out.values())
