"""Fuzz check-android: the input is read as a capture zip (androidqf or bugreport) and
every module runs over it; also the text parsers, the protobuf tombstone reader and the
intrusion-log line reader over the raw bytes."""

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from spywall.android import apk, backup, dumpstate, dumpsys, intrusion_logs, qf, tombstones
    from spywall.android.capture import ZipSource, from_source
    from spywall.android.check import MODULES
    from spywall.device.base import CheckContext
    from spywall.device.runner import run_modules
    from spywall.errors import SpywallError
    from spywall.iocs import IocIndex
    from spywall.limits import Budget, Limits
    from spywall.report import Subject

LIMITS = Limits(max_total_decompressed=8 << 20, max_stream_bytes=4 << 20, seconds=5)
INDEX = IocIndex.load()


def TestOneInput(data: bytes) -> None:
    text = data[:65536].decode("utf-8", "replace")
    dumpstate.packages(text)
    dumpstate.system_properties(text)
    dumpstate.tombstone(text)
    dumpsys.appops(text)
    dumpsys.resolver(text, "Receiver")
    dumpsys.platform_compat(text)
    dumpsys.dbinfo(text)
    dumpsys.adb_keys(text)
    dumpsys.battery_history(text)
    dumpsys.battery_daily(text)
    dumpsys.processes(text)
    with contextlib.suppress(SpywallError):
        qf.packages(qf.load_json(data[:65536], "fuzz"))
    with contextlib.suppress(SpywallError):
        tombstones.parse_pb(data[:65536])
    with contextlib.suppress(SpywallError):
        intrusion_logs.Events().add_text("fuzz", data[:65536])
    if data.startswith(backup.MAGIC):
        with contextlib.suppress(SpywallError):
            backup.sms(data, Budget(LIMITS))
        return
    with contextlib.suppress(SpywallError):
        apk.certificate_hashes(data)
    try:
        cap = from_source(ZipSource(data, "fuzz.zip", LIMITS), "fuzz.zip", LIMITS,
                          Budget(LIMITS))
    except SpywallError:
        return
    run_modules(MODULES, CheckContext(evidence=cap, index=INDEX, subject=Subject(path="f")))


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
