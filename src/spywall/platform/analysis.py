"""Analysis over everything stored: malicious deliveries, actor accounts linked through
strong identifiers, campaigns, attribution to a party (and the identifiers it derives),
violations found after the fact, ban proposals and notifications.

Linking follows the contract exactly. Accounts are joined when they share a device
fingerprint, a non-official client build, or registration from the same party's barred
infrastructure (``account_links``); nothing else joins them: not a shared address that
is not barred, not a country code, not a number prefix, not unanswered calls with clean
media. An actor account is one that made a malicious delivery or is joined to one; a
campaign is one such group, with its malicious deliveries. Campaign ids are stable: a
campaign keeps the id of the first group it was seen as (``campaigns.seed``).
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import msgspec
import sqlalchemy as sa

from spywall.platform import db
from spywall.platform.contract import ACTIVITY_TYPES, us_to_rfc3339
from spywall.platform.evidence_hook import entry, record
from spywall.platform.matcher import Hit, RegistryIndex
from spywall.platform.notify import country_of, queue_notifications
from spywall.platform.registry import Identifier
from spywall.platform.registry_store import add_identifiers, load_registry

ANALYST = "analysis"


class Delivery(msgspec.Struct):
    ref: str
    kind: str
    event: str
    sender: str
    targets: list[str]
    ts_us: int
    ip: str | None
    detectors: list[str]
    infrastructure: list[str]
    evidence: list[str]


class Campaign(msgspec.Struct):
    id: str
    seed: str                              # the sender of its first malicious delivery
    party: str | None
    actors: list[str]
    targets: list[str]
    deliveries: list[Delivery]
    links: dict[str, list[list[str]]]      # account -> [[kind, value], ...]
    attribution: dict[str, Any] | None = None

    @property
    def infrastructure(self) -> list[str]:
        infra = {i for d in self.deliveries for i in d.infrastructure}
        infra.update(d.ip for d in self.deliveries if d.ip)
        return sorted(infra)

    @property
    def detectors(self) -> list[str]:
        return sorted({x for d in self.deliveries for x in d.detectors})


class AnalysisResult(msgspec.Struct):
    campaigns: int = 0
    malicious_calls: int = 0
    attributed: list[str] = msgspec.field(default_factory=list)
    derived: int = 0
    violations: int = 0
    proposals: int = 0
    notifications: int = 0


def now_us() -> int:
    return time.time_ns() // 1000


# -- calls: answered, and what their media carried ----------------------------------------
def reconcile_calls(conn: sa.Connection) -> int:
    """Rebuild what intake keeps current batch by batch: answered calls, and calls whose
    media carried an exploit (a full pass over the stored events, for ``analyse --full``
    after a restore or a change of detectors). Returns calls newly found malicious."""
    from spywall.platform.store import mark_malicious_call

    e, d, p = db.events, db.deliveries, db.payloads
    answered = sa.select(e.c.ref).where(e.c.type == "call.answered")
    conn.execute(d.update().where(d.c.kind == "call", d.c.answered.is_(False),
                                  d.c.ref.in_(answered)).values(answered=True))
    rows = conn.execute(
        sa.select(e.c.ref, e.c.id, e.c.ts_us, p.c.sha256, p.c.detectors, p.c.infrastructure)
        .join(p, p.c.sha256 == e.c.sha256)
        .where(e.c.type == "call.media", p.c.malicious.is_(True))).all()
    found = 0
    for r in rows:
        marked = mark_malicious_call(conn, r.ref, r.id, r.ts_us, r.sha256, list(r.detectors),
                                     list(r.infrastructure))
        if marked:
            record(conn, marked)
            found += 1
    return found


# -- linking ------------------------------------------------------------------------------
def malicious_deliveries(conn: sa.Connection) -> list[Delivery]:
    d = db.deliveries
    return [Delivery(ref=r.ref, kind=r.kind, event=r.event, sender=r.sender,
                     targets=list(r.targets), ts_us=r.ts_us, ip=r.ip,
                     detectors=list(r.detectors), infrastructure=list(r.infrastructure),
                     evidence=list(r.evidence))
            for r in conn.execute(sa.select(d).where(db.MALICIOUS_ONLY)
                                  .order_by(d.c.ts_us, d.c.ref))]


def linked_groups(conn: sa.Connection, seeds: Iterable[str]
                  ) -> tuple[dict[str, int], dict[str, list[list[str]]]]:
    """Accounts joined to ``seeds`` through shared strong identifiers: account -> group
    number, and each account's strong identifiers. Walks the link table outward from the
    seeds only, a breadth at a time, so its cost follows the actors, not the platform."""
    links = db.account_links
    group: dict[str, int] = {}
    keys_of: dict[str, list[list[str]]] = defaultdict(list)
    for number, seed in enumerate(dict.fromkeys(seeds)):
        if seed in group:
            continue
        group[seed] = number
        frontier: list[str] = [seed]
        seen_keys: set[tuple[str, str]] = set()
        while frontier:
            keys: set[tuple[str, str]] = set()
            for start in range(0, len(frontier), 500):
                chunk = frontier[start:start + 500]
                for r in conn.execute(sa.select(links.c.account, links.c.kind, links.c.value)
                                      .where(links.c.account.in_(chunk))):
                    keys_of[r.account].append([r.kind, r.value])
                    keys.add((r.kind, r.value))
            keys -= seen_keys
            seen_keys |= keys
            frontier = []
            for kind, value in sorted(keys):
                for (account,) in conn.execute(sa.select(links.c.account).where(
                        links.c.kind == kind, links.c.value == value)):
                    if account not in group:
                        group[account] = number
                        frontier.append(account)
                    elif group[account] != number:
                        _merge(group, group[account], number)
    return group, dict(keys_of)


def _merge(group: dict[str, int], old: int, new: int) -> None:
    for account, g in group.items():
        if g == old:
            group[account] = new


def build_campaigns(conn: sa.Connection) -> list[Campaign]:
    """Campaigns as they stand now: malicious deliveries grouped by linked senders."""
    deliveries = malicious_deliveries(conn)
    group, keys_of = linked_groups(conn, (dl.sender for dl in deliveries))
    members: dict[int, list[str]] = defaultdict(list)
    for account, g in group.items():
        members[g].append(account)
    by_group: dict[int, list[Delivery]] = defaultdict(list)
    for dl in deliveries:
        by_group[group[dl.sender]].append(dl)
    stored = {r.seed: r for r in conn.execute(sa.select(db.campaigns))}
    out = []
    for g, dls in by_group.items():
        actors = sorted(members[g])
        actor_set = set(actors)
        seeds = [a for a in actors if a in stored]
        row = min((stored[a] for a in seeds), key=lambda r: r.id) if seeds else None
        seed = dls[0].sender
        cid = row.id if row is not None else \
            "C-" + hashlib.sha256(seed.encode()).hexdigest()[:12]
        targets = sorted({t for dl in dls for t in dl.targets} - actor_set)
        out.append(Campaign(id=cid, seed=row.seed if row is not None else seed,
                            party=row.party if row is not None else None,
                            actors=actors, targets=targets, deliveries=dls,
                            links={a: keys_of.get(a, []) for a in actors},
                            attribution=row.attribution if row is not None else None))
    return sorted(out, key=lambda c: (c.deliveries[0].ts_us, c.id))


# -- attribution --------------------------------------------------------------------------
def attribution_hits(index: RegistryIndex, campaign: Campaign,
                     phones: dict[str, str]) -> list[Hit]:
    """The party identifiers a campaign's actors or infrastructure carry."""
    hits: list[Hit] = []
    for account in campaign.actors:
        hits.extend(index.exact("account", account, "actor account"))
        if account in phones:
            hits.extend(index.phone(phones[account], "actor phone"))
        for kind, value in campaign.links.get(account, []):
            if kind == "device":
                hits.extend(index.exact("device", value, "actor device"))
            elif kind == "client":
                hits.extend(index.client(value, "actor client"))
            elif kind == "infrastructure" and value in index.parties:
                hits.append(Hit(value, "infrastructure", value, account,
                                "registration infrastructure", "registry"))
    for host in campaign.infrastructure:
        hits.extend(index.host(host, "campaign infrastructure"))
    return hits


def _derived(campaign: Campaign, index: RegistryIndex) -> list[Identifier]:
    source = f"derived from campaign {campaign.id}"
    added = time.strftime("%Y-%m-%d", time.gmtime())
    out = []
    for account in campaign.actors:
        out.append(Identifier("account", account, source, added, ANALYST, campaign.id))
        for kind, value in campaign.links.get(account, []):
            if kind == "device" or (kind == "client" and not index.is_official(value)):
                out.append(Identifier(kind, value, source, added, ANALYST, campaign.id))
    return list({(i.kind, i.value): i for i in out}.values())


def _phones(conn: sa.Connection, accounts: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    accounts = list(accounts)
    for start in range(0, len(accounts), 900):
        chunk = accounts[start:start + 900]
        for r in conn.execute(sa.select(db.accounts.c.account, db.accounts.c.phone).where(
                db.accounts.c.account.in_(chunk))):
            if r.phone:
                out[r.account] = r.phone
    return out


def _late_violations(conn: sa.Connection, index: RegistryIndex, campaign: Campaign,
                     party: str) -> int:
    """Events of an attributed campaign's actors that are violations: activity at or after
    the order binding the party, whatever the gate said when they came in."""
    start = index.order_us.get(party)
    if start is None:
        return 0
    e = db.events
    rows: list[dict[str, Any]] = []
    now = now_us()
    for i in range(0, len(campaign.actors), 500):
        chunk = campaign.actors[i:i + 500]
        for ev in conn.execute(sa.select(e.c.id, e.c.type, e.c.ts_us, e.c.account,
                                         e.c.verdict, e.c.raw).where(
                e.c.account.in_(chunk), e.c.type.in_(sorted(ACTIVITY_TYPES)),
                e.c.ts_us >= start)):
            ident = {"kind": "account", "value": ev.account, "matched": ev.account,
                     "field": "account", "source": f"derived from campaign {campaign.id}",
                     "derived_from": campaign.id}
            v = {"event": ev.id, "party": party, "type": ev.type,
                 "ts": msgspec.json.decode(ev.raw).get("ts", us_to_rfc3339(ev.ts_us)),
                 "verdict": ev.verdict, "identifiers": [ident], "rule": "derived-identifier",
                 "orders": index.orders_of(party)}
            rows.append({**v, "ts_us": ev.ts_us, "recorded_us": now})
    known: set[str] = set()
    for i in range(0, len(rows), 900):
        ids = [r["event"] for r in rows[i:i + 900]]
        known.update(conn.execute(sa.select(db.violations.c.event).where(
            db.violations.c.event.in_(ids))).scalars())
    fresh = [r for r in rows if r["event"] not in known]
    db.insert_ignore(conn, db.violations, fresh)
    record(conn, [entry("violation", r["ts_us"], **{k: v for k, v in r.items()
                                                     if k not in ("ts_us", "recorded_us")})
                  for r in fresh])
    return len(fresh)


def _propose(conn: sa.Connection, campaign: Campaign, party: str | None) -> int:
    b = db.bans
    known: set[str] = set()
    for i in range(0, len(campaign.actors), 900):
        known.update(conn.execute(sa.select(b.c.account).where(
            b.c.account.in_(campaign.actors[i:i + 900]),
            b.c.status.in_(("proposed", "approved", "applied")))).scalars())
    denied = set(conn.execute(sa.select(db.accounts.c.account).where(
        db.accounts.c.registration_denied.is_(True),
        db.accounts.c.account.in_(campaign.actors[:900]))).scalars())
    now = now_us()
    count = 0
    for account in campaign.actors:
        if account in known or account in denied:
            continue
        evidence = {"campaign": campaign.id, "links": campaign.links.get(account, []),
                    "deliveries": [d.event for d in campaign.deliveries
                                   if d.sender == account][:20]}
        ban_id = conn.execute(b.insert().values(
            account=account, party=party, campaign=campaign.id, status="proposed",
            evidence=evidence, created_us=now, updated_us=now)).inserted_primary_key
        assert ban_id is not None
        ban_id = ban_id[0]
        conn.execute(db.ban_steps.insert().values(ban=ban_id, step="propose", actor=ANALYST,
                                                  reason="linked to a campaign by analysis",
                                                  ts_us=now))
        record(conn, [entry("enforcement", now, step="propose", ban=ban_id, account=account,
                            party=party, campaign=campaign.id, actor=ANALYST,
                            evidence=evidence, events=evidence["deliveries"])])
        count += 1
    return count


def analyse(conn: sa.Connection, full: bool = False) -> AnalysisResult:
    """One pass over the malicious deliveries and what links to them; idempotent (a second
    pass over the same data changes nothing). ``full`` first rebuilds the calls' state
    from every stored event."""
    db.lock_writes(conn)
    result = AnalysisResult(malicious_calls=reconcile_calls(conn) if full else 0)
    campaigns = build_campaigns(conn)
    result.campaigns = len(campaigns)
    for campaign in campaigns:
        registry = load_registry(conn)
        index = RegistryIndex(registry.parties, registry.official_clients)
        _store(conn, campaign)
        if campaign.party is None:
            hits = attribution_hits(index, campaign, _phones(conn, campaign.actors))
            if hits:
                _attribute(conn, campaign, hits)
                result.attributed.append(campaign.id)
        if campaign.party is not None:
            derived = _derived(campaign, index)
            result.derived += add_identifiers(conn, campaign.party, derived, ANALYST,
                                              f"attribution of campaign {campaign.id}")
            result.violations += _late_violations(conn, index, campaign, campaign.party)
        result.proposals += _propose(conn, campaign, campaign.party)
        result.notifications += queue_notifications(conn, campaign.id, campaign.targets)
    return result


def _store(conn: sa.Connection, campaign: Campaign) -> None:
    c = db.campaigns
    if conn.execute(sa.select(c.c.id).where(c.c.id == campaign.id)).first() is None:
        conn.execute(c.insert().values(id=campaign.id, party=None, seed=campaign.seed))


def _attribute(conn: sa.Connection, campaign: Campaign, hits: list[Hit]) -> None:
    party = hits[0].party
    now = now_us()
    why = {"rule": "shared-identifier",
           "identifiers": [h.as_json() for h in hits if h.party == party][:50]}
    conn.execute(db.campaigns.update().where(db.campaigns.c.id == campaign.id).values(
        party=party, attributed_us=now, attribution=why))
    campaign.party, campaign.attribution = party, why
    record(conn, [entry("campaign.attribution", now, campaign=campaign.id, party=party,
                        events=[d.event for d in campaign.deliveries][:100], **why)])


def campaign_json(campaign: Campaign, phones: dict[str, str]) -> dict[str, Any]:
    """The contract's campaign object (plus targets counted by country)."""
    countries: dict[str, int] = defaultdict(int)
    for t in campaign.targets:
        countries[country_of(phones.get(t))] += 1
    return {"id": campaign.id, "party": campaign.party, "actors": campaign.actors,
            "targets": campaign.targets,
            "first_seen": us_to_rfc3339(min(d.ts_us for d in campaign.deliveries)),
            "last_seen": us_to_rfc3339(max(d.ts_us for d in campaign.deliveries)),
            "deliveries": len(campaign.deliveries), "detectors": campaign.detectors,
            "infrastructure": campaign.infrastructure,
            "countries": dict(sorted(countries.items(), key=lambda kv: (-kv[1], kv[0]))),
            "attribution": campaign.attribution}
