"""The write half of intake: the rows a gated batch adds, and the one transaction that
stores them. ``Intake.submit`` calls it in process; ``ingest`` on a large stream calls it
in a writer process of its own (``spywall.platform.pipeline``), which is why a batch's
rows are plain tuples in column order (cheap to send to another process) rather than
dictionaries.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from spywall.platform import db
from spywall.platform.evidence_hook import entry, record

# Column order of the tuple rows (JSON columns already encoded as text, booleans as 0/1).
EVENT_COLUMNS = ("id", "type", "ts_us", "account", "ref", "ip", "sha256", "raw", "verdict",
                 "reasons", "party", "source", "received_us")
ACCOUNT_COLUMNS = ("account", "phone", "registered_us", "registration_denied",
                   "denied_party")
LINK_COLUMNS = ("account", "kind", "value", "event")
DELIVERY_COLUMNS = ("ref", "kind", "event", "sender", "targets", "ts_us", "ip", "answered",
                    "blocked", "malicious", "payloads", "detectors", "infrastructure",
                    "evidence")
DELIVERY_PAYLOAD_COLUMNS = ("sha256", "ref")


class Rows:
    """The rows one batch writes, table by table: tuples for the tables every event
    touches, dictionaries for the rare ones (denials, payloads, violations, media, log)."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.accounts: list[tuple[Any, ...]] = []
        self.links: list[tuple[Any, ...]] = []
        self.deliveries: list[tuple[Any, ...]] = []
        self.delivery_payloads: list[tuple[str, str]] = []
        self.calls: list[str] = []                 # refs of the offered calls
        self.answered: list[str] = []              # refs of the answered calls
        self.denied: list[dict[str, Any]] = []
        self.payloads: list[dict[str, Any]] = []
        self.violations: list[dict[str, Any]] = []
        self.media: list[dict[str, Any]] = []      # malicious call media, by call
        self.log: list[dict[str, Any]] = []


class Store:
    """Writes batches of ``Rows``. ``pending_media`` says whether media that came before
    its call's offer may be waiting (then each batch's offers are looked up there)."""

    def __init__(self, pending_media: bool) -> None:
        self.pending_media = pending_media

    @classmethod
    def of(cls, conn: sa.Connection) -> Store:
        return cls(bool(conn.execute(sa.select(db.pending_media.c.ref).limit(1)).first()))

    def write(self, conn: sa.Connection, rows: Rows) -> int:
        """Store ``rows`` in ``conn``'s transaction; returns how many events were new."""
        stored = db.insert_rows(conn, db.events, EVENT_COLUMNS, rows.events)
        db.insert_rows(conn, db.accounts, ACCOUNT_COLUMNS, rows.accounts)
        if rows.denied:
            conn.execute(db.accounts.update().where(
                db.accounts.c.account == sa.bindparam("a")).values(
                    registration_denied=True, denied_party=sa.bindparam("p")), rows.denied)
        db.insert_rows(conn, db.account_links, LINK_COLUMNS, rows.links)
        db.insert_rows(conn, db.deliveries, DELIVERY_COLUMNS, rows.deliveries)
        db.insert_rows(conn, db.delivery_payloads, DELIVERY_PAYLOAD_COLUMNS,
                       rows.delivery_payloads)
        if rows.calls and self.pending_media:
            rows.media.extend(self._pending(conn, rows.calls))
        db.insert_ignore(conn, db.payloads, list({r["sha256"]: r for r in rows.payloads}
                                                 .values()))
        db.insert_ignore(conn, db.violations, rows.violations)
        db.mark_answered(conn, rows.answered)
        for media in rows.media:
            marked = mark_malicious_call(conn, **media)
            if marked is None:
                self.pending_media = True
            else:
                rows.log.extend(marked)
        record(conn, rows.log)
        return stored

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
