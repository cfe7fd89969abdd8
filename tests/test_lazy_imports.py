"""Heavy parser libraries load only when a file needs them (start-up of every command)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spywall.lazy import lazy_module
from spywall.samples.pdf_jbig2 import text_pdf
from spywall.samples.truetype import font


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    return set(out)


def test_importing_the_engine_does_not_load_qpdf_or_numpy() -> None:
    loaded = _loaded_after("import spywall.engine")
    assert "pikepdf._core" not in loaded
    assert not any(m.startswith("numpy.") for m in loaded)  # at most the lazy shell
    assert "concurrent.futures.process" not in loaded


def test_scanning_a_font_loads_numpy(tmp_path: Path) -> None:
    f = tmp_path / "x.ttf"
    f.write_bytes(font())
    code = ("from spywall.engine import scan_path\n"
            f"assert scan_path({str(f)!r}).format == 'truetype'")
    assert any(m.startswith("numpy.") for m in _loaded_after(code))


def test_parsing_a_pdf_loads_it(tmp_path: Path) -> None:
    f = tmp_path / "x.pdf"
    f.write_bytes(text_pdf())  # made here: the child process must not import pikepdf itself
    code = ("from spywall.engine import scan_path\n"
            f"assert scan_path({str(f)!r}).format == 'pdf'")
    assert "pikepdf._core" in _loaded_after(code)


def test_lazy_module_of_a_missing_module_fails_at_once() -> None:
    with pytest.raises(ModuleNotFoundError):
        lazy_module("spywall_no_such_module")


def test_lazy_module_returns_an_imported_module_as_is() -> None:
    assert lazy_module("json") is json
