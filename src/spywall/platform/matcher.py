"""Look-ups of an event's identifiers in the registry, at gate speed.

Each kind has the structure its look-up needs, so a decision costs a few dictionary
probes whatever the size of the registry:
- addresses and CIDR ranges: one hash table per prefix length (as a router's
  hash-based longest-prefix match), so an address is looked up in at most 33 (IPv4) or
  129 (IPv6) probes, and only in the lengths the registry uses;
- phone prefixes: one table per prefix length, the same way over the digits;
- domains: every label-boundary suffix of the name is one probe;
- accounts, devices, hashes, ASNs, phones: one probe; client builds: one probe, and a
  single compiled expression for client patterns that use shell wildcards.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import socket
from collections import defaultdict
from collections.abc import Iterable

import msgspec

from spywall.platform.registry import Identifier, Party, official_matcher


class Hit(msgspec.Struct, frozen=True):
    """One identifier of a party found in an event."""

    party: str
    kind: str
    value: str          # the identifier as registered
    matched: str        # what the event carried
    field: str          # where in the event
    source: str
    derived_from: str | None = None

    def as_json(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {"kind": self.kind, "value": self.value,
                                      "matched": self.matched, "field": self.field,
                                      "source": self.source}
        if self.derived_from:
            out["derived_from"] = self.derived_from
        return out


_GLOB = re.compile(r"[*?\[]")
_NONE: list[Hit] = []   # shared, never appended to: results are combined with +


def address(value: str) -> tuple[int, int] | None:
    """(4 or 6, the address as a number), or None when ``value`` is not an address.
    The C parser (``inet_pton``) first, as the gate meets an address in most events;
    ``ipaddress`` decides the rest (scoped IPv6 addresses), so both agree."""
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, value), "big")
    except OSError:
        pass
    try:
        parsed = ipaddress.ip_address(value)
    except ValueError:
        return None
    return parsed.version, int(parsed)


class RegistryIndex:
    """An immutable look-up structure over every live identifier of every party."""

    def __init__(self, parties: Iterable[Party], official: list[str]) -> None:
        self.parties = {p.id: p for p in parties}
        self.official_patterns = list(official)
        self._official = official_matcher(self.official_patterns)
        self._exact: dict[tuple[str, str], list[tuple[str, Identifier]]] = defaultdict(list)
        self._nets: dict[int, dict[int, dict[int, list[tuple[str, Identifier]]]]] = {
            4: defaultdict(lambda: defaultdict(list)),
            6: defaultdict(lambda: defaultdict(list))}
        self._prefixes: dict[int, dict[str, list[tuple[str, Identifier]]]] = defaultdict(
            lambda: defaultdict(list))
        client_globs: list[tuple[str, Identifier]] = []
        for party in self.parties.values():
            for ident in party.identifiers:
                self._add(party.id, ident, client_globs)
        self._client_globs = client_globs
        self._client_re = (re.compile("|".join(f"(?:{fnmatch.translate(i.value)})"
                                               for _, i in client_globs))
                           if client_globs else None)
        self._net_lengths = {v: sorted(self._nets[v], reverse=True) for v in (4, 6)}
        self._prefix_lengths = sorted(self._prefixes, reverse=True)
        self.order_us = {pid: self._order_us(pid) for pid in self.parties}

    def _add(self, party: str, ident: Identifier,
             client_globs: list[tuple[str, Identifier]]) -> None:
        if ident.kind in ("ip", "cidr"):
            net = ipaddress.ip_network(ident.value, strict=False)
            shift = net.max_prefixlen - net.prefixlen
            self._nets[net.version][net.prefixlen][int(net.network_address) >> shift].append(
                (party, ident))
        elif ident.kind == "phone_prefix":
            self._prefixes[len(ident.value)][ident.value].append((party, ident))
        elif ident.kind == "client" and _GLOB.search(ident.value):
            client_globs.append((party, ident))
        else:
            self._exact[(ident.kind, ident.value)].append((party, ident))

    # -- parties and orders ------------------------------------------------------------
    def lineage(self, party: str) -> list[str]:
        """The party and the parents whose orders bind it, nearest first."""
        out: list[str] = []
        node: str | None = party
        while node is not None and node in self.parties and node not in out:
            out.append(node)
            node = self.parties[node].affiliate_of
        return out

    def _order_us(self, party: str) -> int | None:
        """Microseconds of 00:00 UTC on the earliest order binding ``party`` (None: none)."""
        from spywall.platform.contract import parse_ts

        dates = [o.date[:10] for pid in self.lineage(party) for o in self.parties[pid].orders]
        return parse_ts(min(dates) + "T00:00:00Z") if dates else None

    def orders_of(self, party: str) -> list[dict[str, str]]:
        return [{"party": pid, **msgspec.structs.asdict(o)}
                for pid in self.lineage(party) for o in self.parties[pid].orders]

    def is_official(self, client: str) -> bool:
        return self._official.fullmatch(client) is not None

    # -- look-ups: each returns the hits as a list (usually the shared empty one) -----------
    @staticmethod
    def _hits(entries: list[tuple[str, Identifier]], matched: str, field: str) -> list[Hit]:
        return [Hit(party, ident.kind, ident.value, matched, field, ident.source,
                    ident.derived_from) for party, ident in entries]

    def ip(self, value: str, field: str = "ip") -> list[Hit]:
        parsed = address(value)
        if parsed is None:
            return _NONE
        version, number = parsed
        bits = 32 if version == 4 else 128
        tables = self._nets[version]
        out = _NONE
        for length in self._net_lengths[version]:
            entries = tables[length].get(number >> (bits - length))
            if entries:
                out = out + self._hits(entries, value, field)
        return out

    def exact(self, kind: str, value: str, field: str) -> list[Hit]:
        entries = self._exact.get((kind, value))
        return self._hits(entries, value, field) if entries else _NONE

    def phone(self, value: str, field: str = "phone") -> list[Hit]:
        out = self.exact("phone", value, field)
        for length in self._prefix_lengths:
            if length <= len(value):
                entries = self._prefixes[length].get(value[:length])
                if entries:
                    out = out + self._hits(entries, value, field)
        return out

    def domain(self, value: str, field: str) -> list[Hit]:
        name = value.lower().rstrip(".")
        out = _NONE
        while name:
            out = out + self.exact("domain", name, field)
            _, _, name = name.partition(".")
        return out

    def client(self, value: str, field: str = "client") -> list[Hit]:
        out = self.exact("client", value, field)
        if self._client_re is not None and self._client_re.fullmatch(value):
            out = out + [Hit(party, ident.kind, ident.value, value, field, ident.source,
                             ident.derived_from)
                         for party, ident in self._client_globs
                         if fnmatch.fnmatchcase(value, ident.value)]
        return out

    def asn(self, value: str, field: str = "asn") -> list[Hit]:
        return self.exact("asn", value, field)

    def host(self, value: str, field: str) -> list[Hit]:
        """An address or a name found inside a payload (infrastructure)."""
        if address(value) is None:
            return self.domain(value, field)
        return self.ip(value, field)

    def lookup(self, kind: str, value: str, field: str) -> list[Hit]:
        """Look ``value`` up as ``kind`` (the event-field kinds of ``gate.LOOKUPS``)."""
        if kind == "ip":
            return self.ip(value, field)
        if kind == "client":
            return self.client(value, field)
        if kind == "phone":
            return self.phone(value, field)
        entries = self._exact.get((kind, value))     # ``exact``, without one more call
        return self._hits(entries, value, field) if entries else _NONE
