"""Renderers: pure functions of a ``Report``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from spywall.render import jsonout, sarif, table
from spywall.report import Report

RENDERERS: dict[str, Callable[[Report, TextIO], None]] = {
    "table": table.render,
    "json": jsonout.render,
    "sarif": sarif.render,
}
