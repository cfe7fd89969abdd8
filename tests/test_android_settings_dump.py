"""``dumpsys settings`` (bugreport, androidqf dumpsys.txt): every namespace and user,
fields with spaces and line breaks, change histories and their years, awkward input."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.android import settings_dump as sd
from spywall.android.check import MODULES, check_capture
from spywall.iocs import IocIndex
from spywall.samples import android as gen

END = datetime(2024, 1, 15, 10, 0, 20)


def _body(planted: bool) -> tuple[str, datetime | None]:
    text = gen.dumpstate(planted)
    at = text.index("DUMP OF SERVICE settings:")
    body = text[at:].split("\n", 1)[1].split("\n---------", 1)[0]
    return body, sd.dumped_at(text[at:])


def test_every_namespace_user_and_field() -> None:
    body, end = _body(True)
    assert end == END
    got = sd.settings(body, end)
    assert [(s.namespace, s.user, s.fields["name"]) for s in got] == [
        ("config", "0", "runtime_native/usap_pool_enabled"),
        ("global", "0", "adb_enabled"),
        ("global", "0", "device_name"),
        ("global", "0", "package_verifier_enable"),
        ("global", "0", "wifi_networks_available_notification_on"),
        ("secure", "0", "enabled_notification_listeners"),
        ("secure", "0", "accessibility_enabled"),
        ("system", "10", "screen_brightness"),
    ]
    by = {s.fields["name"]: s for s in got}
    assert by["device_name"].fields == {
        "_id": "40",
        "name": "device_name",
        "pkg": "com.android.settings",
        "value": "Ana's Pixel 8",
        "default": "Pixel 8",
        "defaultSystemSet": "true",
        "tag": "null",
    }
    assert by["enabled_notification_listeners"].fields["value"] == (
        "com.android.a/.B:\ncom.android.c/.D"
    )
    assert by["wifi_networks_available_notification_on"].fields == {
        "_id": "60",
        "name": "wifi_networks_available_notification_on",
        "pkg": "android",
        "value": "1",
        "isValuePreservedInRestore": "false",
    }
    hist = by["package_verifier_enable"].history
    assert [(c.time, c.mode, c.old_value, c.new_value, c.package) for c in hist] == [
        ("2023-03-02T08:00:00.000000", "insert", "null", "1", "android"),  # the year before
        ("2024-01-14T21:03:11.482000", "update", "1", "0", "com.android.shell"),
    ]


@pytest.mark.parametrize(
    ("raw", "end", "want"),
    [
        ("01-15 10:00:20.000", END, "2024-01-15T10:00:20.000000"),
        ("01-15 10:00:21.000", END, "2023-01-15T10:00:21.000000"),
        ("02-29 12:00:00.5", datetime(2025, 1, 1), "2024-02-29T12:00:00.500000"),
        ("02-29 12:00:00", datetime(2023, 6, 1), None),  # neither 2023 nor 2022 has one
        ("13-01 00:00:00", END, None),
        ("01-14 21:03:11", None, None),
        ("garbage", END, None),
    ],
)
def test_history_years(raw: str, end: datetime | None, want: str | None) -> None:
    assert sd.resolve(raw, end) == want


def test_split_fields_keeps_order_and_spaces() -> None:
    assert sd.split_fields("_id:1 name:a b value:x name:y", sd.SETTING_KEYS) == {
        "_id": "1",
        "name": "a b",
        "value": "x name:y",
    }
    assert sd.split_fields("name:no id", sd.SETTING_KEYS) == {}


def test_truncated_dump() -> None:
    body, end = _body(True)
    cut = body[: body.index("newValue:0") + len("newValue:0")]  # cut inside a history line
    got = sd.settings(cut, end)
    assert got[-1].fields["name"] == "package_verifier_enable"
    assert got[-1].history[-1].new_value == "0"  # (as far as it goes)
    assert sd.settings("_id:1 name:x value:1\n", end) == []  # no namespace heading


def test_module_flags_and_records(tmp_path: Path) -> None:
    index = IocIndex.load()
    path = tmp_path / "br.zip"
    path.write_bytes(gen.bugreport_zip(True))
    mods = tuple(m for m in MODULES if m.name == "dumpsys_settings")
    out = check_capture(path, index, modules=mods)
    [f] = out.report.all_findings()
    assert (f.rule, f.detail["value"], f.location.timestamp) == (
        "android-setting-package-verifier-enable",
        "0",
        "2024-01-14T21:03:11.482000",
    )
    recs = {r.data["name"]: r for r in out.ctx.records["dumpsys_settings"]}
    rec = recs["package_verifier_enable"]
    assert (rec.data["last_change_package"], rec.data["history"], rec.data["user"]) == (
        "com.android.shell",
        2,
        "0",
    )
    path.write_bytes(gen.bugreport_zip(False))
    assert check_capture(path, index, modules=mods).report.all_findings() == []


_PIECES = [
    *"_id:name vlue pkgHistory()time:-0123 \n",
    "GLOBAL SETTINGS (user 0)\n",
    "_id:",
    " value:",
    "  History (1):\n",
    "    time:01-02 03:04:05.6 ",
    "---------",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=600).map("".join))
def test_never_raises(text: str) -> None:
    start = time.monotonic()
    sd.settings(text, END)
    assert time.monotonic() - start < 120  # a hang guard
