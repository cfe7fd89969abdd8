"""The engine on hostile input: bombs, depth, hostile names, truncation, time."""

from __future__ import annotations

import time
import tracemalloc

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spywall.engine import scan_bytes, scan_path, sniff
from spywall.limits import Limits, MiB
from spywall.samples.containers import jpeg, png, zip_bomb, zip_of

SMALL = Limits(max_total_decompressed=64 * MiB, max_stream_bytes=32 * MiB, seconds=10)


def test_zip_bomb_is_an_error_entry_with_bounded_memory() -> None:
    bomb = zip_bomb(levels=2, width=10, leaf_mib=20)  # 2 GB unpacked
    tracemalloc.start()
    t0 = time.monotonic()
    subject = scan_bytes(bomb, "bomb.zip", SMALL)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.monotonic() - t0 < 120  # a hang guard, not a speed test
    assert any(e.code == "limit" for e in subject.errors), subject.errors
    assert peak < 200 * MiB


def test_depth_limit() -> None:
    data = jpeg() + zip_of({"x": b"y"})
    for i in range(12):
        data = zip_of({f"level{i}.zip": data})
    subject = scan_bytes(data, "deep.zip", Limits(max_depth=5))
    assert any(e.code == "limit" and "nested more than 5 deep" in e.message
               for e in subject.errors)
    # Fail closed: the input is not clean, it was not examined to the bottom.
    assert [f.rule for f in subject.findings] == ["incomplete-examination"]
    assert "nested more than 5 deep" in subject.findings[0].message
    old = scan_bytes(data, "deep.zip", Limits(max_depth=5, allow_incomplete=True))
    assert not old.findings


def test_nested_finding_path_and_hash() -> None:
    inner = jpeg() + zip_of({"stage.so": b"\x7fELF"})
    data = zip_of({"a/photo.jpg": inner})
    subject = scan_bytes(data, "outer.zip")
    (f,) = subject.findings
    assert f.path == "outer.zip!/a/photo.jpg"
    import hashlib

    assert f.object_sha256 == hashlib.sha256(inner).hexdigest()
    assert subject.objects >= 2


def test_traversal_names_are_only_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = zip_of({"../../../../tmp/spywall-escape": png(), "/etc/evil": png()})
    subject = scan_bytes(data, "t.zip")
    assert not subject.errors
    assert not (tmp_path / "spywall-escape").exists()
    import os

    assert not os.path.exists("/tmp/spywall-escape")


def test_bad_member_does_not_stop_the_walk() -> None:
    good = zip_of({"a.jpg": jpeg() + zip_of({"s": b"x"}), "b.bin": b"z" * 5000})
    # corrupt b.bin's deflate data (its local data follows its header name)
    at = good.index(b"b.bin") + len(b"b.bin")
    broken = good[:at] + b"\xff\xff\xff\xff" + good[at + 4 :]
    subject = scan_bytes(broken, "half.zip")
    assert [f.rule for f in subject.findings] == ["appended-archive"]
    assert any(e.path.endswith("b.bin") for e in subject.errors)


def test_file_size_cap(tmp_path) -> None:  # type: ignore[no-untyped-def]
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * 4096)
    subject = scan_path(str(big), Limits(max_file_bytes=1024))
    assert subject.errors[0].code == "limit"


def test_time_budget() -> None:
    data = zip_of({f"m{i}.jpg": jpeg() for i in range(300)})
    subject = scan_bytes(data, "slow.zip", Limits(seconds=0.0))
    assert any(e.code == "limit" and "time" in e.message for e in subject.errors)


def test_sniff_by_content_not_name() -> None:
    assert sniff(jpeg()) == "jpeg"
    assert sniff(png()) == "png"
    assert sniff(zip_of({"a": b"b"})) == "zip"
    assert sniff(b"GIF89a-not-really") != "jpeg"


def test_truncations_never_crash() -> None:
    for sample in (jpeg(), png(), zip_of({"a.png": png()})):
        for cut in range(0, len(sample), 7):
            subject = scan_bytes(sample[:cut], "cut")
            assert subject.sha256 is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048), st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n",
                                                  b"PK\x03\x04", b"PK\x05\x06", b""]))
def test_random_input_is_reported_not_raised(body: bytes, magic: bytes) -> None:
    subject = scan_bytes(magic + body, "random", SMALL)
    assert all(e.code in {"malformed", "truncated", "limit", "unsupported"} for e in subject.errors)


MUTABLE = zip_of({"a.jpg": jpeg() + zip_of({"s": b"x"}), "b.png": png()})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(MUTABLE) - 1), st.integers(0, 255)),
                min_size=1, max_size=8))
def test_mutated_containers(edits: list[tuple[int, int]]) -> None:
    base = bytearray(MUTABLE)
    for i, value in edits:
        base[i] = value
    subject = scan_bytes(bytes(base), "mutated.zip", SMALL)
    assert subject.format is not None


def test_hard_deadline_stops_a_runaway_parser() -> None:
    from spywall.formats import png as png_mod

    def spin(data: bytes, ctx: object) -> object:
        while True:
            pass

    spec = png_mod.SPEC  # frozen struct: patch the field for this test only
    msgspec.structs.force_setattr(spec, "parse", spin)
    try:
        t0 = time.monotonic()
        subject = scan_bytes(png(), "spin.png", Limits(seconds=0.2))
        assert time.monotonic() - t0 < 120  # a hang guard, not a speed test
        assert any("hard time limit" in e.message for e in subject.errors), subject.errors
    finally:
        msgspec.structs.force_setattr(spec, "parse", png_mod.parse)
