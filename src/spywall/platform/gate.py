"""The gate: one event in, ``allow``, ``deny`` or ``hold`` out, with the reasons and the
party, before the platform acts on it. Ingested events pass the same gate, so the batch
command and the server agree.

Rules, each recorded by id in the decision's reasons:
- ``registry-identifier`` (deny): an identifier of the event is one the registry lists
  for a party;
- ``registration-denied`` (deny): the acting account's registration was denied;
- ``account-banned`` (deny): an analyst applied a ban to the acting account;
- ``attachment-exploit`` (deny): an attachment (by content) carries an exploit structure;
- ``attachment-known-malicious`` (deny): an attachment known only by hash was found
  malicious before;
- ``media-exploit`` (deny): a call's media capture carries an exploit structure;
- ``derived-identifier`` (hold): an identifier analysis derived for a party from an
  attributed campaign (a ban waits for an analyst);
- ``ban-proposed`` (hold): a ban of the acting account is proposed and waits for review;
- ``attachment-incomplete`` (hold): an attachment or capture could not be examined
  completely (fail closed).

Anything else is ``allow``. A decision on an event of a barred party, at or after the
earliest order that binds it, is also a violation (``violation_of``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from spywall.platform.contract import ACTIVITY_TYPES, Event, asn_of
from spywall.platform.matcher import Hit, RegistryIndex
from spywall.platform.media import (
    MAX_ATTACHMENT_BYTES,
    PayloadCache,
    PayloadVerdict,
    decode_data,
    inspect_capture,
    read_regular,
    scan_attachment,
    unexamined,
)

ALLOW, DENY, HOLD = "allow", "deny", "hold"
_RANK = {ALLOW: 0, HOLD: 1, DENY: 2}


class Decision(msgspec.Struct):
    verdict: str
    reasons: list[dict[str, Any]]
    party: str | None
    hits: list[Hit]
    payloads: list[PayloadVerdict] = msgspec.field(default_factory=list)

    def add(self, verdict: str, reason: dict[str, Any]) -> None:
        self.reasons.append(reason)
        if _RANK[verdict] > _RANK[self.verdict]:
            self.verdict = verdict


class GateState(msgspec.Struct):
    """What the gate knows besides the registry, kept current by intake and analysis."""

    index: RegistryIndex
    denied: dict[str, str] = msgspec.field(default_factory=dict)     # account -> party
    banned: dict[str, str | None] = msgspec.field(default_factory=dict)
    proposed: dict[str, str | None] = msgspec.field(default_factory=dict)
    malicious_payloads: set[str] = msgspec.field(default_factory=set)
    cache: PayloadCache = msgspec.field(default_factory=PayloadCache)


# Event type -> (field, how it is looked up) for the identifiers it carries. The callee
# of a call and the recipients of a message are targets, never the party's.
LOOKUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "account.registered": (("account", "account"), ("ip", "ip"), ("device", "device"),
                           ("client", "client"), ("phone", "phone")),
    "account.connected": (("account", "account"), ("ip", "ip"), ("device", "device"),
                          ("client", "client")),
    "call.offered": (("caller", "account"), ("ip", "ip")),
    "message.sent": (("sender", "account"), ("ip", "ip")),
}


def event_hits(index: RegistryIndex, event: Event) -> list[Hit]:
    """Every registry identifier the event carries, field by field."""
    f = event.fields
    hits: list[Hit] = []
    for name, kind in LOOKUPS.get(event.type, ()):
        found = index.lookup(kind, f[name], name)
        if found:
            hits += found
    if "asn" in f:
        asn = asn_of(f["asn"])
        if asn:
            hits += index.asn(asn)
    for i, att in enumerate(f.get("attachments") or ()):
        hits += index.exact("sha256", att["sha256"].lower(), f"attachments[{i}].sha256")
    return hits


def _hit_reason(rule: str, hit: Hit) -> dict[str, Any]:
    return {"rule": rule, "party": hit.party, **hit.as_json()}


class Gate:
    """Decisions over a ``GateState``. ``base`` resolves relative media paths (the events
    file's folder for ``ingest``, ``--media-root`` for the server)."""

    def __init__(self, state: GateState, base: Path | None = None) -> None:
        self.state = state
        self.base = base

    def decide(self, event: Event) -> Decision:
        index = self.state.index
        hits = event_hits(index, event)
        decision = Decision(verdict=ALLOW, reasons=[], party=None, hits=hits)
        for hit in hits:
            if hit.derived_from is None:
                decision.add(DENY, _hit_reason("registry-identifier", hit))
            else:
                decision.add(HOLD, _hit_reason("derived-identifier", hit))
        actor = event.actor
        if actor is not None:
            self._account_rules(decision, actor)
        if event.type == "message.sent":
            self._attachments(decision, event)
        elif event.type == "call.media":
            self._capture(decision, event)
        decision.party = self._party(decision, actor)
        return decision

    def _account_rules(self, decision: Decision, actor: str) -> None:
        state = self.state
        if actor in state.denied:
            decision.add(DENY, {"rule": "registration-denied", "account": actor,
                                "party": state.denied[actor]})
        if actor in state.banned:
            decision.add(DENY, {"rule": "account-banned", "account": actor,
                                "party": state.banned[actor]})
        elif actor in state.proposed:
            decision.add(HOLD, {"rule": "ban-proposed", "account": actor,
                                "party": state.proposed[actor]})

    def _party(self, decision: Decision, actor: str | None) -> str | None:
        """The party of the first registry hit, else the party that denied or banned the
        actor, else that of the first derived hit (most events: none at all)."""
        hits = decision.hits
        for h in hits:
            if h.derived_from is None:
                return h.party
        if actor is not None:
            party = self.state.denied.get(actor) or self.state.banned.get(actor)
            if party:
                return party
        return hits[0].party if hits else None

    # -- payloads ------------------------------------------------------------------------
    def _resolve(self, text: str) -> Path:
        path = Path(text)
        if not path.is_absolute() and self.base is not None:
            path = self.base / path
        return path

    def _attachments(self, decision: Decision, event: Event) -> None:
        for i, att in enumerate(event.fields.get("attachments") or ()):
            digest = att["sha256"].lower()
            verdict = self._attachment(att, digest, i)
            if verdict is None:
                continue
            decision.payloads.append(verdict)
            where = f"attachments[{i}]"
            if verdict.malicious:
                rule = "attachment-known-malicious" if verdict.detectors == ["known-malicious"] \
                    else "attachment-exploit"
                decision.add(DENY, {"rule": rule, "field": where,
                                    "sha256": digest, "detectors": verdict.detectors})
            if not verdict.complete:
                decision.add(HOLD, {"rule": "attachment-incomplete", "field": where,
                                    "sha256": digest, "why": verdict.reason})

    def _attachment(self, att: dict[str, Any], digest: str, i: int) -> PayloadVerdict | None:
        cached = self.state.cache.get(digest)
        if cached is not None:
            return cached
        data: bytes | None = None
        try:
            if "data" in att:
                data = decode_data(att["data"])
            elif "path" in att:
                data = read_regular(self._resolve(att["path"]), MAX_ATTACHMENT_BYTES)
        except (OSError, ValueError) as exc:
            return unexamined(digest, f"attachment {i} could not be read: {exc}")
        if data is None:   # known only by its hash
            if digest in self.state.malicious_payloads:
                return PayloadVerdict(sha256=digest, malicious=True, complete=True,
                                      detectors=["known-malicious"], infrastructure=[],
                                      findings=[])
            return None
        verdict = scan_attachment(data, f"attachment:{digest[:12]}", digest)
        if verdict.complete:
            self.state.cache.put(verdict)
        if verdict.malicious:
            self.state.malicious_payloads.add(digest)
        return verdict

    def _capture(self, decision: Decision, event: Event) -> None:
        try:
            verdict = inspect_capture(self._resolve(event.fields["capture"]))
        except (OSError, ValueError) as exc:   # ValueError: a NUL in the path
            verdict = unexamined("", f"capture could not be read: {exc}")
        decision.payloads.append(verdict)
        if verdict.malicious:
            decision.add(DENY, {"rule": "media-exploit", "field": "capture",
                                "sha256": verdict.sha256, "detectors": verdict.detectors})
        if not verdict.complete:
            decision.add(HOLD, {"rule": "attachment-incomplete", "field": "capture",
                                "why": verdict.reason})


def violation_of(index: RegistryIndex, event: Event, decision: Decision) -> dict[str, Any] | None:
    """The violation an event is, or None: an activity event of a barred party at or after
    00:00 UTC on the date of the earliest order that binds the party."""
    party = decision.party
    if party is None or event.type not in ACTIVITY_TYPES:
        return None
    start = index.order_us.get(party)
    if start is None or event.ts_us < start:
        return None
    idents = [h.as_json() for h in decision.hits if h.party == party]
    rules = [r["rule"] for r in decision.reasons if r.get("party") == party]
    if not idents:
        actor = event.actor or ""
        idents = [{"kind": "account", "value": actor, "matched": actor, "field": "account",
                   "source": rules[0] if rules else "party account"}]
    return {"event": event.id, "party": party, "type": event.type, "ts": event.ts,
            "verdict": decision.verdict, "identifiers": idents,
            "rule": rules[0] if rules else "registry-identifier",
            "orders": index.orders_of(party)}
