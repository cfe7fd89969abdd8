"""The registry as STIX 2.1, with the official ``stix2`` library.

Export: each party is an ``identity`` (organisation) carrying its aliases, orders and
parent as ``x_spywall_*`` properties; an affiliate also has an ``affiliate-of``
relationship to its parent; each identifier is an ``indicator`` whose pattern is the
STIX observable for its kind, with provenance as properties and an ``attributed-to``
relationship to its party; everything is marked TLP:AMBER. The official client patterns
travel on an identity of the platform itself (identity class ``system``).

Import takes that, and also bundles from other producers: ``identity``,
``threat-actor`` and ``intrusion-set`` objects become parties, and indicators tied to
them by ``attributed-to`` or ``indicates`` become identifiers when their pattern is one
of the forms below. Anything else is counted as skipped, never half-read.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from spywall.errors import InputError
from spywall.platform.registry import (
    MAX_REGISTRY_BYTES,
    Identifier,
    Order,
    Party,
    Registry,
    validated,
)

# kind -> (STIX object path for export, paths accepted on import)
PATTERNS: dict[str, str] = {
    "account": "user-account:user_id",
    "device": "x-spywall-device:fingerprint",
    "client": "software:name",
    "phone": "x-spywall-phone:value",
    "phone_prefix": "x-spywall-phone-prefix:value",
    "domain": "domain-name:value",
    "sha256": "file:hashes.'SHA-256'",
}
_IMPORT_PATHS = {
    "user-account:user_id": "account", "user-account:account_login": "account",
    "x-spywall-device:fingerprint": "device", "software:name": "client",
    "x-spywall-phone:value": "phone", "x-spywall-phone-prefix:value": "phone_prefix",
    "domain-name:value": "domain", "file:hashes.'SHA-256'": "sha256",
    "file:hashes.SHA-256": "sha256", "file:hashes.sha256": "sha256",
}
_ASN = re.compile(r"^\[\s*autonomous-system:number\s*=\s*(\d{1,10})\s*\]$")
PARTY_TYPES = ("identity", "threat-actor", "intrusion-set")


def _pattern(kind: str, value: str) -> str:
    if kind in ("ip", "cidr"):
        family = "ipv6-addr" if ":" in value else "ipv4-addr"
        return f"[{family}:value = '{value}']"
    if kind == "asn":
        return f"[autonomous-system:number = {int(value)}]"
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"[{PATTERNS[kind]} = '{escaped}']"


# Ids are UUIDv5 of what an object stands for, and times come from the registry, so that
# exporting the same registry twice gives the same objects (a TAXII collection then holds
# one version of each, and a receiver can tell a new identifier from a re-sent one).
_NAMESPACE = uuid.UUID("6b1c3f5e-2f43-5a0e-9d0b-5bd5d3c0a0f1")
_EPOCH = "2019-05-13T00:00:00Z"


def stix_id(kind: str, *parts: str) -> str:
    return f"{kind}--{uuid.uuid5(_NAMESPACE, chr(31).join(parts))}"


def to_stix(registry: Registry) -> str:
    """The registry as a STIX 2.1 bundle (JSON text); the same registry, the same bytes."""
    return json.dumps(stix_objects(registry), indent=2, sort_keys=True)


def stix_objects(registry: Registry) -> dict[str, Any]:
    """The registry as a STIX 2.1 bundle (a JSON-ready dict)."""
    import stix2

    tlp = stix2.TLP_AMBER
    objects: list[Any] = [tlp]
    platform = stix2.Identity(id=stix_id("identity", "spywall-platform"),
                              created=_EPOCH, modified=_EPOCH,
                              name="spywall platform registry", identity_class="system",
                              x_spywall_official_clients=list(registry.official_clients),
                              object_marking_refs=[tlp], allow_custom=True)
    objects.append(platform)
    ids: dict[str, str] = {}
    for party in registry.parties:
        ident = stix2.Identity(
            id=stix_id("identity", "party", party.id), created=_EPOCH, modified=_EPOCH,
            name=party.name, identity_class="organization", object_marking_refs=[tlp],
            x_spywall_party_id=party.id, x_spywall_aliases=list(party.aliases),
            x_spywall_affiliate_of=party.affiliate_of,
            x_spywall_orders=[{"court": o.court, "case": o.case, "date": o.date,
                               "scope": o.scope} for o in party.orders],
            allow_custom=True)
        ids[party.id] = ident.id
        objects.append(ident)
    for party in registry.parties:
        if party.affiliate_of in ids:
            objects.append(stix2.Relationship(
                ids[party.id], "affiliate-of", ids[party.affiliate_of],
                id=stix_id("relationship", "affiliate", party.id), created=_EPOCH,
                modified=_EPOCH, object_marking_refs=[tlp], allow_custom=True))
        for item in party.identifiers:
            when = _valid_from(item.added)
            ind = stix2.Indicator(
                id=stix_id("indicator", party.id, item.kind, item.value), created=when,
                modified=when,
                name=f"{item.kind} of {party.name}", pattern=_pattern(item.kind, item.value),
                pattern_type="stix", valid_from=when,
                indicator_types=["attribution"], confidence=90 if not item.derived_from
                else 60, object_marking_refs=[tlp], x_spywall_kind=item.kind,
                x_spywall_source=item.source, x_spywall_added=item.added,
                x_spywall_added_by=item.added_by,
                x_spywall_derived_from=item.derived_from, allow_custom=True)
            objects.append(ind)
            objects.append(stix2.Relationship(
                ind.id, "attributed-to", ids[party.id],
                id=stix_id("relationship", party.id, item.kind, item.value), created=when,
                modified=when, object_marking_refs=[tlp]))
    bundle = stix2.Bundle(objects=objects, allow_custom=True,
                          id=stix_id("bundle", *sorted(o.id for o in objects)))
    out: dict[str, Any] = json.loads(bundle.serialize())
    return out


def _valid_from(added: str) -> str:
    return (added[:10] if re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", added) else "1970-01-01") + \
        "T00:00:00Z"


def _kind_value(pattern: str) -> tuple[str, str] | None:
    from spywall.errors import FormatError
    from spywall.iocs.stix import comparisons

    match = _ASN.match(pattern.strip())
    if match:
        return "asn", match.group(1)
    try:
        comps = comparisons(pattern)
    except FormatError:
        return None
    if len(comps) != 1:
        return None
    path, value = comps[0]
    if path in ("ipv4-addr:value", "ipv6-addr:value"):
        return ("cidr" if "/" in value else "ip"), value
    kind = _IMPORT_PATHS.get(path)
    return (kind, value) if kind else None


def _party_id(obj: dict[str, Any]) -> str:
    given = obj.get("x_spywall_party_id")
    if isinstance(given, str) and given:
        return given
    name = str(obj.get("name") or obj["id"])
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:128] or obj["id"]


def from_stix(data: bytes) -> Registry:
    """A STIX 2.1 bundle -> a validated ``Registry`` (``InputError`` if it is not one)."""
    import stix2
    import stix2.exceptions

    if len(data) > MAX_REGISTRY_BYTES:
        raise InputError(f"bundle larger than {MAX_REGISTRY_BYTES} bytes")
    try:
        raw = json.loads(data)
        bundle = stix2.parse(raw, allow_custom=True)
    except (ValueError, stix2.exceptions.STIXError) as exc:
        raise InputError(f"not a STIX 2.1 bundle: {exc}") from None
    objects = [json.loads(o.serialize()) if hasattr(o, "serialize") else o
               for o in getattr(bundle, "objects", [])]
    registry = Registry()
    parties: dict[str, Party] = {}
    stix_to_party: dict[str, str] = {}
    for obj in objects:
        if obj.get("type") == "identity" and obj.get("identity_class") == "system":
            registry.official_clients.extend(obj.get("x_spywall_official_clients") or [])
        elif obj.get("type") in PARTY_TYPES:
            pid = _party_id(obj)
            stix_to_party[obj["id"]] = pid
            parties[pid] = Party(
                id=pid, name=str(obj.get("name") or pid),
                aliases=list(obj.get("x_spywall_aliases") or obj.get("aliases") or []),
                affiliate_of=obj.get("x_spywall_affiliate_of"),
                orders=[Order(**o) for o in obj.get("x_spywall_orders") or []])
    indicators = {o["id"]: o for o in objects if o.get("type") == "indicator"}
    for rel in (o for o in objects if o.get("type") == "relationship"):
        kind = rel.get("relationship_type")
        src, dst = rel.get("source_ref"), rel.get("target_ref")
        if kind == "affiliate-of" and src in stix_to_party and dst in stix_to_party:
            parties[stix_to_party[src]].affiliate_of = stix_to_party[dst]
        elif kind in ("attributed-to", "indicates") and src in indicators \
                and dst in stix_to_party:
            ind = indicators[src]
            found = _kind_value(str(ind.get("pattern", "")))
            if found is None:
                continue
            parties[stix_to_party[dst]].identifiers.append(Identifier(
                kind=found[0], value=found[1],
                source=str(ind.get("x_spywall_source") or ind.get("name") or ind["id"]),
                added=str(ind.get("x_spywall_added") or ind.get("valid_from", ""))[:10],
                added_by=str(ind.get("x_spywall_added_by") or "stix-import"),
                derived_from=ind.get("x_spywall_derived_from")))
    registry.parties = list(parties.values())
    return validated(registry)


def campaign_objects(campaigns: list[dict[str, Any]], malicious: dict[str, list[str]]
                     ) -> list[dict[str, Any]]:
    """The platform's campaigns as STIX 2.1: a ``campaign`` per campaign (``attributed-to``
    its party's identity when attributed), and ``indicates`` relationships from an
    indicator for each address or name of its infrastructure and each payload hash found
    malicious in it (``malicious``: campaign id -> hashes). Deterministic like the
    registry's export; TLP:AMBER; confidence 60 (found by analysis, not listed)."""
    import stix2

    tlp = stix2.TLP_AMBER
    out: list[Any] = []
    for c in campaigns:
        first = c["first_seen"]
        camp = stix2.Campaign(id=stix_id("campaign", c["id"]), created=first, modified=first,
                              name=f"spywall campaign {c['id']}", first_seen=first,
                              last_seen=c["last_seen"], object_marking_refs=[tlp],
                              x_spywall_targets=len(c["targets"]),
                              x_spywall_detectors=list(c["detectors"]), allow_custom=True)
        out.append(camp)
        if c.get("party"):
            out.append(stix2.Relationship(
                camp.id, "attributed-to", stix_id("identity", "party", c["party"]),
                id=stix_id("relationship", "campaign", c["id"]), created=first,
                modified=first, object_marking_refs=[tlp]))
        values = [(_infra_kind(v), v) for v in c["infrastructure"]]
        values += [("sha256", h) for h in malicious.get(c["id"], [])]
        for kind, value in values:
            if kind is None:
                continue
            ind = stix2.Indicator(
                id=stix_id("indicator", "campaign", c["id"], kind, value), created=first,
                modified=first, name=f"{kind} of campaign {c['id']}",
                pattern=_pattern(kind, value), pattern_type="stix", valid_from=first,
                indicator_types=["malicious-activity"], confidence=60,
                object_marking_refs=[tlp], x_spywall_kind=kind,
                x_spywall_source=f"campaign {c['id']}", allow_custom=True)
            out.append(ind)
            out.append(stix2.Relationship(
                ind.id, "indicates", camp.id,
                id=stix_id("relationship", "campaign", c["id"], kind, value), created=first,
                modified=first, object_marking_refs=[tlp]))
    return [json.loads(o.serialize()) for o in out]


def _infra_kind(value: str) -> str | None:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "domain" if "." in value and " " not in value else None
    return "ip"
