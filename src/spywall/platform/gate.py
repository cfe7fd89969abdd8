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

Anything else is ``allow``. Payloads are scanned in supervised worker processes
(``media.PayloadScanner``, ``spywall.scanpool``), never in the deciding process: a worker
that overruns, dies or runs out of memory on one makes it ``attachment-incomplete``.
A decision on an event of a barred party, at or after the
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
    PayloadScanner,
    PayloadVerdict,
    decode_data,
    read_regular,
    unexamined,
)
from spywall.scanpool import WorkerLost

ALLOW, DENY, HOLD = "allow", "deny", "hold"
Scanned = dict[str, PayloadVerdict]    # payload field ("attachments[0]", "capture") -> verdict
PAYLOAD_TYPES = frozenset({"message.sent", "call.media"})   # the events with payloads
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
    file's folder for ``ingest``, ``--media-root`` for the server). Payloads (attachments
    by content, call captures) are scanned by ``scanner``, in its worker processes, never
    in this one; ``close`` stops them."""

    def __init__(self, state: GateState, base: Path | None = None,
                 scanner: PayloadScanner | None = None) -> None:
        self.state = state
        self.base = base
        self.scanner = scanner if scanner is not None else PayloadScanner()

    def close(self) -> None:
        self.scanner.close()

    def decide(self, event: Event, scanned: Scanned | None = None) -> Decision:
        """The decision on ``event``; its payloads' verdicts from ``scanned`` when the
        caller ran ``scan_payloads`` already, else scanned here."""
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
            self._attachments(decision, event, scanned)
        elif event.type == "call.media":
            verdict = None if scanned is None else scanned.get("capture")
            self._capture(decision, verdict or self.scan_payloads(event)["capture"])
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

    def scan_payloads(self, event: Event) -> Scanned:
        """The event's payloads that need a scan (content not judged before), through
        the scanner's workers: field -> verdict, for ``decide``. Safe outside the lock
        that serialises decisions (it only reads the state and fills the cache), so a
        caller may scan first and decide after, and a slow payload never makes decisions
        on other events wait. After a worker was lost on one attachment, the event's
        other attachments are not scanned (they are held with it): one event costs at
        most one worker's deadline."""
        scanned: Scanned = {}
        if event.type == "call.media":
            scanned["capture"] = self.scanner.capture(self._resolve(event.fields["capture"]))
            return scanned
        lost = ""
        for i, att in enumerate(event.fields.get("attachments") or ()):
            if "data" not in att and "path" not in att:
                continue              # known only by its hash: decide looks it up
            digest = att["sha256"].lower()
            if self.state.cache.get(digest) is not None:
                continue
            data = self._read(att, digest, i)
            if not isinstance(data, bytes):
                continue              # known by hash, or unreadable: decide says which
            if lost:
                scanned[f"attachments[{i}]"] = unexamined(digest, lost)
                continue
            verdict, worker_lost = self._scan(data, digest)
            scanned[f"attachments[{i}]"] = verdict
            if worker_lost:
                lost = f"limit: not scanned: attachment {i} of this event stopped its scan worker"
        return scanned

    def _scan(self, data: bytes, digest: str) -> tuple[PayloadVerdict, bool]:
        """An attachment's verdict from a worker (a complete one is cached), and whether
        the worker was lost on it."""
        try:
            verdict = self.scanner.attachment(data, f"attachment:{digest[:12]}", digest)
        except WorkerLost as exc:
            return unexamined(digest, f"limit: {exc}"), True
        if verdict.complete:
            self.state.cache.put(verdict)
        return verdict, False

    def _attachments(self, decision: Decision, event: Event, scanned: Scanned | None) -> None:
        attachments = event.fields.get("attachments") or ()
        if attachments and scanned is None:
            scanned = self.scan_payloads(event)
        for i, att in enumerate(attachments):
            digest = att["sha256"].lower()
            verdict = self.state.cache.get(digest)
            if verdict is None and scanned:
                verdict = scanned.get(f"attachments[{i}]")
            if verdict is None:
                # Known only by its hash, unreadable, or dropped from the cache since
                # the scan pass (then scanned now).
                data = self._read(att, digest, i)
                verdict = self._scan(data, digest)[0] if isinstance(data, bytes) else data
                if verdict is None:
                    continue
            decision.payloads.append(verdict)
            where = f"attachments[{i}]"
            if verdict.malicious:
                self.state.malicious_payloads.add(digest)
                rule = "attachment-known-malicious" if verdict.detectors == ["known-malicious"] \
                    else "attachment-exploit"
                decision.add(DENY, {"rule": rule, "field": where,
                                    "sha256": digest, "detectors": verdict.detectors})
            if not verdict.complete:
                decision.add(HOLD, {"rule": "attachment-incomplete", "field": where,
                                    "sha256": digest, "why": verdict.reason})

    def _read(self, att: dict[str, Any], digest: str, i: int) -> bytes | PayloadVerdict | None:
        """An attachment's bytes; or its verdict when it cannot be read or is known only
        by its hash (None: nothing known of that hash)."""
        data: bytes | None = None
        try:
            if "data" in att:
                data = decode_data(att["data"])
            elif "path" in att:
                data = read_regular(self._resolve(att["path"]), MAX_ATTACHMENT_BYTES)
        except (OSError, ValueError) as exc:
            return unexamined(digest, f"attachment {i} could not be read: {exc}")
        if data is not None:
            return data
        if digest in self.state.malicious_payloads:
            return PayloadVerdict(sha256=digest, malicious=True, complete=True,
                                  detectors=["known-malicious"], infrastructure=[],
                                  findings=[])
        return None

    def _capture(self, decision: Decision, verdict: PayloadVerdict) -> None:
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
