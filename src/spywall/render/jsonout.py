"""JSON: the report model as documented in docs/report.schema.json.

Strings are kept exact. One that holds a lone surrogate (a file name that was not UTF-8,
decoded with ``surrogateescape``) cannot be UTF-8: the report is then written in ASCII
with ``\\uXXXX`` escapes, which JSON allows and which keep the value."""

from __future__ import annotations

import json
from typing import TextIO

from spywall.report import Report, as_dict, dump_json


def render(report: Report, out: TextIO) -> None:
    try:
        text = dump_json(report)
    except UnicodeEncodeError:
        text = json.dumps(as_dict(report), indent=2, ensure_ascii=True)
    out.write(text + "\n")
