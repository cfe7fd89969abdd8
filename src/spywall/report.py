"""The one report model every command produces and every renderer reads.

Versioned (``SCHEMA_VERSION``) and strict (``extra="forbid"``): a saved JSON report can be
loaded with ``Report.model_validate_json`` and re-rendered without re-scanning. The
JSON Schema is ``docs/report.schema.json`` (``spywall schema`` prints it).

Findings have a ``kind``:
- ``indicator``: matched a published indicator of compromise (names its collection and
  the indicator file);
- ``exploit``: a structure that is the trigger condition of a known exploit (names CVEs);
- ``heuristic``: unusual, worth a look, not proof.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"
# Separator of container members in a finding's path: outer.zip!/inner/file.webp
MEMBER_SEP = "!/"

Scalar = str | int | float | bool | None


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class IndicatorMatch(Model):
    """Which published indicator matched, and what it belongs to."""

    ioc_type: str = Field(description="STIX observable, e.g. domain-name:value")
    value: str = Field(description="the indicator value as published")
    matched: str = Field(description="the value seen in the evidence")
    collection: str = Field(description="the malware the indicator indicates")
    source: str = Field(description="indicator file it came from")


class Location(Model):
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


class Finding(Model):
    rule: str = Field(description="detector or module id")
    title: str
    kind: FindingKind
    severity: Severity
    message: str
    path: str = Field(description="subject path; inside containers outer.zip!/inner/file")
    cves: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    location: Location = Field(default_factory=Location)
    indicator: IndicatorMatch | None = None
    object_sha256: str | None = Field(default=None, description="sha256 of the object")
    detail: dict[str, Scalar] = Field(default_factory=dict)


class ErrorEntry(Model):
    path: str
    code: str = Field(description="malformed, truncated, limit, io, unsupported, schema")
    message: str


class Subject(Model):
    """One input: a scanned file, a backup, a capture."""

    path: str
    sha256: str | None = None
    size: int | None = None
    format: str | None = None
    objects: int = Field(default=1, description="objects examined, nested ones included")
    findings: list[Finding] = Field(default_factory=list)
    errors: list[ErrorEntry] = Field(default_factory=list)


class IocSource(Model):
    path: str
    sha256: str
    indicators: int
    collections: list[str] = Field(default_factory=list)


class MediaFlow(Model):
    src: str
    sport: int
    dst: str
    dport: int
    protocol: str
    packets: int
    first_frame: int
    last_frame: int


class CallSummary(Model):
    """A call learned from SIP (``spywall pcap``)."""

    call_id: str
    caller: str | None = None
    callee: str | None = None
    state: str = Field(description="offered, ringing, answered, ended, failed")
    first_frame: int
    last_frame: int
    started: str | None = None
    media: list[MediaFlow] = Field(default_factory=list)
    packets: int = 0
    anomalies: int = 0


class ModuleRun(Model):
    """One check module of ``check-ios`` / ``check-android``."""

    name: str
    status: str = Field(description="ok, skipped, schema-unknown, error")
    records: int = 0
    message: str = ""


class Summary(Model):
    subjects: int = 0
    findings: int = 0
    by_kind: dict[str, int] = Field(default_factory=dict)
    by_severity: dict[str, int] = Field(default_factory=dict)
    errors: int = 0


class Report(Model):
    schema_version: str = SCHEMA_VERSION
    tool: str = "spywall"
    tool_version: str
    command: str
    started: datetime
    finished: datetime | None = None
    ioc_sources: list[IocSource] = Field(default_factory=list)
    subjects: list[Subject] = Field(default_factory=list)
    calls: list[CallSummary] = Field(default_factory=list)
    modules: list[ModuleRun] = Field(default_factory=list)
    device: dict[str, Scalar] = Field(default_factory=dict)
    errors: list[ErrorEntry] = Field(default_factory=list)
    summary: Summary = Field(default_factory=Summary)

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
