"""androidqf's files.json in the result folder as MVT's files module (AQFFiles) writes
its timeline: one row a distinct access, modification and change time of each file (its
event the MACB letters of the times equal to the row's; B never known), a file's repeated
rows written once, times as ``datetime.fromtimestamp`` gives them (0 is the epoch, a
fraction rounded to the microsecond), read back by the csv module. MVT's own run on
such a capture (2026.10.26) gave the same rows; the oracle here is that rule, written
out independently of spywall's code."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

from spywall.cli import main
from spywall.samples import android as gen

BASE = 1705269600  # 2024-01-14 22:00:00 UTC


def _entry(path: str, m: object, a: object, c: object, **extra: object) -> dict[str, object]:
    """A files.json entry as androidqf's collector writes one (find.go's fields)."""
    out: dict[str, object] = {
        "path": path, "size": 4096, "mode": "-rw-r--r--", "user_id": 0,
        "user_name": "root", "group_id": 0, "group_name": "root", "changed_time": c,
        "modified_time": m, "access_time": a, "error": "", "context": "u:object_r:x:s0",
        "sha1": "", "sha256": "", "md5": ""}
    out.update(extra)
    return {k: v for k, v in out.items() if v is not _MISSING}


_MISSING = object()

ENTRIES = [
    _entry("/sdcard/same", BASE, BASE, BASE),  # one row, MAC-
    _entry("/sdcard/distinct", BASE + 1, BASE + 3, BASE + 2),  # three rows
    _entry("/sdcard/ma", BASE + 5, BASE + 5, BASE + 9),
    _entry("/sdcard/mc", BASE + 5, BASE + 7, BASE + 5),
    _entry("/sdcard/ac", BASE + 4, BASE + 8, BASE + 8),
    _entry("/sdcard/zero", BASE, 0, 0),  # the epoch, as MVT writes it
    # fractions: .5000001 rounds to .500000, equal to the access time
    _entry("/sdcard/frac", BASE + 0.5000001, BASE + 0.5, BASE + 0.25),
    _entry("/sdcard/same", BASE, BASE, BASE, size=1),  # listed twice: its rows once
    _entry("/sdcard/nocontext", BASE + 20, BASE + 20, BASE + 21, context=_MISSING),
    # MVT stops its whole timeline at a missing or null time (KeyError, TypeError);
    # spywall writes the rows of the times there are
    _entry("/sdcard/noaccess", BASE + 30, _MISSING, BASE + 31),
    _entry("/sdcard/nulltime", None, BASE + 40, BASE + 40),
    _entry("/sdcard/texttime", BASE + 50, "yesterday", BASE + 50),
]


def _mvt(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _expected() -> list[tuple[str, str, str]]:
    """(time, MACB, path) of each row, by MVT's rule."""
    rows: dict[tuple[str, str, str], None] = {}
    for e in ENTRIES:
        times = {}
        for letter, key in (("M", "modified_time"), ("A", "access_time"),
                            ("C", "changed_time")):
            v = e.get(key)
            if isinstance(v, int | float):
                times[letter] = _mvt(v)
        for t in set(times.values()):
            macb = "".join(x if times.get(x) == t else "-" for x in "MAC") + "-"
            rows[(t, macb, str(e["path"]))] = None
    return list(rows)


def test_files_timeline_rows_as_mvt(tmp_path: Path) -> None:
    files = gen.androidqf_files(False, with_bugreport=False)
    files["files.json"] = json.dumps(ENTRIES).encode()
    ev = gen.write_tree(files, tmp_path / "qf")
    out = tmp_path / "out"
    assert main(["check-android", str(ev), "-q", "-f", "json", "-o", str(out)]) in (0, 1)
    with (out / "timeline.csv").open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.reader(fh, escapechar="\\") if r[1] == "AQFFiles"]
    got = [(r[0], r[2], json.loads(r[3])["path"]) for r in rows]
    want = _expected()
    assert sorted(got) == sorted(want)
    assert len(got) == 20  # (counted by hand: the rule above is not spywall's code)
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert ("1970-01-01 00:00:00.000000", "-AC-", "/sdcard/zero") in got
    assert ("2024-01-14 22:00:00.500000", "MA--", "/sdcard/frac") in got
    # the module's JSON: one item a file entry, its times in MVT's form
    items = json.loads((out / "aqf_files.json").read_text(encoding="utf-8"))
    assert len(items) == len(ENTRIES)
    zero = next(i for i in items if i["path"] == "/sdcard/zero")
    assert zero["access_time"] == zero["changed_time"] == "1970-01-01 00:00:00.000000"
    assert next(i for i in items if i["path"] == "/sdcard/texttime")[
        "access_time"] == "yesterday"
