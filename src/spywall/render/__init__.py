"""Renderers: pure functions of a ``Report``.

Each renderer's module is imported only when it renders: the table renderer needs rich,
which a JSON run (the usual one in scripts) has no use for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TextIO

from spywall.report import Report

Renderer = Callable[[Report, TextIO], None]
_MODULES: dict[str, str] = {
    "table": "spywall.render.table",
    "json": "spywall.render.jsonout",
    "sarif": "spywall.render.sarif",
}


def _lazy(module: str) -> Renderer:
    def render(report: Report, out: TextIO) -> None:
        fn: Renderer = importlib.import_module(module).render
        fn(report, out)

    render.__doc__ = f"``{module}.render``, imported on first use."
    return render


RENDERERS: dict[str, Renderer] = {name: _lazy(mod) for name, mod in _MODULES.items()}
