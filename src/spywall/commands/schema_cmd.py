"""``spywall schema``: print the JSON Schema of the report (docs/report.schema.json)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from spywall.errors import InputError
from spywall.report import SCHEMA_VERSION, Report, json_schema

HELP = "print the JSON Schema of spywall's JSON report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.set_defaults(raw_output=True)


def report_schema() -> dict[str, Any]:
    schema = json_schema(Report)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://spywall.dev/schema/report-{SCHEMA_VERSION}.json"
    schema["title"] = f"spywall report, schema version {SCHEMA_VERSION}"
    return schema


def run(args: argparse.Namespace) -> None:
    if args.format not in (None, "json"):
        raise InputError(f"the schema is JSON only (-f {args.format} is not available)")
    json.dump(report_schema(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
