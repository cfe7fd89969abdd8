"""JBIG2 against an independent decoder: jbig2dec (Debian package jbig2dec).

``jbig2dec -v 4`` reports what it read: each segment's number, type and data length, the
segments it refers to, each symbol dictionary's flags and symbol counts, and for each
text region the size of the symbol list it built from the referred dictionaries (kept in
32 bits, as in the decoders FORCEDENTRY attacked). For every standalone JBIG2 sample and
for random streams, spywall's reading with jbig2dec's retention-byte rule
(``jbig2.parse_as(..., "jbig2dec")``) must agree on all of it; the clean twin of the
decodable FORCEDENTRY sample must decode to the end, and the crafted one must show the
wrapped symbol count the CVE write-ups describe. Skipped, with the reason, when jbig2dec
is not installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.formats import jbig2
from spywall.formats.base import ParseContext
from spywall.limits import Budget
from spywall.samples import all_samples
from spywall.samples import jbig2_coded as jc
from spywall.samples.pdf_jbig2 import MAGIC

JBIG2DEC = shutil.which("jbig2dec")
needs_jbig2dec = pytest.mark.skipif(
    JBIG2DEC is None, reason="jbig2dec not installed (apt-get install jbig2dec)")
SAMPLES = [s for s in all_samples() if s.data[:8] == MAGIC]
_SEG = re.compile(r"segment (\d+), flags=\w+, type=(\d+), data_length=(\d+)")
_REF = re.compile(r"segment (\d+) refers to segment (\d+)")
_REPEAT = re.compile(r"last message repeated (\d+) times")
_DICT = re.compile(r"symbol dictionary, flags=([0-9a-fA-F]+), (\d+) exported syms, "
                   r"(\d+) new syms \(segment 0x([0-9a-fA-F]+)\)")
_LIST = re.compile(r"symbol list contains (\d+) glyphs in (\d+) dictionaries "
                   r"\(segment 0x([0-9a-fA-F]+)\)")


class Report:
    """What jbig2dec said it read."""

    def __init__(self, text: str, returncode: int) -> None:
        self.text, self.returncode = text, returncode
        self.segments: list[tuple[int, int, int]] = []
        self.refs: Counter[int] = Counter()
        self.dicts: dict[int, tuple[int, int, int]] = {}
        self.lists: dict[int, tuple[int, int]] = {}
        last_ref: int | None = None
        for line in text.splitlines():
            if m := _REPEAT.search(line):
                if last_ref is not None:
                    self.refs[last_ref] += int(m.group(1))
                continue
            last_ref = None
            if m := _SEG.search(line):
                self.segments.append((int(m.group(1)), int(m.group(2)), int(m.group(3))))
            elif m := _REF.search(line):
                last_ref = int(m.group(1))
                self.refs[last_ref] += 1
            elif m := _DICT.search(line):
                self.dicts[int(m.group(4), 16)] = (int(m.group(1), 16), int(m.group(2)),
                                                   int(m.group(3)))
            elif m := _LIST.search(line):
                self.lists[int(m.group(3), 16)] = (int(m.group(1)), int(m.group(2)))

    @property
    def finished(self) -> bool:
        return "end of file" in self.text and "FATAL" not in self.text


def run_jbig2dec(data: bytes) -> Report:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.jbig2", Path(tmp) / "out.pbm"
        src.write_bytes(data)
        proc = subprocess.run([JBIG2DEC or "jbig2dec", "-v", "4", "-o", str(out), str(src)],
                              capture_output=True, text=True, timeout=300, check=False)
    return Report(proc.stdout + proc.stderr, proc.returncode)


def check_agreement(data: bytes, label: str) -> tuple[Report, Any]:
    rep = run_jbig2dec(data)
    s = jbig2.parse_as(data, ParseContext(Budget()), "jbig2dec").structure
    assert isinstance(s, jbig2.Jbig2Stream)
    mine_dicts = {d.number: (d.flags, d.exported, d.new) for d in s.dictionaries}
    for number, seen in rep.dicts.items():
        assert mine_dicts.get(number) == seen, (label, number)
    uses = {u.number: u for u in s.symbol_uses}
    for number, (glyphs, dicts) in rep.lists.items():
        u = uses[number]
        assert (u.exported_sum & 0xFFFFFFFF, u.dictionary_references) == (glyphs, dicts), label
    for number, count in rep.refs.items():  # jbig2dec folds a repeated message away
        if number in uses:                     # without saying so when it repeats once
            assert count <= uses[number].references, (label, number)
    if rep.finished:  # every segment read: the same segment types
        assert Counter(t for _, t, _ in rep.segments) == Counter(s.type_counts), label
        assert len(rep.segments) == s.segment_count, label
    return rep, s


@needs_jbig2dec
@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_jbig2_samples_agree_with_jbig2dec(sample: Any) -> None:
    check_agreement(sample.data, sample.name)


@needs_jbig2dec
def test_decodable_twin_decodes_and_crafted_count_wraps() -> None:
    good, _ = check_agreement(jc.stream(1), "twin")
    assert good.finished
    assert good.returncode == 0
    assert good.lists == {4: (0xFFFF + 3, 2)}
    bad, mine_bad = check_agreement(jc.stream(0x10001, 6), "crafted")
    [use] = [u for u in mine_bad.symbol_uses if u.number == 4]
    true_sum = 0xFFFF * 0x10001 + 3 * 6
    assert use.exported_sum == true_sum
    # jbig2dec's 32-bit symbol list count wrapped: 17 glyphs for 65543 dictionaries.
    assert bad.lists[4] == (true_sum & 0xFFFFFFFF, 0x10001 + 6)


@needs_jbig2dec
@settings(max_examples=12, deadline=None)
@given(st.integers(1, 3000), st.integers(1, 40), st.integers(1, 300), st.integers(0, 40))
def test_random_streams_agree_with_jbig2dec(big: int, small: int, refs_big: int,
                                            refs_small: int) -> None:
    """Random dictionary sizes and reference counts (short and long forms, every count
    modulo 8): jbig2dec's symbol list equals spywall's sum."""
    segs = [
        jc.segment(1, jc.PAGE_INFO, jc.page_info()),
        jc.segment(2, 0, jc.huffman_dictionary(big)),
        jc.segment(3, 0, jc.huffman_dictionary(small)),
        jc.segment(4, 6, jc.empty_text_region(), [2] * refs_big + [3] * refs_small),
        jc.segment(5, jc.END_OF_PAGE, b""),
        jc.segment(6, jc.END_OF_FILE, b"", page=0),
    ]
    data = jc.jbig2_file(segs)
    rep, _ = check_agreement(data, f"{big} {small} {refs_big} {refs_small}")
    n = refs_big + refs_small
    if n <= 4 or (n + 1) % 8 == 0:  # no retention disagreement with T.88
        assert rep.finished
        assert rep.lists[4] == (big * refs_big + small * refs_small, n)
