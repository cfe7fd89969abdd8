"""check-android records carry MVT's field names and value forms (the results folder's
``<module>.json`` is a drop-in for MVT's)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from spywall.android.check import MODULES, check_capture
from spywall.android.common import iso_any, mvt_form
from spywall.iocs import IocIndex
from spywall.samples import android as gen


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load()


def _only(*names: str) -> tuple[object, ...]:
    return tuple(m for m in MODULES if m.name in names)


@pytest.mark.parametrize("value", [1705180000000, 1705181000, 1705181000.25, 1700000000.123456])
def test_mvt_form_is_mvts_datetime_text(value: float) -> None:
    seconds = value / 1000 if value > 1e11 else value
    want = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    ts = iso_any(value)
    assert ts is not None
    assert mvt_form(ts) == want


def test_sms_fields_as_mvt(tmp_path: Path, index: IocIndex) -> None:
    path = tmp_path / "backup.ab"
    path.write_bytes(gen.backup_ab(True))
    out = check_capture(path, index, modules=_only("sms"))  # type: ignore[arg-type]
    recs = {r.data["body"]: r.data for r in out.ctx.records["sms"]}
    sms = recs[f"Urgent: read this https://{gen.PREDATOR_DOMAIN}/a1b2c3 now"]
    assert {
        k: sms[k] for k in ("address", "date", "type", "read", "direction", "isodate", "links")
    } == {
        "address": "+381600000001",
        "date": "1705200000000",
        "type": "1",
        "read": "0",
        "direction": "received",
        "isodate": "2024-01-14 02:40:00.000000",
        "links": f"https://{gen.PREDATOR_DOMAIN}/a1b2c3",
    }
    mms = recs["Your invoice: https://mobnetlink1.com/inv/77"]
    assert (mms["msg_box"], mms["date_sent"], mms["direction"], mms["address"]) == (
        "1",
        "0",
        "received",
        "+381600000002",
    )
    assert "mms_addresses" not in mms  # a list: not a record field
    assert recs["See you at 8 at the cafe"]["links"] == ""
