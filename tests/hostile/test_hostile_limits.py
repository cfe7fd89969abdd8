"""Adversarial suite: exploits hidden behind caps, loops and huge counts.

Each case writes a generated hostile input and runs the real CLI on it in a subprocess
under the time and memory ceilings of ``hostile_run``. The exploit finding made before
the cap must survive, the cap must be reported as an ``incomplete-examination`` finding
(so the exit status is 1, never 0), and nothing may crash.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import shapes
from hostile_run import assert_sound, run_cli

INCOMPLETE = "incomplete-examination"
WEBP = "webp-huffman-overflow"
JBIG2 = "jbig2-symbol-overflow"
GIF = "gif-zero-area-frame"

# name, generator, the exploit rule that must survive (None: only the cap), whether
# the input hit a cap (an incomplete-examination finding), extra arguments
CASES: list[tuple[str, Callable[[], bytes], str | None, bool, tuple[str, ...]]] = [
    ("zip-ratio-bomb-then-webp.zip", lambda: shapes.zip_ratio_bomb_then(shapes.webp_exploit()),
     WEBP, True, ()),
    ("zip-3m-entries.zip", lambda: shapes.zip_many_entries(shapes.webp_exploit()),
     WEBP, True, ()),
    ("gif-11932-200k-comments.gif", shapes.gif_11932_then_comments, GIF, True, ()),
    ("webp-blastpass-100k-frames.webp", shapes.webp_blastpass_then_frames, WEBP, True, ()),
    ("tiff-127-million-long-tags.tif", shapes.tiff_many_long_tags, None, True, ()),
    ("pdf-objstm-bomb-jbig2.pdf", shapes.pdf_objstm_bomb_and_jbig2, JBIG2, True, ()),
    ("pdf-page-tree-loop-jbig2.pdf", shapes.pdf_page_tree_loop_and_jbig2, JBIG2, False, ()),
    ("pdf-xref-stream-1gib-jbig2.pdf", shapes.pdf_xref_stream_bomb_and_jbig2, JBIG2, True,
     ()),
    ("pdf-xref-stream-escaped-name.pdf", lambda: shapes.pdf_xref_stream_bomb_and_jbig2()
     .replace(b"/Type /XRef", b"/Type /X#52ef"), JBIG2, True, ()),
    ("pdf-jbig2-then-1m-segments.pdf", shapes.pdf_jbig2_then_segments, JBIG2, True, ()),
    ("pdf-flate-bomb-then-jbig2.pdf", shapes.pdf_flate_bomb_then_jbig2, JBIG2, True, ()),
    ("pdf-budget-spent-then-jbig2.pdf", shapes.pdf_budget_spent_then_jbig2, JBIG2, True,
     ("--max-decompressed", "32")),
    ("over-max-file-size.webp", shapes.webp_exploit, None, True, ("--max-file-size", "0")),
    ("pdf-objstm-bomb-small-budget.pdf", shapes.pdf_objstm_bomb_and_jbig2, JBIG2, True,
     ("--max-decompressed", "8")),
    *((name, make, rule, True, ("--max-decompressed", "32"))
      for name, make, rule in shapes.NESTED),
]


@pytest.mark.parametrize(("name", "make", "rule", "capped", "extra"), CASES,
                         ids=[c[0] for c in CASES])
def test_exploit_survives_the_cap(tmp_path: Path, name: str, make: Callable[[], bytes],
                                  rule: str | None, capped: bool, extra: tuple[str, ...]
                                  ) -> None:
    path = tmp_path / name
    path.write_bytes(make())
    run = run_cli("scan", "-j", "1", "--timeout", "30", *extra, str(path))
    assert_sound(run)
    assert run.code == 1, (run.rules, run.errors)
    if rule is not None:
        assert rule in run.rules, (run.rules, run.errors)
    assert (INCOMPLETE in run.rules) == capped, (run.rules, run.errors)
    if capped:
        assert any(code == "limit" for code, _ in run.errors), run.errors


def test_allow_incomplete_restores_the_old_report(tmp_path: Path) -> None:
    path = tmp_path / "tags.tif"
    path.write_bytes(shapes.tiff_many_long_tags())
    run = run_cli("scan", "--allow-incomplete", str(path))
    assert_sound(run)
    assert run.code == 0
    assert run.rules == []
    assert [code for code, _ in run.errors] == ["limit"]
    strict = run_cli("scan", str(path))
    assert strict.code == 1
    (finding,) = [f for s in strict.report["subjects"] for f in s["findings"]]  # type: ignore[index]
    assert finding["kind"] == "heuristic"
    assert "integer values" in finding["detail"]["limit"]
    assert finding["detail"]["where"] == str(path)
