"""The kinds of log entry and the fields each must carry (docs/evidence.md explains them).

Every entry is a JSON object with ``kind`` (one of ``KINDS``) and ``ts`` (RFC 3339, the
time of what it records), plus the kind's required fields; other fields are kept. An
entry names the event ids and the rule behind it, so that a court can see why.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from spywall.evidence.canonical import CanonicalError, canonical

KINDS: dict[str, tuple[str, ...]] = {
    # the registry: a party, order or identifier added, changed or retired
    "registry.change": ("action", "actor", "reason"),
    # the gate refused (deny) or held an event
    "gate.denial": ("event", "verdict", "reasons", "rule"),
    # a barred party's event at or after its order's date
    "violation": ("event", "party", "type", "verdict", "identifiers", "rule", "orders"),
    # a call or message that carried an exploit or a barred payload
    "delivery.malicious": ("event", "delivery", "sender", "targets", "detectors", "rule"),
    # a campaign attributed to a party
    "campaign.attribution": ("campaign", "party", "rule", "identifiers", "events"),
    # one step of a ban: propose, approve, reject, apply, revert
    "enforcement": ("step", "ban", "account", "actor", "events"),
    # a notification to a target created or its status changed
    "notification": ("target", "campaign", "status"),
    # the log's signing key replaced (signed by the old key)
    "key-rotation": ("origin", "old_key", "new_key", "signature"),
    # a scan / pcap / check-ios / check-android report
    "report": ("command", "tool_version", "inputs", "findings", "report_sha256"),
}
ENFORCEMENT_STEPS = frozenset({"propose", "approve", "reject", "apply", "revert"})


class EntryError(ValueError):
    """An entry the log refuses (before anything is written)."""


def _check_ts(ts: Any) -> None:
    if not isinstance(ts, str) or len(ts) > 64:
        raise EntryError("'ts' must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(ts)
    except ValueError as exc:
        raise EntryError(f"'ts' is not RFC 3339: {ts!r}") from exc
    if parsed.tzinfo is None:
        raise EntryError(f"'ts' has no time zone: {ts!r}")


def encode(entry: Mapping[str, Any]) -> tuple[bytes, str, str, str | None]:
    """Check ``entry``; its canonical bytes, kind, time and party (or None)."""
    if not isinstance(entry, Mapping):
        raise EntryError("an entry is a JSON object")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise EntryError(f"unknown entry kind {kind!r} (known: {', '.join(sorted(KINDS))})")
    _check_ts(entry.get("ts"))
    missing = [f for f in KINDS[kind] if f not in entry]
    if missing:
        raise EntryError(f"{kind} entry without {', '.join(missing)}")
    if kind == "enforcement" and entry["step"] not in ENFORCEMENT_STEPS:
        raise EntryError(f"enforcement step {entry['step']!r} is not one of "
                         f"{', '.join(sorted(ENFORCEMENT_STEPS))}")
    try:
        body = canonical(dict(entry))
    except CanonicalError as exc:
        raise EntryError(str(exc)) from exc
    party = entry.get("party")
    return body, kind, entry["ts"], party[:128] if isinstance(party, str) else None
