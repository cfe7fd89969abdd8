"""Parsers of the extra dumpsys sections (android.dumpsys) on generated dumps and on
hostile text."""

from __future__ import annotations

import base64
import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.android import dumpstate as ds
from spywall.android import dumpsys
from spywall.samples import android as gen
from spywall.samples import android_more as more

TEXT = gen.dumpstate(True)


def _service(name: str) -> str:
    body = ds.section(TEXT, f"DUMP OF SERVICE {name}:")
    assert body is not None
    return body


def test_appops() -> None:
    ops = dumpsys.appops(_service("appops"))
    got = [(o.uid, o.package, o.op, o.mode, [(e.access, e.flags, e.time) for e in o.entries])
           for o in ops]
    assert got == [
        ("u0a123", "com.android.chrome", "COARSE_LOCATION", "allow",
         [("Access", "fg-s", "2024-01-14 18:02:11.201")]),
        ("2000", "com.android.shell", "READ_CLIPBOARD", "allow",
         [("Access", "fg-s", "2024-01-13 20:00:01.000")]),
        ("u0a155", more.NOVISPY_APP, "REQUEST_INSTALL_PACKAGES", "allow",
         [("Access", "fg-s", "2024-01-13 21:14:52.054")])]


def test_appops_mode_with_switch_and_reject() -> None:
    body = ("  Uid u0a7:\n    Package com.x.y:\n"
            "      COARSE_LOCATION (allow / switch COARSE_LOCATION=allow):\n"
            "          Reject: [bg-s]2024-02-01 01:02:03.004 (-1d)\n")
    (op,) = dumpsys.appops(body)
    assert (op.mode, op.entries[0].access, op.entries[0].flags) == ("allow", "Reject", "bg-s")


def test_resolver_tables() -> None:
    package = _service("package")
    rec = dumpsys.resolver(package, "Receiver")
    act = dumpsys.resolver(package, "Activity")
    assert rec is not None
    assert act is not None
    assert [(c.action, c.component) for c in rec] == [
        ("android.intent.action.BOOT_COMPLETED", "com.whatsapp/.BootReceiver"),
        ("android.provider.Telephony.SMS_RECEIVED", f"{more.NOVISPY_APP}/.SmsListener")]
    assert [c.package for c in act] == ["com.android.chrome", more.NOVISPY_APP]
    assert dumpsys.resolver("Packages:\n", "Receiver") is None


def test_platform_compat_dbinfo_adb() -> None:
    assert dumpsys.platform_compat(_service("platform_compat")) == [
        "com.example.game", more.RCS_APP]
    ops = dumpsys.dbinfo(_service("dbinfo"))
    assert [(o.path.split("/")[4], o.pid, o.operation) for o in ops] == [
        ("com.android.providers.telephony", "3300", "executeForCursorWindow"),
        (more.NOVISPY_APP, "3301", "executeForCursorWindow")]
    assert ops[0].sql == "SELECT _id FROM messages WHERE read=0"
    keys = dumpsys.adb_keys(_service("adb"))
    assert keys is not None
    (key,) = keys
    raw = hashlib.sha512(b"spywall test adb host key").digest() * 4
    want = hashlib.md5(raw).hexdigest().upper()
    assert key.fingerprint.replace(":", "") == want
    assert key.user == "analyst@laptop"
    assert base64.b64encode(raw).decode() in TEXT
    assert dumpsys.adb_keys("nothing") is None


def test_processes_brackets() -> None:
    body = dumpsys.processes_section(TEXT)
    assert body is not None
    procs = dumpsys.processes(body)
    assert procs is not None
    by_name = {p.name: p for p in procs}
    assert by_name[more.KTHREAD].kernel_thread
    assert by_name["kworker/0:1-events"].kernel_thread
    assert not by_name[f"{more.NOVISPY_APP}:remote"].kernel_thread
    assert by_name["system_server"].pid == "812"
    assert dumpsys.processes("no table here") is None


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(" \n:=[]()/{},.\"0123456789abUidPackage-*+"
                                             "AccessReject"), ), max_size=3000))
def test_parsers_never_raise(text: str) -> None:
    dumpsys.appops(text)
    dumpsys.resolver("Receiver Resolver Table:\n  Non-Data Actions:\n" + text, "Receiver")
    dumpsys.platform_compat("ChangeId(168419799; name=DOWNSCALED; rawOverrides={" + text)
    dumpsys.dbinfo("Connection pool for /x:\n" + text)
    dumpsys.adb_keys("debugging_manager=" + text)
    dumpsys.battery_history(text)
    dumpsys.battery_daily("  Daily from 2024-01-01-00-00-00 to x:\n" + text)
    dumpsys.processes("USER PID NAME\n" + text)
