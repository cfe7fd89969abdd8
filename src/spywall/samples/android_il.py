"""Android Intrusion Logging exports as androidqf collects them into ``intrusion_logs/``:
JSON lines whose key is the event type (``dns_event``, ``connect_event``,
``security_event``) and whose value is the platform's record (DnsEvent / ConnectEvent of
network logging, SecurityLog events with the tag as a key holding its payload);
addresses written as Java prints an InetAddress (``/1.2.3.4``, ``host/1.2.3.4``); network
times in milliseconds, security times in nanoseconds. Two daily exports overlap (one
event in both), one export is zipped, and one line is cut short.

Planted (bundled sets): a DNS query for Predator's domain answered by a NoviSpy server,
a connection to that server by NoviSpy's app, RCS Lab's app started and installed, a
file pushed over adb to the campaign path, a CA certificate installed.
"""

from __future__ import annotations

import io
import json
import zipfile

from spywall.samples import android as gen

NOVISPY_IP = "176.223.111.131"  # amnesty_novispy.stix2
T0 = 1705269600  # 2024-01-14 22:00:00 UTC
APK_SHA256 = "5f" * 32


def _line(kind: str, event: dict[str, object]) -> bytes:
    return json.dumps({kind: event}, separators=(",", ":")).encode() + b"\n"


def _security(n: int, at: int, tag: str, payload: object) -> bytes:
    return _line("security_event", {"event_id": n, "event_time": at * 1_000_000_000 + 123,
                                    tag: payload})


def exports(planted: bool) -> gen.Files:
    """The files of ``intrusion_logs/`` (names relative to the capture)."""
    day1 = [
        _line("dns_event", {"event_id": 1, "hostname": "www.google.com",
                            "ip_addresses": ["/142.250.180.4", "/2a00:1450:4002:410::2004"],
                            "total_resolved_address_count": 2,
                            "package_name": "com.android.chrome", "event_time": T0 * 1000}),
        _line("connect_event", {"event_id": 2, "ip_address": "/142.250.180.4", "port": 443,
                                "package_name": "com.android.chrome",
                                "event_time": T0 * 1000 + 40}),
        _security(3, T0 + 5, "app_process_start",
                  {"process": "com.whatsapp", "start_time": (T0 + 5) * 1000, "uid": 10201,
                   "pid": 5120, "seinfo": "default:targetSdkVersion=34:complete",
                   "apk_hash": "0a" * 32}),
        _security(4, T0 + 9, "keyguard_dismissed", {}),
        _line("connect_event", {"event_id": 5, "ip_address": "ip6-localhost/::1",
                                "port": 5037, "package_name": "com.android.shell",
                                "event_time": T0 * 1000 + 90}),
    ]
    day2 = [day1[-1]]  # (the exports overlap: this event is in both files)
    if planted:
        day2 += [
            _line("dns_event", {"event_id": 6, "hostname": f"cdn.{gen.PREDATOR_DOMAIN}",
                                "ip_addresses": [f"cdn.{gen.PREDATOR_DOMAIN}/{NOVISPY_IP}"],
                                "total_resolved_address_count": 1,
                                "package_name": "com.android.chrome",
                                "event_time": (T0 + 3600) * 1000}),
            _line("connect_event", {"event_id": 7, "ip_address": f"/{NOVISPY_IP}",
                                    "port": 8443, "package_name": gen.NOVISPY_APP,
                                    "event_time": (T0 + 3601) * 1000}),
            _security(8, T0 + 3500, "package_installed",
                      {"package_name": gen.RCS_APP, "version_code": 12, "user_id": 0}),
            _security(9, T0 + 3510, "app_process_start",
                      {"process": f"{gen.RCS_APP}:remote", "start_time": (T0 + 3510) * 1000,
                       "uid": 10250, "pid": 6001, "seinfo": "default:targetSdkVersion=28",
                       "apk_hash": APK_SHA256}),
            _security(10, T0 + 3400, "adb_sync_send_file", {"path": gen.CAMPAIGN_PATH}),
            _security(11, T0 + 3420, "cert_authority_installed",
                      {"success": True, "subject": "CN=Corp Proxy Root", "user_id": 0}),
        ]
    day2.append(b'{"dns_event":{"event_id":12,"hostname":"cut.sh')  # cut short
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("intrusion_log_2024-01-13.txt", gen.ZIP_TIME),
                    _security(13, T0 - 86_400, "os_startup",
                              {"verified_boot_state": "green", "dm_verity_mode": "enforcing"}))
    return {
        "intrusion_logs/intrusion_log_2024-01-14.txt": b"".join(day1),
        "intrusion_logs/intrusion_log_2024-01-15.txt": b"".join(day2),
        "intrusion_logs/older/intrusion_logs_2024-01-13.zip": buf.getvalue(),
    }
