"""More of a generated bugreport (``samples.android.dumpstate`` adds it): the sections MVT's
bugreport modules read, as Android prints them, with planted values from the bundled sets.

- ``PROCESSES AND THREADS``: a ``ps -A`` table; kernel threads in brackets.
- ``DUMP OF SERVICE appops``: per uid and package, ops with their mode and the
  ``Access: [flags]time`` lines.
- the package dump's ``Receiver Resolver Table`` / ``Activity Resolver Table``:
  ``Non-Data Actions`` with components under each action.
- ``DUMP OF SERVICE platform_compat``: the ``DOWNSCALED`` change's ``rawOverrides``.
- ``DUMP OF SERVICE dbinfo``: connection pools and their recent operations.
- ``DUMP OF SERVICE adb``: ``debugging_manager`` with a trusted ``user_keys`` entry.
- battery history events (jobs, foreground, alarms) and daily stats (an app updated to
  version 0 when removed, another downgraded).
Planted: NoviSpy's app (appops with REQUEST_INSTALL_PACKAGES, an SMS receiver, an
activity, a database, a process ``pkg:remote``), RCS Lab's app removed (platform_compat,
daily stats), a Pegasus process name as a bracketed kernel thread, adb shell app-ops.
"""

from __future__ import annotations

import base64
import hashlib

NOVISPY_APP = "com.serv.services"  # amnesty_novispy.stix2
RCS_APP = "com.fintur.support"  # mvtind_rcs.stix2
KTHREAD = "bluetoothfs"  # amnesty_pegasus.stix2 (a process name)
BAR = "-" * 79


def _end(name: str, n: int) -> str:
    return (f"--------- 0.0{n}s was the duration of dumpsys {name}, ending at: "
            f"2024-01-15 10:00:{10 + n:02d}\n")


def processes(planted: bool) -> str:
    rows = [("root", 1, 0, "init"), ("root", 2, 0, "[kthreadd]"),
            ("root", 14, 2, "[kworker/0:1-events]"), ("system", 812, 650, "system_server"),
            ("u0_a123", 3301, 650, "com.android.chrome")]
    if planted:
        rows += [("root", 77, 2, f"[{KTHREAD}]"), ("u0_a155", 4243, 650, f"{NOVISPY_APP}:remote")]
    head = "USER           PID  PPID        VSZ    RSS WCHAN            ADDR S NAME\n"
    body = "".join(f"{u:<12} {p:>5} {pp:>5} 1234567  89012 0                   0 S {n}\n"
                   for u, p, pp, n in rows)
    return ("------ PROCESSES AND THREADS (/system/bin/ps -A -T -Z -O pri,nice,rtprio,sched,"
            "pcy,time) ------\n" + head + body
            + "------ 0.120s was the duration of 'PROCESSES AND THREADS' ------\n")


def resolver_tables(planted: bool) -> str:
    receivers = [("android.intent.action.BOOT_COMPLETED",
                  "com.whatsapp/.BootReceiver")]
    activities = [("android.intent.action.MAIN", "com.android.chrome/com.google.android.apps."
                   "chrome.Main")]
    if planted:
        receivers.append(("android.provider.Telephony.SMS_RECEIVED",
                          f"{NOVISPY_APP}/.SmsListener"))
        activities.append(("android.intent.action.MAIN", f"{NOVISPY_APP}/.MainActivity"))

    def table(kind: str, rows: list[tuple[str, str]]) -> str:
        out = [f"{kind} Resolver Table:", "  Non-Data Actions:"]
        for i, (action, comp) in enumerate(rows):
            out += [f"      {action}:",
                    f"        {hashlib.sha1(comp.encode()).hexdigest()[:7]} {comp} "  # noqa: S324
                    f"filter {i + 1:07x}",
                    "          Action: \"" + action + "\""]
        out += ["", "  MIME Typed Actions:", ""]
        return "\n".join(out) + "\n"

    return table("Activity", activities) + table("Receiver", receivers)


def _appops(planted: bool) -> str:
    pkgs = [("u0a123", "com.android.chrome", [("COARSE_LOCATION", "allow",
                                               "2024-01-14 18:02:11.201")])]
    if planted:
        pkgs += [("2000", "com.android.shell", [("READ_CLIPBOARD", "allow",
                                                 "2024-01-13 20:00:01.000")]),
                 ("u0a155", NOVISPY_APP, [("REQUEST_INSTALL_PACKAGES", "allow",
                                           "2024-01-13 21:14:52.054")])]
    out = ["Current AppOps Service state:", "  Settings:", "    top_state_settle_time=+30s0ms",
           "", "  Uid 0:", "    state=pers"]
    for uid, pkg, ops in pkgs:
        out += [f"  Uid {uid}:", "    state=cch", f"    Package {pkg}:"]
        for op, mode, when in ops:
            out += [f"      {op} ({mode}):",
                    f"          Access: [fg-s]{when} (-1d13h25m2s33ms)"]
    return "\n".join(out) + "\n\n"


def _platform_compat(planted: bool) -> str:
    overrides = "com.example.game=false"
    if planted:
        overrides += f", {RCS_APP}=false"
    return ("ChangeId(168419799; name=DOWNSCALED; disabled; overridable; "
            f"rawOverrides={{{overrides}}}; rawOverridesStr={{}})\n"
            "ChangeId(168419800; name=DOWNSCALE_90; disabled; overridable)\n")


def _dbinfo(planted: bool) -> str:
    pools = ["/data/user/0/com.android.providers.telephony/databases/mmssms.db"]
    if planted:
        pools.append(f"/data/user/0/{NOVISPY_APP}/databases/c2.db")
    out = ["Applications Database Info:", ""]
    sql = 'sql="SELECT _id FROM messages WHERE read=0"'  # (text of a dump, not a query)
    for i, pool in enumerate(pools):
        out += [f"Connection pool for {pool}:", "  Open: true", "  Max connections: 1",
                "  Most recently executed operations:",
                f"    {i}: [2024-01-15 09:5{i}:01.123] [Pid:({3300 + i})]executeForCursorWindow "
                f"took 1ms - succeeded, {sql}, path={pool}", ""]
    return "\n".join(out) + "\n"


# The computer that made the capture: its adb key, trusted by the phone (androidqf
# records it as adb_host_public_key), last connected when the capture started.
ADB_KEY = base64.b64encode(hashlib.sha512(b"spywall test adb host key").digest() * 4).decode()
ADB_USER = "analyst@laptop"
ADB_LAST_MS = 1_705_312_800_000  # 2024-01-15 10:00 UTC


def adb_state(user_keys: list[str], keystore: list[tuple[str, int]]) -> str:
    """The ``dumpsys adb`` text as Android 11+ prints it (AdbDebuggingManager through an
    indenting writer, so every line of a value carries the field's indent):
    ``user_keys=`` the adb_keys file (one ``<base64> user@host`` a line), ``keystore=``
    the adb_temp_keys.xml file, each ended by a blank line."""
    pad = "\n    "
    xml = "".join(f'{pad}<adbKey key="{k}" lastConnection="{ms}" />' for k, ms in keystore)
    return ("ADB MANAGER STATE (dumpsys adb):\n{\n  debugging_manager={\n"
            "    connected_to_adb=true\n    last_key_received=ABCDEF\n"
            f"    user_keys={pad.join(user_keys)}\n\n"
            "    keystore=<?xml version='1.0' encoding='utf-8' standalone='yes' ?>"
            f'{pad}<keyStore version="1">{xml}{pad}</keyStore>\n\n  }}\n}}\n')


def _adb() -> str:
    key = f"{ADB_KEY} {ADB_USER}"
    return adb_state([key], [(key, ADB_LAST_MS)])


def battery_extra(planted: bool) -> tuple[str, str]:
    """(history lines, daily stats lines) added to the batterystats dump."""
    history = ("  +3h00m00s000ms (2) 099 +job=u0a123:\"com.android.chrome/org.chromium.Sync\"\n"
               "  +3h00m04s000ms (2) 099 -job=u0a123:\"com.android.chrome/org.chromium.Sync\"\n"
               "  +3h10m00s000ms (2) 099 +top=u0a150:\"com.whatsapp\"\n")
    daily = ("  Daily from 2024-01-12-03-00-00 to 2024-01-13-03-00-00:\n"
             "    Update com.whatsapp vers=233190\n")
    if planted:
        history += (f"  +3h20m00s000ms (2) 098 +running +wake_lock=u0a160:\"*walarm*:{RCS_APP}"
                    "/.Beacon\"\n")
        daily += (f"    Update {RCS_APP} vers=31\n"
                  "  Daily from 2024-01-13-03-00-00 to 2024-01-14-03-00-00:\n"
                  f"    Update {RCS_APP} vers=0\n"
                  "    Update com.whatsapp vers=231004\n")
    return history, daily


def _settings(planted: bool) -> str:
    """``dumpsys settings``: namespaces per user, records with their fields in dumpsys's
    order (a value with spaces, one over two lines, a vendor ``notPreservedInRestore``),
    and change histories without a year (the planted one turns Play Protect off, from the
    adb shell, on 01-14)."""
    verify = "0" if planted else "1"
    history = ("  History (2):\n"
               "    time:03-02 08:00:00.000 mode:insert oldValue:null newValue:1 "
               "package:android\n"
               f"    time:01-14 21:03:11.482 mode:update oldValue:1 newValue:{verify}\n"
               "      package:com.android.shell\n")
    return (
        "CONFIG SETTINGS (user 0)\n"
        "_id:1 name:runtime_native/usap_pool_enabled pkg:com.google.android.gms value:true "
        "tag:null\n\n"
        "GLOBAL SETTINGS (user 0)\n"
        "_id:38 name:adb_enabled pkg:android value:1 default:0 defaultSystemSet:true tag:null\n"
        "_id:40 name:device_name pkg:com.android.settings value:Ana's Pixel 8 default:Pixel 8 "
        "defaultSystemSet:true tag:null\n"
        f"_id:51 name:package_verifier_enable pkg:com.android.shell value:{verify} "
        "default:1 defaultSystemSet:true tag:null\n" + history +
        "_id:60 name:wifi_networks_available_notification_on pkg:android value:1 "
        "notPreservedInRestore\n\n"
        "SECURE SETTINGS (user 0)\n"
        "_id:7 name:enabled_notification_listeners pkg:android value:com.android.a/.B:\n"
        "com.android.c/.D default:null defaultSystemSet:true tag:null\n"
        "_id:9 name:accessibility_enabled pkg:com.android.settings value:0 default:0 "
        "defaultSystemSet:true tag:null\n\n"
        "SYSTEM SETTINGS (user 10)\n"
        "_id:3 name:screen_brightness pkg:com.android.systemui value:102 tag:null\n\n"
        "Generation registry\n  Backing stores: 4\n"
    )


def services(planted: bool) -> str:
    """The extra ``DUMP OF SERVICE`` sections, in dumpstate's form."""
    out = ""
    for n, (name, body) in enumerate((("appops", _appops(planted)),
                                      ("platform_compat", _platform_compat(planted)),
                                      ("dbinfo", _dbinfo(planted)), ("adb", _adb()),
                                      ("settings", _settings(planted))), 6):
        out += f"{BAR}\nDUMP OF SERVICE {name}:\n{body}{_end(name, n)}"
    return out


def mms(planted: bool) -> list[dict[str, object]]:
    """MMS as the telephony provider's backup agent writes them: the text in ``mms_body``
    (a string), addresses in ``mms_addresses``; the planted one links to a Predator
    domain (amnesty_cytrox.stix2)."""
    out: list[dict[str, object]] = [
        {"date": "1705181000", "date_sent": "0", "m_type": "132", "msg_box": "1",
         "read": "1", "mms_body": "Photos from Saturday",
         "mms_addresses": [{"type": 137, "address": "+381601234567", "charset": 106}]}]
    if planted:
        out.append({"date": "1705201000", "date_sent": "0", "m_type": "132", "msg_box": "1",
                    "read": "0", "mms_body": "Your invoice: https://mobnetlink1.com/inv/77",
                    "mms_addresses": [{"type": 137, "address": "+381600000002",
                                       "charset": 106}]})
    return out
