"""Generators of Android captures (bugreport zips, androidqf folders/zips) in the layouts
the public tools write, with indicators from the bundled public sets planted in them, and
clean twins that must raise nothing. Built by code; no real capture is copied.

Not registered in ``SAMPLE_MODULES`` (those are files for ``spywall scan``); used by
``tests/test_android*.py`` and ``spywall check-android`` demos.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
import zlib
from datetime import date
from pathlib import Path

from spywall.samples import android_fs, android_more

# Planted values, each from a bundled indicator file (amnesty_novispy.stix2,
# amnesty_android_campaign_2023.stix2, mvtind_wyrmspy_dragonegg.stix2).
NOVISPY_APP = "com.serv.services"
NOVISPY_CERT = "3ac97735164824657b683e805133b1274b2dedabf9fdd6aa9aca31089d501e64"
NOVISPY_APK_SHA256 = "d55e492d5fce87898e065572a5553d1ac1389cd12bf3d28cabc1218cb29780af"
CAMPAIGN_PROPERTY = "sys.brand.note"
CAMPAIGN_PATH = "/data/local/tmp/dropbox"
WYRMSPY_APP = "com.adobe.flash.jni"
NOVISPY_SERVICE = "com.accesibilityservice"
PREDATOR_DOMAIN = "myfcbk.net"  # amnesty_cytrox.stix2
RCS_APP = "com.fintur.support"  # mvtind_rcs.stix2

BENIGN_APPS = ("com.android.chrome", "com.whatsapp", "org.thoughtcrime.securesms",
               "com.google.android.apps.maps")
SYSTEM_APPS = ("com.android.systemui", "com.android.settings", "com.android.phone")
DUMPSTATE = "bugreport-oriole-UP1A.231105.003-2024-01-15-10-00-00.txt"

Files = dict[str, bytes]
ZIP_TIME = (2024, 1, 15, 10, 0, 2)


def _h(seed: str, algo: str = "sha256") -> str:
    return hashlib.new(algo, seed.encode()).hexdigest()


def _props(planted: bool) -> dict[str, str]:
    props = {
        "ro.product.manufacturer": "Google", "ro.product.model": "Pixel 6",
        "ro.build.version.release": "14", "ro.build.version.security_patch": recent_patch(),
        "ro.build.fingerprint": "google/oriole/oriole:14/UP1A.231105.003/11010452:user/"
                                "release-keys",
        "persist.sys.timezone": "Europe/Belgrade", "sys.boot_completed": "1",
    }
    if planted:
        props[CAMPAIGN_PROPERTY] = "1"
    return props


def recent_patch() -> str:
    """A security patch level of this month (so clean captures are not "outdated")."""
    return date.today().replace(day=1).isoformat()


def _getprop(props: dict[str, str]) -> str:
    return "".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items()))


def _apps(planted: bool) -> list[tuple[str, str | None, bool]]:
    """(package, installer, system)."""
    apps: list[tuple[str, str | None, bool]] = [(a, None, True) for a in SYSTEM_APPS]
    apps += [(a, "com.android.vending", False) for a in BENIGN_APPS]
    if planted:
        apps.append((NOVISPY_APP, "com.google.android.packageinstaller", False))
    return apps


def _package_dump(planted: bool) -> str:
    out = ["Packages:"]
    for i, (name, installer, system) in enumerate(_apps(planted)):
        code = f"/system/priv-app/{name.rsplit('.', 1)[1]}" if system else \
            f"/data/app/~~{_h(name)[:22]}==/{name}-{_h(name)[22:44]}=="
        out += [f"  Package [{name}] ({_h(name)[:7]}):",
                f"    userId={10100 + i}",
                f"    pkg=Package{{{_h(name)[:7]} {name}}}",
                f"    codePath={code}",
                f"    versionCode={100 + i} minSdk=28 targetSdk=34",
                f"    versionName=1.{i}.0",
                f"    flags=[ {'SYSTEM ' if system else ''}HAS_CODE ALLOW_CLEAR_USER_DATA ]",
                f"    timeStamp=2023-11-0{1 + i % 9} 09:14:11",
                f"    firstInstallTime=2023-11-0{1 + i % 9} 09:14:11",
                f"    lastUpdateTime=2023-12-0{1 + i % 9} 18:02:45"]
        if installer:
            out.append(f"    installerPackageName={installer}")
    return "\n".join(out) + "\n"


def dumpstate(planted: bool) -> str:
    bar = "-" * 79
    return (
        "========================================================\n"
        "== dumpstate: 2024-01-15 10:00:00\n"
        "========================================================\n\n"
        "Build: UP1A.231105.003\n"
        "------ SYSTEM PROPERTIES (getprop) ------\n"
        f"{_getprop(_props(planted))}"
        "------ 0.041s was the duration of 'SYSTEM PROPERTIES' ------\n"
        f"{android_more.processes(planted)}"
        f"{bar}\nDUMP OF SERVICE activity:\n  (nothing)\n"
        "--------- 0.010s was the duration of dumpsys activity, ending at: "
        "2024-01-15 10:00:02\n"
        f"{bar}\nDUMP OF SERVICE package:\n"
        "Database versions:\n  Internal:\n    sdkVersion=34 databaseVersion=3\n\n"
        f"{android_more.resolver_tables(planted)}\n"
        f"{_package_dump(planted)}"
        "--------- 0.300s was the duration of dumpsys package, ending at: "
        "2024-01-15 10:00:03\n"
        f"{bar}\nDUMP OF SERVICE accessibility:\n{_accessibility(planted)}"
        "--------- 0.004s was the duration of dumpsys accessibility, ending at: "
        "2024-01-15 10:00:04\n"
        f"{bar}\nDUMP OF SERVICE batterystats:\n{_batterystats(planted)}"
        "--------- 0.090s was the duration of dumpsys batterystats, ending at: "
        "2024-01-15 10:00:05\n"
        f"{android_more.services(planted)}"
    )


def _batterystats(planted: bool) -> str:
    """Battery history install/uninstall events and daily-stats updates; the planted
    variant shows an RCS Lab app installed and removed again."""
    events = [("+1h02m03s120ms", "pkginst", 10150, "com.whatsapp")]
    if planted:
        events += [("+2h10m00s004ms", "pkginst", 10160, RCS_APP),
                   ("+2h55m41s900ms", "pkgunin", 10160, RCS_APP)]
    history = "".join(f"  {t} (2) 100 status=discharging {k}={u}:\"{p}\"\n"
                      for t, k, u, p in events)
    more_history, more_daily = android_more.battery_extra(planted)
    history += more_history
    return ("Battery History (1% used, 12KB used of 4096KB, 42 strings using 3KB):\n"
            "                    0 (9) RESET:TIME: 2024-01-14-08-00-00\n" + history +
            "\nDaily stats:\n  Current start time: 2024-01-15-03-00-00\n" + more_daily +
            "  Daily from 2024-01-14-03-00-00 to 2024-01-15-03-00-00:\n"
            "    Update com.google.android.gms vers=234414044\n"
            "    Update com.android.chrome vers=609912233\n")


def _accessibility(planted: bool) -> str:
    talkback = ("com.google.android.marvin.talkback/"
                "com.google.android.accessibility.talkback.TalkBackService")
    services = [talkback] + ([f"{NOVISPY_SERVICE}/.MainService"] if planted else [])
    enabled = services[1:]
    return (
        "ACCESSIBILITY MANAGER (dumpsys accessibility)\n\ncurrentUserId=0\nUser state[\n"
        "  attributes:{id=0, touchExplorationEnabled=false, serviceHandlesDoubleTap=false}\n"
        "  installed services: {\n"
        + "".join(f"    {i} : {s}\n" for i, s in enumerate(services)) + "  }\n"
        "  Bound services:{}\n"
        f"  Enabled services:{{{', '.join('{' + e + '}' for e in enabled)}}}\n"
        "  Binding services:{}\n]\n"
    )


def tombstone(process: str, executable: str) -> str:
    return (
        "*** *** *** *** *** *** *** *** *** *** *** *** *** *** *** ***\n"
        "Build fingerprint: 'google/oriole/oriole:14/UP1A.231105.003/11010452:user/"
        "release-keys'\nRevision: 'MP1.0'\nABI: 'arm64'\n"
        "Timestamp: 2024-01-14 22:31:07.412345678+0100\nProcess uptime: 12s\n"
        f"Cmdline: {process}\n"
        f"pid: 4242, tid: 4251, name: {process[:15]}  >>> {executable} <<<\n"
        "uid: 10155\n"
        "signal 11 (SIGSEGV), code 1 (SEGV_MAPERR), fault addr 0x0000000000000010\n"
        "    x0  0000000000000000  x1  0000007fe0c3b2a0\n"
    )


def zip_files(files: Files) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            # a fixed member time (the phone's local time, as dumpstate writes it)
            zf.writestr(zipfile.ZipInfo(name, ZIP_TIME), data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def bugreport_files(planted: bool) -> Files:
    crash = (WYRMSPY_APP, "/system/bin/app_process64") if planted else \
        ("/system/bin/surfaceflinger", "/system/bin/surfaceflinger")
    return {
        "main_entry.txt": DUMPSTATE.encode(),
        "version.txt": b"2.0",
        DUMPSTATE: dumpstate(planted).encode(),
        "FS/data/tombstones/tombstone_00": tombstone(*crash).encode(),
        "FS/data/tombstones/tombstone_01": tombstone(
            "/vendor/bin/hw/android.hardware.camera.provider",
            "/vendor/bin/hw/android.hardware.camera.provider").encode(),
        "FS/data/anr/anr_2024-01-14-21-02-11-123": b"----- pid 1234 at 2024-01-14 -----\n",
        "FS/proc/meminfo": b"MemTotal:        7812345 kB\n",
        # dumpstate adds one mountinfo per mount namespace; init and system_server share one
        "FS/proc/1/mountinfo": android_fs.mountinfo(planted),
        "FS/proc/812/mountinfo": android_fs.mountinfo(planted, crlf=True),
    }


def bugreport_zip(planted: bool) -> bytes:
    return zip_files(bugreport_files(planted))


def _packages_json(planted: bool) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for name, installer, system in _apps(planted):
        sha256 = NOVISPY_APK_SHA256 if name == NOVISPY_APP else _h(name + ".apk")
        cert = NOVISPY_CERT if name == NOVISPY_APP else _h(name + ".cert")
        out.append({
            "name": name, "installer": installer or "null", "uid": 10100 + len(out),
            "disabled": False, "system": system, "third_party": not system,
            "files": [{
                "path": f"/data/app/{name}-1/base.apk", "local_name": "",
                "md5": _h(name, "md5"), "sha1": _h(name, "sha1"), "sha256": sha256,
                "sha512": _h(name, "sha512"), "error": "", "verified_certificate": True,
                "certificate": {"Md5": _h(cert, "md5"), "Sha1": _h(cert, "sha1"),
                                "Sha256": cert, "Subject": f"CN={name}",
                                "ValidFrom": "2021-01-01T00:00:00Z"},
                "certificate_error": "", "trusted_certificate": False,
            }],
        })
    return out


def _ps(planted: bool) -> str:
    rows = [("root", 1, 0, "init"), ("system", 812, 650, "system_server"),
            ("u0_a123", 3301, 650, "com.android.chrome"),
            ("u0_a150", 3412, 650, "com.whatsapp"), ("root", 402, 1, "/system/bin/logd")]
    if planted:  # and a kernel thread (in brackets) named as a Pegasus process
        rows += [("u0_a155", 4242, 650, NOVISPY_APP),
                 ("root", 77, 2, f"[{android_more.KTHREAD}]")]
    head = "USER           PID  PPID     VSZ    RSS WCHAN            ADDR S NAME\n"
    return head + "".join(f"{u:<12} {p:>5} {pp:>5} 1234567  89012 do_epoll_wait       0 S {n}\n"
                          for u, p, pp, n in rows)


def _files_json(planted: bool) -> list[dict[str, object]]:
    entries = [("/data/misc/perfetto-traces/trace", "-rw-r--r--"),
               ("/data/local/tmp/collector", "-rwxr-xr-x"),  # androidqf's own
               ("/sdcard/Download/invoice.pdf", "-rw-rw----"),
               ("/data/local/tmp/.studio", "drwxr-xr-x")]
    if planted:
        entries.append((CAMPAIGN_PATH, "-rwxr-xr-x"))
    return [{"path": p, "size": 4096 + i, "mode": m, "user_id": 2000, "group_id": 2000,
             "modified_time": 1705269600 + i * 60, "sha256": _h(p)}
            for i, (p, m) in enumerate(entries)]


def _tar_member(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 1705269600, 0o600
    return info.tobuf(format=tarfile.PAX_FORMAT) + data + b"\0" * (-len(data) % 512)


def backup_ab(planted: bool, encrypted: bool = False, password: str = "backup pw",  # noqa: S107 (a sample's)
              mms: bool = True) -> bytes:
    """An ``adb backup`` of the telephony provider with a few SMS (links included) and
    MMS as the provider writes them (``mms_body`` a string); ``encrypted``: AES-256 with
    ``password``, as Android's backup manager writes it."""
    # (received messages carry the time the sender's service centre stamped: date_sent)
    messages = [
        {"address": "+381601234567", "body": "See you at 8 at the cafe", "date": "1705180000000",
         "date_sent": "1705179998000", "type": "1", "read": "1"},
        {"address": "+381607654321", "body": "Your parcel: https://www.posta.rs/track?id=RR1",
         "date": "1705190000000", "date_sent": "1705189997000", "type": "1", "read": "1"},
    ]
    if planted:
        messages.append({"address": "+381600000001", "date": "1705200000000",
                         "date_sent": "1705199999000", "type": "1",
                         "body": f"Urgent: read this https://{PREDATOR_DOMAIN}/a1b2c3 now",
                         "read": "0"})
    sms_blob = zlib.compress(json.dumps(messages).encode())
    mms_blob = zlib.compress(json.dumps(android_more.mms(planted)).encode())
    tar = (_tar_member("apps/com.android.providers.telephony/_manifest", b"manifest\n")
           + _tar_member("apps/com.android.providers.telephony/d_f/000000_sms_backup", sms_blob)
           + (_tar_member("apps/com.android.providers.telephony/d_f/000000_mms_backup",
                          mms_blob) if mms else b"")
           + b"\0" * 1024)
    header = b"ANDROID BACKUP\n5\n1\n" + (b"AES-256\n" if encrypted else b"none\n")
    if encrypted:
        from spywall.android.ab_crypto import encrypt

        return header + encrypt(zlib.compress(tar), password, 5)
    return header + zlib.compress(tar)


def androidqf_files(planted: bool, with_bugreport: bool = True) -> Files:
    settings_global = {"adb_enabled": "0", "package_verifier_enable": "0" if planted else "1",
                       "verifier_verify_adb_installs": "1", "auto_time": "1"}
    files: Files = {
        "acquisition.json": json.dumps({"uuid": "6f1c2f0e-0000-4000-8000-000000000001",
                                        "androidqf_version": "1.7.0",
                                        "started": "2024-01-15T10:00:00Z",
                                        "adb_host_public_key": f"{android_more.ADB_KEY} "
                                                               f"{android_more.ADB_USER}\n"
                                        }).encode(),
        "packages.json": json.dumps(_packages_json(planted), indent=1).encode(),
        "ps.txt": _ps(planted).encode(),
        "getprop.txt": _getprop(_props(planted)).encode(),
        "settings_global.txt": "".join(f"{k}={v}\n" for k, v in settings_global.items()).encode(),
        "settings_secure.txt": b"android_id=0123456789abcdef\ninstall_non_market_apps=0\n",
        "settings_system.txt": b"screen_brightness=102\n",
        "files.json": json.dumps(_files_json(planted)).encode(),
        "root_binaries.json": json.dumps(["/system/xbin/su"] if planted else []).encode(),
        "mounts.json": android_fs.mounts_json(planted),
        # androidqf copies the phone's log files under logs/, with their paths
        "logs/data/system/uiderrors.txt": b"Last error: 2024-01-14 20:11:02\n",
        "logs/data/anr/anr_2024-01-14-21-02-11-123": b"----- pid 1234 at 2024-01-14 -----\n",
        **android_fs.browser_history(planted, PREDATOR_DOMAIN),
        **android_fs.magisk_modules(planted),
    }
    files["backup.ab"] = backup_ab(planted)
    if with_bugreport:
        files["bugreport.zip"] = bugreport_zip(planted)
    return files


def androidqf_zip(planted: bool) -> bytes:
    """androidqf zips hold the files under a folder named by the acquisition uuid."""
    return zip_files({f"6f1c2f0e-0000-4000-8000-000000000001/{k}": v
                 for k, v in androidqf_files(planted).items()})


def fake_certificate(name: str) -> bytes:
    """DER-shaped bytes standing for a signing certificate (only its hash matters)."""
    body = b"\x06\x03\x55\x04\x03\x0c" + bytes([len(name)]) + name.encode()
    return b"\x30\x82" + len(body).to_bytes(2, "big") + body


def _u32(b: bytes) -> bytes:
    return len(b).to_bytes(4, "little") + b


def signing_block(certs: list[bytes], scheme: int = 0x7109871A) -> bytes:
    """An APK Signing Block with one signer holding ``certs`` (signatures left empty)."""
    digests = _u32(_u32(b"\x03\x01\x00\x00" + _u32(b"\0" * 32)))
    signed = digests + _u32(b"".join(_u32(c) for c in certs)) + _u32(b"")
    signer = _u32(signed) + _u32(b"") + _u32(b"public key")
    value = _u32(_u32(signer))
    pairs = (len(value) + 4).to_bytes(8, "little") + scheme.to_bytes(4, "little") + value
    size = (len(pairs) + 24).to_bytes(8, "little")
    return size + pairs + size + b"APK Sig Block 42"


def apk(name: str, certs: list[bytes] | None = None) -> bytes:
    """A minimal APK-shaped zip (not an installable app), v2-signed with ``certs``."""
    data = zip_files({"AndroidManifest.xml": f"<manifest package='{name}'/>".encode(),
                 "classes.dex": b"dex\n035\x00" + hashlib.sha256(name.encode()).digest()})
    if not certs:
        return data
    block = signing_block(certs)
    eocd = data.rfind(b"PK\x05\x06")
    cd = int.from_bytes(data[eocd + 16 : eocd + 20], "little")
    moved = (cd + len(block)).to_bytes(4, "little")
    return data[:cd] + block + data[cd:eocd + 16] + moved + data[eocd + 20:]


def write_tree(files: Files, root: Path) -> Path:
    for name, data in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root
