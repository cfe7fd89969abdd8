"""What the HTTP API speaks: request and response models (pydantic), apart from the
storage tables in ``db``. The contract (``reference/platform.md``) fixes the field names;
the OpenAPI document at ``/openapi.json`` is generated from these models.

Event bodies are not pydantic models: an event is checked by ``contract.parse_line``,
the one validator that the file, HTTP and NATS faces share, so that they refuse the same
things with the same reasons. Their JSON Schema below is derived from the contract's
table (``contract.FIELDS``) so the documentation cannot drift from the validator.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from spywall.platform import contract

MAX_BODY_BYTES = 16 << 20        # one request's body
MAX_EVENTS = 10_000              # events in one POST /v1/events
MAX_REASON_CHARS = 2000

Verdict = Literal["allow", "deny", "hold"]
Step = Literal["approve", "reject", "apply", "revert"]
BanStatus = Literal["proposed", "approved", "applied", "rejected", "reverted"]


class Problem(BaseModel):
    """An error: what was wrong with the request (or why it cannot be served)."""

    detail: str | list[dict[str, Any]]


class Refused(BaseModel):
    """An event of the batch that the contract refuses: its index in the array, its id
    when it had a usable one, and why."""

    index: int
    id: str | None = None
    reason: str


class Accepted(BaseModel):
    """``POST /v1/events``: ids of events now durably stored (re-sent ids included: they
    are stored), and the events refused, by index."""

    accepted: list[str]
    refused: list[Refused] = Field(default_factory=list)


class EventsRefused(BaseModel):
    """422 of ``POST /v1/events``: why the body could not be used, or (with ``refused``)
    that every event in it was refused."""

    detail: str
    accepted: list[str] = Field(default_factory=list)
    refused: list[Refused] = Field(default_factory=list)


class GateAnswer(BaseModel):
    verdict: Verdict
    reasons: list[dict[str, Any]]
    party: str | None


class StoredEvent(BaseModel):
    """The event as sent (every field it carried), plus the gate's decision."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: str
    ts: str
    verdict: Verdict
    reasons: list[dict[str, Any]]
    party: str | None = None


class Campaign(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    party: str | None
    actors: list[str]
    targets: list[str]
    first_seen: str
    last_seen: str
    deliveries: int
    detectors: list[str]
    infrastructure: list[str]


class Campaigns(BaseModel):
    campaigns: list[Campaign]


class Violation(BaseModel):
    model_config = ConfigDict(extra="allow")

    event: str
    party: str
    type: str
    ts: str
    verdict: Verdict
    identifiers: list[dict[str, Any]]


class Violations(BaseModel):
    violations: list[Violation]


class Notification(BaseModel):
    model_config = ConfigDict(extra="allow")

    target: str
    campaign: str
    language: str
    status: str


class Notifications(BaseModel):
    notifications: list[Notification]


class BanStep(BaseModel):
    step: str
    actor: str
    reason: str
    ts: str


class Ban(BaseModel):
    id: int
    account: str
    party: str | None
    campaign: str | None
    status: str
    evidence: dict[str, Any]
    steps: list[BanStep]


class Bans(BaseModel):
    bans: list[Ban]


class StepIn(BaseModel):
    """Every review step needs a reason; it is kept with the step and in the audit log."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS, pattern=r"\S")


class StepDone(BaseModel):
    ban: int
    status: str


class Imported(BaseModel):
    """How many of each the import added (what was already there is not counted)."""

    parties: int
    orders: int
    identifiers: int
    official_clients: int


class Health(BaseModel):
    status: Literal["ok"]


# -- JSON Schema of events, from the contract's table ----------------------------------
_STRING = {"type": "string", "minLength": 1, "maxLength": contract.MAX_FIELD_CHARS}
_ATTACHMENT = {
    "type": "object",
    "required": ["sha256"],
    "properties": {
        "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        "size": {"type": "integer", "minimum": 0},
        "path": {"type": "string", "description": "absolute, or relative to --media-root"},
        "data": {"type": "string", "contentEncoding": "base64",
                 "description": "the attachment's bytes, base64"},
    },
}
_SHAPES: dict[str, dict[str, Any]] = {
    contract.STR: _STRING,
    contract.LIST_STR: {"type": "array", "items": _STRING, "minItems": 1,
                        "maxItems": contract.MAX_RECIPIENTS},
    contract.ATTACHMENTS: {"type": "array", "items": _ATTACHMENT,
                           "maxItems": contract.MAX_ATTACHMENTS},
}
_SPECIAL: dict[str, dict[str, Any]] = {
    "phone": {"type": "string", "pattern": "^\\+[1-9][0-9]{5,14}$"},
    "capture": {"type": "string", "minLength": 1, "maxLength": contract.MAX_FIELD_CHARS,
                "description": "pcap/pcapng path: absolute, or relative to --media-root"},
}


def _variant(kind: str, fields: dict[str, str]) -> dict[str, Any]:
    props: dict[str, Any] = {
        "id": {"type": "string", "minLength": 1, "maxLength": contract.MAX_ID_CHARS},
        "type": {"type": "string", "enum": [kind]},
        "ts": {"type": "string", "format": "date-time", "description": "RFC 3339"},
        "asn": {"type": ["string", "integer"]},
    }
    for name, shape in fields.items():
        props[name] = _SPECIAL.get(name, _SHAPES[shape])
    return {"type": "object", "title": kind, "required": ["id", "type", "ts", *fields],
            "properties": props, "additionalProperties": True}


EVENT_SCHEMA: dict[str, Any] = {
    "oneOf": [_variant(kind, fields) for kind, fields in contract.FIELDS.items()],
    "description": "an event of the contract; unknown fields are kept",
}
EVENTS_SCHEMA: dict[str, Any] = {"type": "array", "items": EVENT_SCHEMA,
                                 "maxItems": MAX_EVENTS}
REGISTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "the contract's registry JSON, or a STIX 2.1 bundle",
    "additionalProperties": True,
}


def body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its JSON body itself (bounded)."""
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": schema}}}}
