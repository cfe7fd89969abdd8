"""The one report model every command produces and every renderer reads.

Versioned (``SCHEMA_VERSION``) and strict (unknown fields are refused): a saved JSON report
is loaded with ``load_json`` and re-rendered without re-scanning. The JSON Schema is
``docs/report.schema.json`` (``spywall schema`` prints it).

The models are ``msgspec`` structs: typed like dataclasses, validated when JSON is decoded
(not when the code builds them: mypy checks that), and encoded to JSON in C. A device
check builds tens of thousands of values and starts up on every run; pydantic cost 0.13 s
of start-up alone (measured), msgspec a few milliseconds.

Findings have a ``kind``:
- ``indicator``: matched a published indicator of compromise (names its collection and
  the indicator file);
- ``exploit``: a structure that is the trigger condition of a known exploit (names CVEs);
- ``heuristic``: unusual, worth a look, not proof.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import field

SCHEMA_VERSION = "1.0"
# Separator of container members in a finding's path: outer.zip!/inner/file.webp
MEMBER_SEP = "!/"

Scalar = str | int | float | bool | None


class Model(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every report model: unknown fields refused. (``kw_only`` is not inherited
    by msgspec: each model states it, so that models are built by keyword, as before.)"""


def Doc(description: str) -> msgspec.Meta:  # noqa: N802 (reads as a type annotation)
    return msgspec.Meta(description=description)


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


SEVERITY_ORDER = {s: i for i, s in enumerate(Severity)}


class FindingKind(StrEnum):
    INDICATOR = "indicator"
    EXPLOIT = "exploit"
    HEURISTIC = "heuristic"


class IndicatorMatch(Model, kw_only=True):
    """Which published indicator matched, and what it belongs to."""

    ioc_type: Annotated[str, Doc("STIX observable, e.g. domain-name:value")]
    value: Annotated[str, Doc("the indicator value as published")]
    matched: Annotated[str, Doc("the value seen in the evidence")]
    collection: Annotated[str, Doc("the malware the indicator indicates")]
    source: Annotated[str, Doc("indicator file it came from")]


class Location(Model, kw_only=True):
    """Where a finding is. Fields that do not apply stay null."""

    offset: int | None = None
    module: str | None = None
    record: str | None = None
    timestamp: str | None = None
    frame: int | None = None
    src: str | None = None
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None
    protocol: str | None = None


class Finding(Model, kw_only=True):
    rule: Annotated[str, Doc("detector or module id")]
    title: str
    kind: FindingKind
    severity: Severity
    message: str
    path: Annotated[str, Doc("subject path; inside containers outer.zip!/inner/file")]
    cves: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    location: Location = field(default_factory=Location)
    indicator: IndicatorMatch | None = None
    object_sha256: Annotated[str | None, Doc("sha256 of the object")] = None
    detail: dict[str, Scalar] = field(default_factory=dict)


class ErrorEntry(Model, kw_only=True):
    path: str
    code: Annotated[str, Doc("malformed, truncated, limit, io, unsupported, schema")]
    message: str


class Subject(Model, kw_only=True):
    """One input: a scanned file, a backup, a capture."""

    path: str
    sha256: str | None = None
    size: int | None = None
    format: str | None = None
    objects: Annotated[int, Doc("objects examined, nested ones included")] = 1
    findings: list[Finding] = field(default_factory=list)
    errors: list[ErrorEntry] = field(default_factory=list)


class IocSource(Model, kw_only=True):
    path: str
    sha256: str
    indicators: int
    collections: list[str] = field(default_factory=list)


class MediaFlow(Model, kw_only=True):
    src: str
    sport: int
    dst: str
    dport: int
    protocol: str
    packets: int
    first_frame: int
    last_frame: int


class CallSummary(Model, kw_only=True):
    """A call learned from SIP (``spywall pcap``)."""

    call_id: str
    path: Annotated[str | None, Doc("the capture the call was seen in")] = None
    caller: str | None = None
    callee: str | None = None
    state: Annotated[str, Doc("offered, ringing, answered, ended, failed")]
    first_frame: int
    last_frame: int
    started: str | None = None
    media: list[MediaFlow] = field(default_factory=list)
    packets: int = 0
    anomalies: int = 0
    legs: Annotated[list[str], Doc("hops of the initial INVITE, 'src -> dst', in the order "
                                   "seen (a proxy adds one)")] = field(default_factory=list)


class ModuleRun(Model, kw_only=True):
    """One check module of ``check-ios`` / ``check-android``."""

    name: str
    status: Annotated[str, Doc("ok, skipped, schema-unknown, error")]
    records: int = 0
    message: str = ""


class Summary(Model, kw_only=True):
    subjects: int = 0
    findings: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    by_severity: dict[str, int] = field(default_factory=dict)
    errors: int = 0


class Report(Model, kw_only=True):
    schema_version: str = SCHEMA_VERSION
    tool: str = "spywall"
    tool_version: str
    command: str
    started: datetime
    finished: datetime | None = None
    ioc_sources: list[IocSource] = field(default_factory=list)
    subjects: list[Subject] = field(default_factory=list)
    calls: list[CallSummary] = field(default_factory=list)
    modules: list[ModuleRun] = field(default_factory=list)
    device: dict[str, Scalar] = field(default_factory=dict)
    errors: list[ErrorEntry] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)

    def all_findings(self) -> list[Finding]:
        return [f for s in self.subjects for f in s.findings]

    def finalize(self) -> Report:
        """Fill ``summary`` from the subjects; return self."""
        findings = self.all_findings()
        by_kind: dict[str, int] = {}
        by_sev: dict[str, int] = {}
        for f in findings:
            by_kind[f.kind.value] = by_kind.get(f.kind.value, 0) + 1
            by_sev[f.severity.value] = by_sev.get(f.severity.value, 0) + 1
        self.summary = Summary(
            subjects=len(self.subjects),
            findings=len(findings),
            by_kind=by_kind,
            by_severity=by_sev,
            errors=len(self.errors) + sum(len(s.errors) for s in self.subjects),
        )
        return self


M = TypeVar("M", bound=Model)
_ENCODER = msgspec.json.Encoder()


def dump_json(obj: Model, indent: int = 2) -> str:
    """JSON text of a model (UTF-8, ``indent`` spaces; 0 for one line)."""
    raw = _ENCODER.encode(obj)
    return (msgspec.json.format(raw, indent=indent) if indent else raw).decode()


def as_dict(obj: Model, *, drop_none: bool = False) -> dict[str, Any]:
    """The model as JSON-ready builtins (enums as values, datetimes as ISO text)."""
    out: dict[str, Any] = msgspec.to_builtins(obj)
    return {k: v for k, v in out.items() if v is not None} if drop_none else out


# Raised by ``load_json``: not JSON, or JSON that is not the model (msgspec's
# ValidationError is a subclass).
DocumentError = msgspec.DecodeError


def load_json(data: bytes | str, model: type[M]) -> M:
    """Decode and validate a JSON document as ``model``; ``DocumentError`` otherwise."""
    return msgspec.json.decode(data, type=model)


def load_report(data: bytes | str) -> Report:
    return load_json(data, Report)


def json_schema(model: type[Model]) -> dict[str, Any]:
    """JSON Schema (2020-12) of ``model``: its own definition at the root, the models it
    refers to under ``$defs``."""
    schema: dict[str, Any] = msgspec.json.schema(model)
    defs: dict[str, Any] = schema.pop("$defs", {})
    root = defs.pop(model.__name__)
    if defs:
        root["$defs"] = defs
    return dict(root)
