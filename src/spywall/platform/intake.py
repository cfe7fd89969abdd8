"""Intake: validated events through the gate into the database, in batches, idempotent by
event id. The three ways events arrive (``ingest`` from a file, ``POST /v1/events`` and
``/v1/gate``, the NATS consumer) all gate with ``Intake.prepare`` and store with
``Store.write`` (``spywall.platform.store``): ``Intake.submit`` does both in one
transaction, and ``ingest`` of a large stream stores in a writer process while the next
batch is gated (``spywall.platform.pipeline``). A batch is one transaction, so an event
is acknowledged only once it is committed, and a batch that dies with the process leaves
nothing half-stored (re-sending it is safe: ids already stored are duplicates, not new
events).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any

import msgspec
import sqlalchemy as sa

from spywall import heap
from spywall.platform import db
from spywall.platform.contract import REF_FIELD, Event, EventError, parse_line
from spywall.platform.evidence_hook import entry
from spywall.platform.gate import (
    DENY,
    PAYLOAD_TYPES,
    Decision,
    Gate,
    GateState,
    Scanned,
    violation_of,
)
from spywall.platform.matcher import RegistryIndex
from spywall.platform.media import PayloadScanner
from spywall.platform.prepared import Prepared
from spywall.platform.registry_store import load_registry, registry_version
from spywall.platform.store import Rows, Store

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


# Built once: building the statement cost more than running it (the inline gate's
# one-id look-up, on the driver's cursor).
_STORED_ONE = Prepared(sa.select(db.events.c.id, db.events.c.verdict, db.events.c.reasons,
                                 db.events.c.party).where(db.events.c.id == sa.bindparam("id")))


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


class Intake:
    """Gate and store events. One per process; ``refresh`` picks up registry changes
    made by another process. Payloads are scanned by ``scanner`` (default: a
    ``PayloadScanner`` of its own, whose workers start with the first payload); ``close``
    stops its workers."""

    def __init__(self, engine: sa.Engine, base: Path | None = None,
                 source: str = "file", scanner: PayloadScanner | None = None) -> None:
        self.engine, self.source = engine, source
        with engine.connect() as conn:
            self.state = load_state(conn)
            self.version = registry_version(conn)
            self.store = Store.of(conn)
        self.gate = Gate(self.state, base, scanner)
        self._linked: set[tuple[str, str, str]] = set()
        self._official_of: RegistryIndex | None = None
        self._official_cache: dict[str, bool] = {}

    def close(self) -> None:
        """Stop the payload scanner's workers (the face's shut-down)."""
        self.gate.close()

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

    def resync(self) -> None:
        """Forget what was gated but maybe not stored (a pipeline's batches in flight):
        the gate's state, the links remembered and the pending media, from the database."""
        self.refresh(force=True)
        self._linked.clear()
        with self.engine.connect() as conn:
            self.store = Store.of(conn)

    def scan_payloads(self, events: Sequence[Event]) -> list[Scanned | None]:
        """``Gate.scan_payloads`` of each event that carries payloads (None for the
        others), for ``submit``: callers that serialise decisions run this first, outside
        their lock, so that no decision waits on another event's payload."""
        return [self.gate.scan_payloads(ev) if ev.type in PAYLOAD_TYPES else None
                for ev in events]

    def submit(self, events: Sequence[Event], source: str | None = None,
               conn: sa.Connection | None = None,
               scanned: Sequence[Scanned | None] | None = None) -> list[Outcome]:
        """Gate and store ``events`` in one transaction (the caller's, when ``conn`` is
        given); an outcome per event, in order. ``scanned``: ``scan_payloads(events)``,
        when the caller ran it."""
        with _within(self.engine, conn, sa.Engine.begin) as conn:
            stored = stored_events(conn, [e.id for e in events])
            rows, outcomes = self.prepare(events, stored, source, scanned=scanned)
            self.store.write(conn, rows)
        return outcomes

    def prepare(self, events: Sequence[Event], stored: dict[str, tuple[str, Any, Any]],
                source: str | None = None, in_flight: frozenset[str] | set[str] = frozenset(),
                scanned: Sequence[Scanned | None] | None = None) -> tuple[Rows, list[Outcome]]:
        """Gate ``events`` and build the rows they add (nothing is written here).
        ``stored`` holds the events already in the database among them, ``in_flight`` the
        ids of events gated earlier whose rows are not committed yet: both are duplicates."""
        now = time.time_ns() // 1000
        rows, outcomes, seen = Rows(), [], set()
        for number, ev in enumerate(events):
            if ev.id in seen or ev.id in stored or ev.id in in_flight:
                prior = stored.get(ev.id)
                outcomes.append(Outcome(id=ev.id, verdict=prior[0] if prior else "allow",
                                        reasons=prior[1] if prior else [],
                                        party=prior[2] if prior else None,
                                        duplicate=True))
                continue
            seen.add(ev.id)
            outcomes.append(self._one(ev, rows, now, source or self.source,
                                      None if scanned is None else scanned[number]))
        return rows, outcomes

    def _one(self, ev: Event, rows: Rows, now: int, source: str,
             scanned: Scanned | None = None) -> Outcome:
        decision = self.gate.decide(ev, scanned)
        violation = violation_of(self.state.index, ev, decision) \
            if decision.party is not None else None
        ip = ev.fields.get("ip")
        payloads = decision.payloads
        capture = payloads[0].sha256 if payloads and ev.type == "call.media" else None
        rows.events.append((ev.id, ev.type, ev.ts_us, ev.actor, ev.ref,
                            ip if isinstance(ip, str) else None, capture or None, ev.raw,
                            decision.verdict, _json_text(decision.reasons), decision.party,
                            source, now))
        malicious = _SIDE_EFFECTS[ev.type](self, ev, decision, rows)
        for p in payloads:
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
    def _registered(self, ev: Event, decision: Decision, rows: Rows) -> bool:
        f = ev.fields
        denied = decision.verdict == DENY
        rows.accounts.append((f["account"], f["phone"], ev.ts_us, 0, None))
        if denied:
            party = decision.party or ""
            rows.denied.append({"a": f["account"], "p": party})
            self.state.denied[f["account"]] = party
        self._links(ev, decision, rows, registration=True)
        return False

    def _connected(self, ev: Event, decision: Decision, rows: Rows) -> bool:
        self._links(ev, decision, rows, registration=False)
        return False

    def _links(self, ev: Event, decision: Decision, rows: Rows, registration: bool) -> None:
        f = ev.fields
        account = f["account"]
        self._link(rows, account, "device", f["device"], ev.id)
        if not self._official(f["client"]):
            self._link(rows, account, "client", f["client"], ev.id)
        if registration and decision.hits:
            for party in sorted({h.party for h in decision.hits
                                 if h.kind in ("ip", "cidr", "asn") and h.derived_from is None}):
                self._link(rows, account, "infrastructure", party, ev.id)

    def _official(self, client: str) -> bool:
        """``is_official`` of the registry, remembered per client string (a platform has
        few builds; the cache is dropped with the registry index it came from)."""
        index = self.state.index
        if self._official_of is not index or len(self._official_cache) > 4096:
            self._official_of, self._official_cache = index, {}
        known = self._official_cache.get(client)
        if known is None:
            known = self._official_cache[client] = index.is_official(client)
        return known

    def _link(self, rows: Rows, account: str, kind: str, value: str, event: str) -> None:
        """A strong identifier seen on an account; the same one seen again (every
        connection repeats the device) is not written again while it is remembered."""
        key = (account, kind, value)
        if key in self._linked:
            return
        if len(self._linked) >= MAX_LINKS_REMEMBERED:
            self._linked.clear()      # memory stays bounded; the table ignores repeats
        self._linked.add(key)
        rows.links.append((account, kind, value, event))

    def _offered(self, ev: Event, decision: Decision, rows: Rows) -> bool:
        f = ev.fields
        _delivery(rows, ev, "call", f["caller"], [f["callee"]], decision, malicious=False)
        rows.calls.append(f["call"])
        return False

    def _sent(self, ev: Event, decision: Decision, rows: Rows) -> bool:
        f = ev.fields
        barred_hash = _barred_hash(decision)
        malicious = barred_hash or any(p.malicious for p in decision.payloads)
        _delivery(rows, ev, "message", f["sender"], list(f["recipients"]), decision,
                  malicious)
        if malicious:
            rows.log.append(entry("delivery.malicious", ev.ts_us, event=ev.id,
                                  delivery=f["message"], sender=f["sender"],
                                  targets=list(f["recipients"]),
                                  detectors=_detectors(decision, barred_hash),
                                  rule="registry-sha256" if barred_hash else "attachment-exploit"))
        return malicious

    def _media(self, ev: Event, decision: Decision, rows: Rows) -> bool:
        bad = [p for p in decision.payloads if p.malicious]
        if bad:
            rows.media.append({"ref": ev.fields["call"], "event": ev.id, "ts_us": ev.ts_us,
                               "sha256": bad[0].sha256,
                               "detectors": sorted({d for p in bad for d in p.detectors}),
                               "infrastructure": sorted({i for p in bad
                                                         for i in p.infrastructure})})
        return bool(bad)

    def _answered(self, ev: Event, decision: Decision, rows: Rows) -> bool:
        rows.answered.append(ev.fields["call"])
        return False

    def _nothing(self, ev: Event, decision: Decision, rows: Rows) -> bool:
        return False


def stored_events(conn: sa.Connection, ids: list[str]) -> dict[str, tuple[str, Any, Any]]:
    """The events among ``ids`` that are stored: id -> (verdict, reasons, party)."""
    out: dict[str, tuple[str, Any, Any]] = {}
    if len(ids) == 1:            # the inline gate: one event per request
        r = _STORED_ONE.first(conn, {"id": ids[0]})
        return {} if r is None else {r.id: (r.verdict, r.reasons, r.party)}
    e = db.events
    for ident, verdict, reasons, party in db.select_among(
            conn, [e.c.id, e.c.verdict, e.c.reasons, e.c.party], e.c.id, ids):
        out[ident] = (verdict, reasons, party)
    return out


_json = msgspec.json.Encoder()


def _json_text(value: list[Any]) -> str:
    """A JSON column's text (most lists are empty)."""
    return _json.encode(value).decode() if value else "[]"


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


def _delivery(rows: Rows, ev: Event, kind: str, sender: str, targets: list[str],
              decision: Decision, malicious: bool) -> None:
    infra = sorted({i for p in decision.payloads for i in p.infrastructure}) \
        if decision.payloads else []
    payloads = _payload_hashes(ev, decision)
    ref = ev.fields[REF_FIELD[ev.type]]
    rows.deliveries.append((
        ref, kind, ev.id, sender, _json_text(targets), ev.ts_us, ev.fields.get("ip"), 0,
        int(decision.verdict == DENY), int(malicious), _json_text(payloads),
        _json_text(_detectors(decision, _barred_hash(decision)) if malicious else []),
        _json_text(infra), _json_text([ev.id])))
    if payloads:
        rows.delivery_payloads.extend((h, ref) for h in payloads)


def _barred_hash(decision: Decision) -> bool:
    """An attachment's hash is one the registry lists (not only a derived one)."""
    return bool(decision.hits) and any(h.kind == "sha256" and h.derived_from is None
                                       for h in decision.hits)


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
        if line and not line.isspace():     # as line.strip(), without copying the line
            yield number, line


def ingest_stream(intake: Intake, stream: IO[bytes], result: IngestResult,
                  on_batch: Any = None, batch: int = BATCH,
                  pipeline: bool = False) -> IngestResult:
    """Every line of ``stream`` through the gate into the database, ``batch`` at a time.
    A line the contract refuses is counted with its number and reason; the rest go on.
    ``pipeline``: from the second batch on, store in a writer process while the next
    batch is gated here (``spywall.platform.pipeline``); a stream of one batch never
    starts it. The collector is tuned for the stream meanwhile (``heap.streaming``)."""
    with heap.streaming():
        return _ingest(intake, stream, result, on_batch, batch, pipeline)


def _ingest(intake: Intake, stream: IO[bytes], result: IngestResult, on_batch: Any,
            batch: int, pipeline: bool) -> IngestResult:
    from spywall.platform.pipeline import Pipeline

    writer: Pipeline | None = None

    def done(outcomes: list[list[Outcome]]) -> None:
        for one in outcomes:
            result.count(one)
            if on_batch is not None:
                on_batch(result)

    pending: list[Event] = []
    try:
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
                if writer is not None:
                    done(writer.put(pending))
                else:
                    done([intake.submit(pending)])
                    if pipeline:
                        writer = Pipeline(intake)
                pending = []
        if pending:
            done(writer.put(pending) if writer is not None else [intake.submit(pending)])
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        done(writer.close())
    return result
