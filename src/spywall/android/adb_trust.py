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
Only for an androidqf capture (a bare bugreport has no capture computer to compare)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta

from spywall.android.common import Ctx, read_json, read_text
from spywall.android.dumpsys import AdbKey
from spywall.device.base import Record
from spywall.report import Scalar, Severity

DAY_MS = 86_400_000
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
