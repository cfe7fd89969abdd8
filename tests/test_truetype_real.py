"""Zero false positives: every font of Debian's font packages scans clean.

Needs the Debian packages fonts-noto-core, fonts-dejavu-core and fonts-liberation2
(``apt-get install -y fonts-noto-core fonts-dejavu-core fonts-liberation2``); a package that
is not installed is skipped, by name. About a second for all three (286 fonts).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from spywall.engine import scan_bytes
from spywall.formats.truetype import Collection, Font

PACKAGES = ("fonts-noto-core", "fonts-dejavu-core", "fonts-liberation2")
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")


def package_fonts(package: str) -> list[str] | None:
    """The font files a Debian package installed, or None if it is not installed."""
    dpkg = shutil.which("dpkg")
    if dpkg is None:
        return None
    proc = subprocess.run([dpkg, "-L", package], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return None
    return sorted(p for p in proc.stdout.splitlines()
                  if p.lower().endswith(FONT_SUFFIXES) and os.path.isfile(p))


@pytest.mark.parametrize("package", PACKAGES)
def test_real_fonts_scan_clean(package: str) -> None:
    files = package_fonts(package)
    if not files:
        pytest.skip(f"Debian package {package} is not installed (apt-get install -y {package})")
    for path in files:
        with open(path, "rb") as fh:
            data = fh.read()
        subject = scan_bytes(data, path)
        assert subject.format in ("truetype", "opentype-cff", "ttc"), path
        assert not subject.findings, (path, [f.message for f in subject.findings])
        assert not subject.errors, (path, [e.message for e in subject.errors])


def test_real_hinted_fonts_are_really_examined() -> None:
    """The clean result above is not for lack of looking: hinted fonts have their glyph
    programs located, and some of them hold 0x8F/0x90 bytes that had to be decoded."""
    from spywall.formats import truetype
    from spywall.formats.base import ParseContext
    from spywall.limits import Budget

    files = package_fonts("fonts-liberation2") or package_fonts("fonts-dejavu-core")
    if not files:
        pytest.skip("neither fonts-liberation2 nor fonts-dejavu-core is installed")
    decoded = 0
    for path in files:
        with open(path, "rb") as fh:
            parsed = truetype.parse(fh.read(), ParseContext(Budget()))
        fonts = (parsed.structure.fonts if isinstance(parsed.structure, Collection)
                 else (parsed.structure,))
        for font in fonts:
            assert isinstance(font, Font)
            if font.flavor == "truetype":
                assert font.num_glyphs, path
                assert font.programs > 2, path
            decoded += font.decoded
    assert decoded > 0


def _fonts(data: bytes) -> list[Font]:
    from spywall.formats import truetype
    from spywall.formats.base import ParseContext
    from spywall.limits import Budget

    parsed = truetype.parse(data, ParseContext(Budget()))
    s = parsed.structure
    return list(s.fonts) if isinstance(s, Collection) else [s] if isinstance(s, Font) else []


def test_glyph_prefilter_drops_nothing_the_exhaustive_walk_decodes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The vectorised candidate filter against every glyph: same programs decoded, same
    ADJUST hits, on real fonts (when installed) and on every crafted font sample."""
    from spywall.formats import truetype
    from spywall.samples import truetype as ts

    corpus = [s.data for s in ts.samples() if not s.name.endswith(".pdf")]
    for package in PACKAGES:
        corpus += [Path(p).read_bytes() for p in (package_fonts(package) or [])[:40]]
    fast = [[(f.decoded, f.adjust) for f in _fonts(d)] for d in corpus]
    with monkeypatch.context() as m:
        m.setattr(truetype, "_glyphs", None)  # the numpy path, against the compiled one
        assert [[(f.decoded, f.adjust) for f in _fonts(d)] for d in corpus] == fast
    monkeypatch.setattr(truetype._Parser, "candidate_glyphs",  # every glyph walked
                        lambda self, offs, glyf, num, *_: ((g, -1, -1) for g in range(num)))
    slow = [[(f.decoded, f.adjust) for f in _fonts(d)] for d in corpus]
    assert fast == slow
    assert any(adjust for per_font in fast for _, adjust in per_font)


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="no C compiler: the compiled glyph selection cannot be built")
def test_the_compiled_glyph_selection_is_built() -> None:
    """``make`` installs with a C compiler present, so the fast path is the one tested."""
    from spywall.formats import truetype

    assert truetype._glyphs is not None
