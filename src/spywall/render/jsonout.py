"""JSON: the report model as documented in docs/report.schema.json."""

from __future__ import annotations

from typing import TextIO

from spywall.report import Report


def render(report: Report, out: TextIO) -> None:
    out.write(report.model_dump_json(indent=2))
    out.write("\n")
