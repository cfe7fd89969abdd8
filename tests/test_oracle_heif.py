"""HEIF/AVIF item model against an independent reader: libheif's ``heif-info -d``.

``heif-info --dump-boxes`` (Debian package libheif-examples) prints libheif's own parse of
every box. For every HEIF/AVIF sample (crafted and Pillow-written) the items and their
types, the primary item, the ``iref`` references, the ``ipco`` properties the detectors
read (``ispe`` size, ``pixi`` bits, ``auxC`` type, ``av1C`` depth), the ``ipma``
associations and the ``iloc`` extents must be what spywall read. Skipped, with the reason,
when heif-info is not installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.formats import heif
from spywall.formats.base import ParseContext
from spywall.limits import Budget
from spywall.samples import all_samples
from spywall.samples import heif as hs

HEIF_INFO = shutil.which("heif-info")
SAMPLES = [s for s in all_samples() if s.data[4:8] == b"ftyp"
           and s.data[8:12] in (b"heic", b"avif", b"mif1", b"heix")]
_BOX = re.compile(r"^[| ]*Box: (\w{4}) -----")
_FIELD = re.compile(r"^[| ]*([^:]+): ?(.*)$")


def dump(path: Path) -> dict[str, Any]:
    """libheif's reading, from the dump: items, refs, properties, associations, extents."""
    proc = subprocess.run([HEIF_INFO or "heif-info", "-d", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    out: dict[str, Any] = {"items": {}, "refs": [], "props": [], "assoc": {}, "extents": {},
                           "primary": None}
    box, in_ipco, item, cur = "", False, None, None
    for line in proc.stdout.splitlines():
        m = _BOX.match(line)
        if m:
            box = m.group(1)
            depth = line.index("Box:") // 2
            if box == "ipco":
                in_ipco = True
            elif in_ipco and depth == 3:
                cur = {"type": box}
                out["props"].append(cur)
            elif depth <= 2:
                in_ipco = False
            continue
        f = _FIELD.match(line)
        if f is None:
            continue
        key, value = f.group(1).strip(), f.group(2).strip()
        if box == "pitm" and key == "item_ID":
            out["primary"] = int(value)
        elif box == "infe" and key == "item_ID":
            item = int(value)
        elif box == "infe" and key == "item_type" and item is not None:
            out["items"][item] = value
        elif box == "iref" and key.startswith("reference with type"):
            r = re.match(r"reference with type '(\w+)' from ID", key)
            assert r, line
            src, _, to = value.partition(" to IDs:")
            out["refs"].append((r.group(1), int(src), tuple(int(x) for x in to.split())))
        elif box == "ipma" and key == "associations for item ID":
            item = int(value)
            out["assoc"][item] = []
        elif box == "ipma" and key == "property index" and item is not None:
            out["assoc"][item].append(int(value.split()[0]))
        elif box == "iloc" and key == "item ID":
            item = int(value)
        elif box == "iloc" and key == "base_offset":
            base = int(value)
        elif box == "iloc" and key == "extents" and item is not None:
            pairs = [tuple(int(x) for x in e.split(",")) for e in value.split()]
            out["extents"][item] = tuple((base + o, n) for o, n in pairs)
        elif in_ipco and cur is not None:
            cur[key] = value
    return out


def _av1_depth(p: dict[str, str]) -> int:
    return 12 if p.get("twelve_bit") == "1" else 10 if p.get("high_bitdepth") == "1" else 8


@pytest.mark.skipif(HEIF_INFO is None,
                    reason="heif-info not installed (apt-get install libheif-examples)")
@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_heif_samples_agree_with_libheif(sample: Any, tmp_path: Path) -> None:
    path = tmp_path / sample.name
    path.write_bytes(sample.data)
    check(sample.data, dump(path))


def check(data: bytes, theirs: dict[str, Any]) -> None:
    s = heif.parse(data, ParseContext(Budget())).structure
    assert isinstance(s, heif.HeifFile)
    assert dict(s.items) == theirs["items"]
    assert s.primary == theirs["primary"]
    assert sorted((r.type, r.from_id, r.to_ids) for r in s.references) == sorted(theirs["refs"])
    assert {k: list(v) for k, v in s.associations.items()} == theirs["assoc"]
    mine_extents = {i: loc.extents for i, loc in s.locations.items()}
    # The dump prints lengths as stored; a zero length (method 0) means "to the end of
    # the file" when libheif reads the data, which is what spywall records.
    size = len(data)
    assert mine_extents == {i: tuple((o, n or size - o) for o, n in ext)
                            for i, ext in theirs["extents"].items()}
    assert [p.type for p in s.properties] == [p["type"] for p in theirs["props"]]
    for mine, p in zip(s.properties, theirs["props"], strict=True):
        if p["type"] == "ispe":
            assert (mine.width, mine.height) == (int(p["image width"]),
                                                 int(p["image height"]))
        elif p["type"] == "pixi":
            assert mine.bits == tuple(int(b) for b in p["bits_per_channel"].split(","))
        elif p["type"] == "auxC":
            assert mine.aux_type == p["aux type"]
        elif p["type"] == "av1C":
            assert mine.bits == (_av1_depth(p),)


def test_heif_samples_cover_every_heif_detector() -> None:
    expected = set().union(*(s.expected for s in SAMPLES))
    assert {"heif-mask-extent", "heif-overlay-alpha-depth", "heif-multiple-alpha"} <= expected


ITEM = st.tuples(st.sampled_from(["hvc1", "av01", "mski", "grid", "iden", "iovl"]),
                 st.integers(0, 5000), st.integers(0, 5000),
                 st.lists(st.integers(1, 16), min_size=1, max_size=4),
                 st.booleans(), st.binary(max_size=40))


@pytest.mark.skipif(HEIF_INFO is None,
                    reason="heif-info not installed (apt-get install libheif-examples)")
@settings(max_examples=25, deadline=None)
@given(st.lists(ITEM, min_size=1, max_size=5), st.data())
def test_random_item_models_agree_with_libheif(items: list[Any], data: st.DataObject
                                               ) -> None:
    built = [hs.Item(i + 1, t, (hs.ispe(w, h), hs.pixi(*bits))
                     + ((hs.ALPHA,) if alpha else ()), payload)
             for i, (t, w, h, bits, alpha, payload) in enumerate(items)]
    ids = list(range(1, len(items) + 1))
    refs = [hs.Ref(data.draw(st.sampled_from(["auxl", "dimg", "mask", "thmb"])),
                   data.draw(st.sampled_from(ids)),
                   tuple(data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3))))
            for _ in range(data.draw(st.integers(0, 3)))]
    blob = hs.heif(built, refs, brand=data.draw(st.sampled_from(["heic", "avif"])))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.heic"
        path.write_bytes(blob)
        check(blob, dump(path))
