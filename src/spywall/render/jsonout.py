"""JSON: the report model as documented in docs/report.schema.json."""

from __future__ import annotations

from typing import TextIO

from spywall.report import Report, dump_json


def render(report: Report, out: TextIO) -> None:
    out.write(dump_json(report))
    out.write("\n")
