"""Intake: validated events through the gate into the database, in batches, idempotent by
event id. The three ways events arrive (``ingest`` from a file, ``POST /v1/events`` and
``/v1/gate``, the NATS consumer) all call ``Intake.submit``; a batch is one transaction,
so an event is acknowledged only once it is committed, and a batch that dies with the
process leaves nothing half-stored (re-sending it is safe: ids already stored are
duplicates, not new events).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any

import msgspec
import sqlalchemy as sa

from spywall.platform import db
from spywall.platform.contract import Event, EventError, parse_line
from spywall.platform.evidence_hook import entry, record
from spywall.platform.gate import DENY, Decision, Gate, GateState, violation_of
from spywall.platform.matcher import RegistryIndex
from spywall.platform.prepared import Prepared
from spywall.platform.registry_store import load_registry, registry_version

BATCH = 5000
MAX_LINKS_REMEMBERED = 500_000
MAX_REFUSALS_KEPT = 1000


class Refusal(msgspec.Struct):
    line: int
    reason: str
    id: str | None = None


class Outcome(msgspec.Struct):
    """What happened to one accepted event."""

    id: str
    verdict: str
    reasons: list[dict[str, Any]]
    party: str | None
    duplicate: bool = False
    violation: bool = False
    malicious: bool = False


class IngestResult(msgspec.Struct):
    accepted: int = 0
    duplicates: int = 0
    refused: int = 0
    refusals: list[Refusal] = msgspec.field(default_factory=list)
    violations: int = 0
    malicious: int = 0
    denied: int = 0
    held: int = 0

    def refuse(self, line: int, reason: str, ident: str | None = None) -> None:
        self.refused += 1
        if len(self.refusals) < MAX_REFUSALS_KEPT:
            self.refusals.append(Refusal(line=line, reason=reason, id=ident))

    def count(self, outcomes: Iterable[Outcome]) -> None:
        for o in outcomes:
            if o.duplicate:
                self.duplicates += 1
                continue
            self.accepted += 1
            self.violations += o.violation
            self.malicious += o.malicious
            self.denied += o.verdict == DENY
            self.held += o.verdict == "hold"


def load_state(conn: sa.Connection) -> GateState:
    """The gate's view of the database: registry index, denied, banned and proposed
    accounts, and the hashes of payloads found malicious."""
    registry = load_registry(conn)
    state = GateState(index=RegistryIndex(registry.parties, registry.official_clients))
    for r in conn.execute(sa.select(db.accounts.c.account, db.accounts.c.denied_party).where(
            db.accounts.c.registration_denied.is_(True))):
        state.denied[r.account] = r.denied_party
    for ban in conn.execute(sa.select(db.bans.c.account, db.bans.c.party, db.bans.c.status)
                            .where(db.bans.c.status.in_(("proposed", "approved", "applied")))):
        (state.banned if ban.status == "applied" else state.proposed)[ban.account] = ban.party
    state.malicious_payloads = set(conn.execute(sa.select(db.payloads.c.sha256).where(
        db.payloads.c.malicious.is_(True))).scalars())
    return state


# Built once: building the statement cost more than running it.
_STORED_COLUMNS = (db.events.c.id, db.events.c.verdict, db.events.c.reasons, db.events.c.party)
_STORED = sa.select(*_STORED_COLUMNS).where(db.events.c.id.in_(sa.bindparam("ids",
                                                                            expanding=True)))
_STORED_ONE = Prepared(sa.select(*_STORED_COLUMNS).where(db.events.c.id == sa.bindparam("id")))


@contextmanager
def _within(engine: sa.Engine, conn: sa.Connection | None,
            open_new: Callable[[sa.Engine], AbstractContextManager[sa.Connection]]
            ) -> Iterator[sa.Connection]:
    """``conn`` as it is (its owner ends it), else a new one from ``open_new(engine)``."""
    if conn is not None:
        yield conn
        return
    with open_new(engine) as own:
        yield own


class _Rows:
    """The rows one batch writes, table by table."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.accounts: list[dict[str, Any]] = []
        self.denied: list[dict[str, Any]] = []
        self.links: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.payloads: list[dict[str, Any]] = []
        self.violations: list[dict[str, Any]] = []
        self.answered: list[dict[str, Any]] = []
        self.media: list[dict[str, Any]] = []      # malicious call media, by call
        self.log: list[dict[str, Any]] = []


class Intake:
    """Gate and store events. One per process; ``refresh`` picks up registry changes
    made by another process."""

    def __init__(self, engine: sa.Engine, base: Path | None = None,
                 source: str = "file") -> None:
        self.engine, self.source = engine, source
        with engine.connect() as conn:
            self.state = load_state(conn)
            self.version = registry_version(conn)
            self.pending_media = bool(conn.execute(
                sa.select(db.pending_media.c.ref).limit(1)).first())
        self.gate = Gate(self.state, base)
        self._linked: set[tuple[str, str, str]] = set()

    def refresh(self, force: bool = False, conn: sa.Connection | None = None) -> None:
        """Reload the gate's state when the registry moved (always with ``force``), read
        through ``conn`` when given (the caller's transaction)."""
        with _within(self.engine, conn, sa.Engine.connect) as conn:
            version = registry_version(conn)
            if force or version != self.version:
                fresh = load_state(conn)
                fresh.cache = self.state.cache
                self.state = fresh
                self.gate.state = fresh
                self.version = version

    def submit(self, events: Sequence[Event], source: str | None = None,
               conn: sa.Connection | None = None) -> list[Outcome]:
        """Gate and store ``events`` in one transaction (the caller's, when ``conn`` is
        given); an outcome per event, in order."""
        now = time.time_ns() // 1000
        with _within(self.engine, conn, sa.Engine.begin) as conn:
            stored = self._stored(conn, [e.id for e in events])
            rows, outcomes, seen = _Rows(), [], set()
            for ev in events:
                if ev.id in seen or ev.id in stored:
                    prior = stored.get(ev.id)
                    outcomes.append(Outcome(id=ev.id, verdict=prior[0] if prior else "allow",
                                            reasons=prior[1] if prior else [],
                                            party=prior[2] if prior else None,
                                            duplicate=True))
                    continue
                seen.add(ev.id)
                outcomes.append(self._one(ev, rows, now, source or self.source))
            self._write(conn, rows)
        return outcomes

    @staticmethod
    def _stored(conn: sa.Connection, ids: list[str]) -> dict[str, tuple[str, Any, Any]]:
        out: dict[str, tuple[str, Any, Any]] = {}
        if len(ids) == 1:            # the inline gate: one event per request
            r = _STORED_ONE.first(conn, {"id": ids[0]})
            return {} if r is None else {r.id: (r.verdict, r.reasons, r.party)}
        for start in range(0, len(ids), 900):
            for r in conn.execute(_STORED, {"ids": ids[start:start + 900]}):
                out[r.id] = (r.verdict, r.reasons, r.party)
        return out

    def _one(self, ev: Event, rows: _Rows, now: int, source: str) -> Outcome:
        decision = self.gate.decide(ev)
        index = self.state.index
        violation = violation_of(index, ev, decision)
        f = ev.fields
        capture = next((p.sha256 for p in decision.payloads if ev.type == "call.media"), None)
        rows.events.append({
            "id": ev.id, "type": ev.type, "ts_us": ev.ts_us, "account": ev.actor,
            "ref": ev.ref, "ip": f.get("ip") if isinstance(f.get("ip"), str) else None,
            "sha256": capture or None, "raw": ev.raw, "verdict": decision.verdict,
            "reasons": decision.reasons, "party": decision.party, "source": source,
            "received_us": now})
        malicious = _SIDE_EFFECTS[ev.type](self, ev, decision, rows)
        for p in decision.payloads:
            if p.sha256 and (p.complete or p.malicious):
                rows.payloads.append({"sha256": p.sha256, "malicious": p.malicious,
                                      "complete": p.complete, "detectors": p.detectors,
                                      "infrastructure": p.infrastructure,
                                      "findings": p.findings})
        if decision.verdict == DENY:
            rows.log.append(entry("gate.denial", ev.ts_us, event=ev.id, type=ev.type,
                                  party=decision.party, verdict=decision.verdict,
                                  reasons=decision.reasons, rule=decision.reasons[0]["rule"]))
        if violation is not None:
            rows.violations.append({**violation, "ts_us": ev.ts_us, "recorded_us": now})
            rows.log.append(entry("violation", ev.ts_us, **violation))
        return Outcome(id=ev.id, verdict=decision.verdict, reasons=decision.reasons,
                       party=decision.party, violation=violation is not None,
                       malicious=malicious)

    # -- per type: what an event adds besides itself --------------------------------------
    def _registered(self, ev: Event, decision: Decision, rows: _Rows) -> bool:
        f = ev.fields
        denied = decision.verdict == DENY
        rows.accounts.append({"account": f["account"], "phone": f["phone"],
                              "registered_us": ev.ts_us, "registration_denied": False,
                              "denied_party": None})
        if denied:
            party = decision.party or ""
            rows.denied.append({"a": f["account"], "p": party})
            self.state.denied[f["account"]] = party
        self._links(ev, decision, rows, registration=True)
        return False

    def _connected(self, ev: Event, decision: Decision, rows: _Rows) -> bool:
        self._links(ev, decision, rows, registration=False)
        return False

    def _links(self, ev: Event, decision: Decision, rows: _Rows, registration: bool) -> None:
        f = ev.fields
        account = f["account"]
        self._link(rows, account, "device", f["device"], ev.id)
        if not self.state.index.is_official(f["client"]):
            self._link(rows, account, "client", f["client"], ev.id)
        if registration:
            for party in sorted({h.party for h in decision.hits
                                 if h.kind in ("ip", "cidr", "asn") and h.derived_from is None}):
                self._link(rows, account, "infrastructure", party, ev.id)

    def _link(self, rows: _Rows, account: str, kind: str, value: str, event: str) -> None:
        """A strong identifier seen on an account; the same one seen again (every
        connection repeats the device) is not written again while it is remembered."""
        key = (account, kind, value)
        if key in self._linked:
            return
        if len(self._linked) >= MAX_LINKS_REMEMBERED:
            self._linked.clear()      # memory stays bounded; the table ignores repeats
        self._linked.add(key)
        rows.links.append({"account": account, "kind": kind, "value": value, "event": event})

    def _offered(self, ev: Event, decision: Decision, rows: _Rows) -> bool:
        f = ev.fields
        rows.deliveries.append(_delivery(ev, "call", f["caller"], [f["callee"]], decision,
                                         malicious=False))
        return False

    def _sent(self, ev: Event, decision: Decision, rows: _Rows) -> bool:
        f = ev.fields
        barred_hash = any(h.kind == "sha256" and h.derived_from is None for h in decision.hits)
        malicious = barred_hash or any(p.malicious for p in decision.payloads)
        rows.deliveries.append(_delivery(ev, "message", f["sender"], list(f["recipients"]),
                                         decision, malicious))
        if malicious:
            rows.log.append(entry("delivery.malicious", ev.ts_us, event=ev.id,
                                  delivery=f["message"], sender=f["sender"],
                                  targets=list(f["recipients"]),
                                  detectors=_detectors(decision, barred_hash),
                                  rule="registry-sha256" if barred_hash else "attachment-exploit"))
        return malicious

    def _media(self, ev: Event, decision: Decision, rows: _Rows) -> bool:
        bad = [p for p in decision.payloads if p.malicious]
        if bad:
            rows.media.append({"ref": ev.fields["call"], "event": ev.id, "ts_us": ev.ts_us,
                               "sha256": bad[0].sha256,
                               "detectors": sorted({d for p in bad for d in p.detectors}),
                               "infrastructure": sorted({i for p in bad
                                                         for i in p.infrastructure})})
        return bool(bad)

    def _answered(self, ev: Event, decision: Decision, rows: _Rows) -> bool:
        rows.answered.append({"r": ev.fields["call"]})
        return False

    def _nothing(self, ev: Event, decision: Decision, rows: _Rows) -> bool:
        return False

    def _pending(self, conn: sa.Connection, calls: list[str]) -> list[dict[str, Any]]:
        """Media that arrived before their call's offer, now that the offer is here."""
        p = db.pending_media
        found: list[dict[str, Any]] = []
        for start in range(0, len(calls), 900):
            chunk = calls[start:start + 900]
            found.extend({"ref": r.ref, "event": r.event, "ts_us": r.ts_us,
                          "sha256": r.sha256, "detectors": list(r.detectors),
                          "infrastructure": list(r.infrastructure)}
                         for r in conn.execute(sa.select(p).where(p.c.ref.in_(chunk))))
            conn.execute(p.delete().where(p.c.ref.in_(chunk)))
        self.pending_media = bool(conn.execute(sa.select(p.c.ref).limit(1)).first())
        return found

    def _write(self, conn: sa.Connection, rows: _Rows) -> None:
        db.insert_ignore(conn, db.events, rows.events)
        db.insert_ignore(conn, db.accounts, rows.accounts)
        if rows.denied:
            conn.execute(db.accounts.update().where(
                db.accounts.c.account == sa.bindparam("a")).values(
                    registration_denied=True, denied_party=sa.bindparam("p")), rows.denied)
        db.insert_ignore(conn, db.account_links, rows.links)
        db.insert_ignore(conn, db.deliveries, rows.deliveries)
        db.insert_ignore(conn, db.delivery_payloads, [
            {"sha256": h, "ref": r["ref"]} for r in rows.deliveries for h in r["payloads"]])
        calls = [r["ref"] for r in rows.deliveries if r["kind"] == "call"]
        if calls and self.pending_media:
            rows.media.extend(self._pending(conn, calls))
        db.insert_ignore(conn, db.payloads, _unique(rows.payloads, "sha256"))
        db.insert_ignore(conn, db.violations, rows.violations)
        if rows.answered:
            d = db.deliveries
            conn.execute(d.update().where(d.c.ref == sa.bindparam("r")).values(answered=True),
                         rows.answered)
        for media in rows.media:
            marked = mark_malicious_call(conn, **media)
            if marked is None:
                self.pending_media = True
            else:
                rows.log.extend(marked)
        record(conn, rows.log)


def mark_malicious_call(conn: sa.Connection, ref: str, event: str, ts_us: int, sha256: str,
                        detectors: list[str], infrastructure: list[str]
                        ) -> list[dict[str, Any]] | None:
    """A call whose media carried an exploit becomes a malicious delivery (its log entry
    is returned). A media event that comes before its call's offer waits in
    ``pending_media`` until the offer arrives (None is returned then)."""
    d = db.deliveries
    row = conn.execute(sa.select(d).where(d.c.ref == ref, d.c.kind == "call")).first()
    if row is None:
        db.insert_ignore(conn, db.pending_media, [{
            "ref": ref, "event": event, "ts_us": ts_us, "sha256": sha256,
            "detectors": detectors, "infrastructure": infrastructure}])
        return None
    if row.malicious:
        return []
    db.insert_ignore(conn, db.delivery_payloads, [{"sha256": sha256, "ref": ref}])
    conn.execute(d.update().where(d.c.ref == ref).values(
        malicious=True, detectors=detectors,
        infrastructure=sorted(set(infrastructure) | set(row.infrastructure)),
        payloads=[*row.payloads, sha256], evidence=[*row.evidence, event]))
    return [entry("delivery.malicious", ts_us, event=event, delivery=ref, sender=row.sender,
                  targets=list(row.targets), detectors=detectors, rule="media-exploit")]


def _unique(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return list({r[key]: r for r in rows}.values())


def _payload_hashes(ev: Event, decision: Decision) -> list[str]:
    """Every payload of a delivery by hash: each declared attachment (examined now or
    not: a retro-hunt finds it later by this hash) and whatever the gate examined."""
    attachments = ev.fields.get("attachments")
    if not attachments and not decision.payloads:
        return []
    declared = [a["sha256"].lower() for a in attachments or ()]
    return sorted({*declared, *(p.sha256 for p in decision.payloads if p.sha256)})


def _detectors(decision: Decision, barred_hash: bool) -> list[str]:
    names = sorted({d for p in decision.payloads if p.malicious for d in p.detectors})
    return names + (["registry-sha256"] if barred_hash else [])


def _delivery(ev: Event, kind: str, sender: str, targets: list[str], decision: Decision,
              malicious: bool) -> dict[str, Any]:
    barred = any(h.kind == "sha256" and h.derived_from is None for h in decision.hits)
    infra = sorted({i for p in decision.payloads for i in p.infrastructure})
    return {"ref": ev.ref, "kind": kind, "event": ev.id, "sender": sender,
            "targets": targets, "ts_us": ev.ts_us, "ip": ev.fields.get("ip"),
            "answered": False, "blocked": decision.verdict == DENY, "malicious": malicious,
            "payloads": _payload_hashes(ev, decision),
            "detectors": _detectors(decision, barred) if malicious else [],
            "infrastructure": infra, "evidence": [ev.id]}


_SIDE_EFFECTS = {
    "account.registered": Intake._registered,
    "account.connected": Intake._connected,
    "call.offered": Intake._offered,
    "call.answered": Intake._answered,
    "call.ended": Intake._nothing,
    "call.media": Intake._media,
    "message.sent": Intake._sent,
}


def read_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Numbered non-blank lines of a JSON Lines stream."""
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield number, line


def ingest_stream(intake: Intake, stream: IO[bytes], result: IngestResult,
                  on_batch: Any = None, batch: int = BATCH) -> IngestResult:
    """Every line of ``stream`` through the gate into the database, ``batch`` at a time.
    A line the contract refuses is counted with its number and reason; the rest go on."""
    pending: list[Event] = []
    for number, line in read_lines(stream):
        try:
            pending.append(parse_line(line))
        except EventError as exc:
            result.refuse(number, str(exc))
            continue
        except UnicodeDecodeError:
            result.refuse(number, "not UTF-8")
            continue
        if len(pending) >= batch:
            result.count(intake.submit(pending))
            pending = []
            if on_batch is not None:
                on_batch(result)
    if pending:
        result.count(intake.submit(pending))
        if on_batch is not None:
            on_batch(result)
    return result
