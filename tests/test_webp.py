"""WebP / VP8L: table-size simulation, bit reading, sub-image decoding, the BLASTPASS detector."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from spywall.engine import scan_bytes
from spywall.errors import TruncatedError
from spywall.formats import huffman_tables as ht
from spywall.formats import vp8l, webp
from spywall.formats.base import ParseContext
from spywall.limits import Budget
from spywall.samples import webp as sw
from spywall.samples.containers import zip_of

RULE = "webp-huffman-overflow"


def parse(data: bytes) -> tuple[webp.WebP, list[str]]:
    p = webp.parse(data, ParseContext(Budget()))
    assert isinstance(p.structure, webp.WebP)
    return p.structure, p.warnings


def rules(data: bytes) -> list[str]:
    return [f.rule for f in scan_bytes(data, "x.webp").findings]


# -- the table-size simulation -----------------------------------------------------------
@pytest.mark.parametrize(("hist", "size", "valid"), [
    (sw.GREEN, 654, True), (sw.RED, 630, True), (sw.DISTANCE, 414, False),
])
def test_known_crafted_histograms(hist: tuple[int, ...], size: int, valid: bool) -> None:
    sim = ht.simulate_histogram(hist)
    assert (sim.size, sim.valid) == (size, valid)


def test_budgets_and_blocks() -> None:
    assert vp8l.block_size(0) == 2954
    assert vp8l.block_size(11) == 2954 + 2050
    assert [vp8l.budget(j, 0) for j in range(5)] == [654, 630, 630, 630, 410]
    assert vp8l.budget(0, 6) == 654 + 64
    assert vp8l.budget(4, 6) == 410


@pytest.mark.parametrize(("hist", "problem"), [
    ([0] * 16, "no symbol"),
    ([0, 3], "3 codes of length 1"),
    ([0, 1, 3], "over-subscribed"),
    ([0, 1, 1], "incomplete"),
])
def test_rejected_trees(hist: list[int], problem: str) -> None:
    sim = ht.simulate_histogram(hist)
    assert not sim.valid
    assert problem in sim.problem


def test_single_symbol_builds_the_root_only() -> None:
    assert ht.simulate_histogram([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]) == \
        ht.TableSim(256, True)


def test_over_subscribed_after_second_level_keeps_the_written_size() -> None:
    # 256 codes of length 9 fill half the space; 300 more of length 10 over-subscribe
    # it, but the length-9 second-level tables were written first.
    sim = ht.simulate_histogram([0] * 9 + [256, 300])
    assert not sim.valid
    assert sim.size > 256


# -- canonical decoding and the bit reader ------------------------------------------------
def test_decoder_round_trip() -> None:
    lengths = [2, 2, 3, 3, 3, 4, 5, 5] + [0] * 4
    assert ht.simulate(lengths).valid
    dec = ht.decoder(lengths)
    rng = random.Random(7)
    syms = [rng.choice([s for s, n in enumerate(lengths) if n]) for _ in range(300)]
    w = sw.VP8LWriter()
    codes = _canonical(lengths)
    for s in syms:
        code, n = codes[s]
        w.put(int(f"{code:0{n}b}"[::-1], 2), n)
    data = w.getvalue(pad=0)
    br = ht.BitReader(data, 0, len(data))
    assert [br.decode(dec) for _ in syms] == syms
    with pytest.raises(TruncatedError):
        br.read(16)


def _canonical(lengths: list[int]) -> dict[int, tuple[int, int]]:
    out: dict[int, tuple[int, int]] = {}
    code, prev = 0, 0
    for n, s in sorted((n, s) for s, n in enumerate(lengths) if n):
        code <<= n - prev
        prev = n
        out[s] = (code, n)
        code += 1
    return out


def test_bit_reader_is_lsb_first_and_bounded() -> None:
    br = ht.BitReader(bytes([0b10110100, 0xFF]), 0, 2)
    assert br.read(2) == 0b00
    assert br.read(3) == 0b101
    assert br.read(11) == 0b11111111101
    with pytest.raises(TruncatedError):
        br.read(1)


# -- the samples: structure and messages --------------------------------------------------
SAMPLES = {s.name: s for s in sw.samples()}


def findings(name: str) -> list[str]:
    return [f.message for f in scan_bytes(SAMPLES[name].data, name).findings if f.rule == RULE]


def test_message_names_group_code_sizes_and_place() -> None:
    (msg,) = findings("blastpass-plain.webp")
    assert "group 0 of the main image" in msg
    assert "distance code builds 414 table entries against a budget of 410" in msg
    assert "2958 of the 2954-entry block" in msg


def test_message_for_frame_and_group_and_subimage() -> None:
    (msg,) = findings("blastpass-animated.webp")
    assert "animation frame 2" in msg
    (msg,) = findings("blastpass-meta-group1.webp")
    assert msg.startswith("group 1 of the main image")
    (msg,) = findings("blastpass-subimage.webp")
    assert "colour transform image (a sub-image)" in msg


def test_colour_cache_budget_is_used_for_green() -> None:
    s, warnings = parse(SAMPLES["blastpass-cache6.webp"].data)
    (main,) = s.streams[0].images
    (group,) = main.notable
    assert main.cache_bits == 6
    assert group.block == 2954 + 64
    green = group.codes[0]
    assert (green.size, green.budget) == (654, 718)
    assert [c.code for c in group.over] == ["distance"]
    assert any("not a valid prefix code (incomplete tree)" in w for w in warnings)


def test_transforms_are_read_before_the_codes() -> None:
    s, _ = parse(SAMPLES["blastpass-transforms.webp"].data)
    stream = s.streams[0]
    assert stream.transforms == ("subtract-green", "predictor")
    assert [i.role for i in stream.images] == ["predictor transform image", "main image"]
    assert (stream.images[0].width, stream.images[0].height) == (4, 4)


def test_renamed_and_pkpass_are_found_by_content() -> None:
    assert findings("blastpass-renamed.gif")
    sub = scan_bytes(SAMPLES["blastpass.pkpass"].data, "a.pkpass")
    assert sub.format == "pkpass"
    assert [f.path for f in sub.findings] == ["a.pkpass!/logo.png"]


def test_truncated_inside_the_bad_code_builds_nothing() -> None:
    data = sw.plain()
    cut = len(data) - 4 - 40  # inside the distance code's lengths: libwebp never builds it
    s, warnings = parse(sw.riff(sw.chunk(b"VP8L", data[:cut])))
    assert not s.streams[0].images[0].notable
    assert any("ends early, at offset" in w for w in warnings)
    assert not rules(sw.riff(sw.chunk(b"VP8L", data[:cut])))


def _backref_stream(bad: bool) -> bytes:
    """A 4x4 entropy image: one literal (meta code 1) copied 15 times at distance code 2."""
    w = sw.VP8LWriter().header(32, 32).put(0, 1).cache(0).put(1, 1).put(1, 3).cache(0)
    green = [0] * 280
    green[1] = green[256 + 7] = 1  # literal green 1, length prefix 7 (13..16)
    w.normal(green).simple(0).simple(0).simple(0).simple(1)  # distance prefix 1 -> code 2
    w.put(0, 1).put(1, 1).put(2, 2)  # literal (green 1), copy: length 13 + 2 = 15
    w.trivial_group().group(bad)
    return sw.riff(sw.chunk(b"VP8L", w.getvalue()))


def test_entropy_image_with_back_reference() -> None:
    s, _ = parse(_backref_stream(bad=True))
    main = s.streams[0].images[-1]
    assert (main.groups, main.groups_read) == (2, 1)  # group 1 stops at its rejected tree
    assert [g.index for g in main.notable] == [1]


@pytest.mark.skipif(shutil.which("dwebp") is None, reason="dwebp not on PATH (Debian: webp)")
def test_libwebp_agrees_on_the_back_reference_stream(tmp_path: Path) -> None:
    assert _dwebp(tmp_path, "backref", _backref_stream(bad=False)).returncode == 0
    s, warnings = parse(_backref_stream(bad=False))
    assert not warnings
    assert s.streams[0].images[-1].groups_read == 2


def test_many_groups_are_remapped_and_unreferenced_groups_marked() -> None:
    w = sw.VP8LWriter().header(8, 8).put(0, 1).cache(0).put(1, 1).put(1, 3)
    w.trivial_subimage(green=1500 & 0xFF, red=1500 >> 8)  # 1x1 entropy image: group 1500
    for _ in range(1000):
        w.trivial_group()
    w.crafted_group()  # group 1000: never referenced
    s, _ = parse(sw.riff(sw.chunk(b"VP8L", w.getvalue())))
    main = s.streams[0].images[-1]
    assert main.groups == 1501
    (g,) = main.notable
    assert (g.index, g.referenced) == (1000, False)
    assert not main.past_allocation
    (f,) = scan_bytes(sw.riff(sw.chunk(b"VP8L", w.getvalue())), "m.webp").findings
    assert "does not use this group" in f.message
    assert f.detail["referenced"] is False


@pytest.mark.parametrize(("bits", "what"), [(0, "cache bits 0"), (12, "cache bits 12")])
def test_bad_cache_bits_are_malformed(bits: int, what: str) -> None:
    w = sw.VP8LWriter().header(4, 4).put(0, 1).put(1, 1).put(bits, 4).put(0, 1).trivial_group()
    _, warnings = parse(sw.riff(sw.chunk(b"VP8L", w.getvalue())))
    assert any(what in x for x in warnings)


def test_repeated_transform_is_malformed() -> None:
    w = sw.VP8LWriter().header(4, 4).put(1, 1).put(2, 2).put(1, 1).put(2, 2)
    _, warnings = parse(sw.riff(sw.chunk(b"VP8L", w.getvalue())))
    assert any("subtract-green transform repeated" in x for x in warnings)


def test_logical_end_is_the_riff_size() -> None:
    data = SAMPLES["benign-twin-plain.webp"].data
    p = webp.parse(data + b"PK\x05\x06" + bytes(18), ParseContext(Budget()))
    assert p.logical_end == len(data)


# -- benign controls: real encoders --------------------------------------------------------
@pytest.mark.parametrize(("name", "blob"), list(sw.benign_images()))
def test_pillow_output_is_read_to_the_end_without_finding(name: str, blob: bytes) -> None:
    s, warnings = parse(blob)
    assert not warnings, name
    assert not any(i.notable for st in s.streams for i in st.images)
    assert not rules(blob)


def _png(size: tuple[int, int], mode: str) -> bytes:
    from PIL import Image

    rng = random.Random(size[0])
    n = size[0] * size[1] * len(mode)
    im = Image.frombytes(mode, size, bytes((i // 7 + rng.randrange(3)) & 255 for i in range(n)))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.skipif(shutil.which("cwebp") is None, reason="cwebp not on PATH (Debian: webp)")
@pytest.mark.parametrize("args", [["-lossless"], ["-lossless", "-z", "9"], ["-lossless", "-m", "0"],
                                  ["-near_lossless", "40"], ["-q", "75", "-alpha_q", "100"]])
def test_cwebp_output_has_no_finding(tmp_path: Path, args: list[str]) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(_png((120, 90), "RGBA"))
    out = tmp_path / "out.webp"
    subprocess.run(["cwebp", "-quiet", *args, str(src), "-o", str(out)], check=True)
    blob = out.read_bytes()
    s, warnings = parse(blob)
    assert not warnings
    assert s.streams, "cwebp output has a lossless stream (VP8L or ALPH)"
    assert not rules(blob)
    assert not rules(zip_of({"pass.json": b"{}", "strip.webp": blob}))


# -- the crafted layouts against the real (fixed) libwebp ----------------------------------
def _dwebp(tmp_path: Path, name: str, data: bytes) -> subprocess.CompletedProcess[str]:
    src = tmp_path / f"{name}.webp"
    src.write_bytes(data)
    if name == "animated":  # dwebp decodes stills only: take frame 2 out first
        subprocess.run(["webpmux", "-get", "frame", "2", str(src), "-o", str(src)],
                       check=True, capture_output=True)
    return subprocess.run(["dwebp", str(src), "-o", str(tmp_path / f"{name}.png")],
                          capture_output=True, text=True, check=False)


@pytest.mark.skipif(shutil.which("dwebp") is None or shutil.which("webpmux") is None,
                    reason="dwebp/webpmux not on PATH (Debian: webp)")
@pytest.mark.parametrize("name", [n for n, _ in sw.crafted_streams()])
def test_libwebp_decodes_the_twin_and_rejects_the_crafted_codes(tmp_path: Path,
                                                               name: str) -> None:
    """The writer's layout (transforms, sub-images, meta codes, frames) is valid VP8L:
    libwebp decodes the twin with one-symbol codes, and rejects the crafted tree."""
    twin = dict(sw.crafted_streams(bad=False))[name]
    assert _dwebp(tmp_path, name, twin).returncode == 0
    assert not rules(twin)
    bad = _dwebp(tmp_path, name, dict(sw.crafted_streams())[name])
    assert bad.returncode != 0
    assert "BITSTREAM_ERROR" in bad.stderr + bad.stdout


def test_finding_detail_and_metadata() -> None:
    (f,) = scan_bytes(SAMPLES["blastpass-animated.webp"].data, "a.webp").findings
    assert f.severity == "critical"
    assert set(f.cves) == {"CVE-2023-4863", "CVE-2023-41064"}
    d = f.detail
    assert (d["code"], d["built"], d["budget"], d["tree_valid"]) == ("distance", 414, 410, False)
    assert (d["image"], d["group"], d["frame"], d["block"]) == ("main image", 0, 2, 2954)
    assert d["past_allocation"] is True  # one group: 2958 entries in a 2954-entry allocation
    (f,) = scan_bytes(SAMPLES["blastpass-cache6.webp"].data, "c.webp").findings
    assert f.detail["past_allocation"] is False  # 2958 fit in 2954 + 64
