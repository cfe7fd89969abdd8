"""SARIF 2.1.0 output, one run, one rule per detector or module id that fired."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any, TextIO
from urllib.parse import quote

from spywall.report import MEMBER_SEP, Finding, Report, Severity, as_dict
from spywall.rulebook import explain, explanation_text

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/spywall/spywall"

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


def _uri(path: str) -> str:
    top = path.split(MEMBER_SEP, 1)[0]
    return quote(PurePosixPath(top).as_posix(), safe="/:")


def _rule(f: Finding) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": f.rule,
        "name": f.rule.replace("-", " ").title().replace(" ", ""),
        "shortDescription": {"text": f.title},
        "defaultConfiguration": {"level": _LEVEL[f.severity]},
        "properties": {"kind": f.kind.value, "cves": f.cves, "tags": [f.kind.value, *f.cves]},
    }
    if f.references:
        rule["helpUri"] = f.references[0]
    info = explain(f.rule)
    if info is not None:  # what it means, how sure, what next, where to read more
        rule["fullDescription"] = {"text": " ".join(info.description.split())}
        rule["help"] = {"text": explanation_text(info)}
    return rule


def _result(f: Finding, rule_index: int) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(f.path)}}
    if f.location.offset is not None and MEMBER_SEP not in f.path:
        physical["region"] = {"byteOffset": f.location.offset}
    location: dict[str, Any] = {"physicalLocation": physical}
    logical = []
    if MEMBER_SEP in f.path:
        logical.append({"fullyQualifiedName": f.path, "kind": "member"})
    if f.location.module:
        logical.append({"name": f.location.module, "kind": "module"})
    if logical:
        location["logicalLocations"] = logical
    props: dict[str, Any] = {"kind": f.kind.value, "severity": f.severity.value}
    loc = as_dict(f.location, drop_none=True)
    if loc:
        props["location"] = loc
    if f.indicator:
        props["indicator"] = as_dict(f.indicator)
    if f.detail:
        props["detail"] = f.detail
    if f.object_sha256:
        props["objectSha256"] = f.object_sha256
    return {
        "ruleId": f.rule,
        "ruleIndex": rule_index,
        "level": _LEVEL[f.severity],
        "message": {"text": f.message},
        "locations": [location],
        "properties": props,
    }


def to_sarif(report: Report) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results = []
    for f in report.all_findings():
        if f.rule not in index:
            index[f.rule] = len(rules)
            rules.append(_rule(f))
        results.append(_result(f, index[f.rule]))
    notifications = [
        {"level": "warning", "message": {"text": f"{e.path}: {e.code}: {e.message}"}}
        for s in report.subjects
        for e in s.errors
    ] + [
        {"level": "error", "message": {"text": f"{e.path}: {e.code}: {e.message}"}}
        for e in report.errors
    ]
    invocation: dict[str, Any] = {"executionSuccessful": not report.errors}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": report.tool,
                        "version": report.tool_version,
                        "informationUri": INFO_URI,
                        "rules": rules,
                    }
                },
                "invocations": [invocation],
                "results": results,
                "properties": {"command": report.command,
                               "schemaVersion": report.schema_version},
            }
        ],
    }


def render(report: Report, out: TextIO) -> None:
    out.write(json.dumps(to_sarif(report), indent=2) + "\n")  # all of it, or nothing
