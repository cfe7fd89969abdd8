"""The registry of barred parties: its model, normalisation of every identifier, and the
contract's JSON form (import and export). STIX 2.1 lives in ``registry_stix``; storage
in ``registry_store``; look-ups in ``matcher``.

Every identifier is normalised once, when it enters, so that look-ups are exact:
addresses and networks as ``ipaddress`` prints them, phones as ``+`` and digits, domains
lower-case without a trailing dot, ASNs as digits, hashes lower-case.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from datetime import date

import msgspec

from spywall.errors import InputError

KINDS = ("ip", "cidr", "asn", "domain", "phone", "phone_prefix", "account", "device",
         "client", "sha256")
# Identifiers that tie an account to a party strongly enough to link accounts.
MAX_REGISTRY_BYTES = 64 << 20
MAX_IDENTIFIERS = 1_000_000
_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
                     r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_DIGITS = re.compile(r"[0-9]{1,15}")


class Identifier(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: str
    value: str
    source: str = ""
    added: str = ""
    added_by: str = ""
    derived_from: str | None = None


class Order(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    court: str
    case: str
    date: str
    scope: str = ""


class Party(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    name: str
    aliases: list[str] = msgspec.field(default_factory=list)
    affiliate_of: str | None = None
    orders: list[Order] = msgspec.field(default_factory=list)
    identifiers: list[Identifier] = msgspec.field(default_factory=list)


class Registry(msgspec.Struct, forbid_unknown_fields=True):
    official_clients: list[str] = msgspec.field(default_factory=list)
    parties: list[Party] = msgspec.field(default_factory=list)


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise InputError(f"not an IP address: {value!r}") from None


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise InputError(f"not a CIDR range: {value!r}") from None


def _asn(value: str) -> str:
    text = value.strip().upper()
    text = text[2:] if text.startswith("AS") else text
    if not _DIGITS.fullmatch(text) or int(text) >= 1 << 32:
        raise InputError(f"not an AS number: {value!r}")
    return str(int(text))


def _domain(value: str) -> str:
    text = value.strip().lower().rstrip(".")
    if not _DOMAIN.fullmatch(text):
        raise InputError(f"not a domain name: {value!r}")
    return text


def _phone(value: str) -> str:
    text = value.strip().replace(" ", "").replace("-", "")
    if not text.startswith("+") or not _DIGITS.fullmatch(text[1:]):
        raise InputError(f"not an E.164 number or prefix (+ and digits): {value!r}")
    return text


def _sha256(value: str) -> str:
    text = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise InputError(f"not a SHA-256 (64 hexadecimal digits): {value!r}")
    return text


def _text(value: str) -> str:
    text = value.strip()
    if not text or len(text) > 512:
        raise InputError(f"identifier value must be 1 to 512 characters: {value!r}")
    return text


NORMALISE = {"ip": _ip, "cidr": _cidr, "asn": _asn, "domain": _domain, "phone": _phone,
             "phone_prefix": _phone, "account": _text, "device": _text, "client": _text,
             "sha256": _sha256}


def normalise(kind: str, value: str) -> str:
    """The canonical form of an identifier's value (``InputError`` when it is not one)."""
    fn = NORMALISE.get(kind)
    if fn is None:
        raise InputError(f"unknown identifier kind {kind!r} (one of {', '.join(KINDS)})")
    if not isinstance(value, str):
        raise InputError(f"{kind}: value must be a string")
    return fn(value)


def _check_date(text: str, what: str) -> None:
    try:
        date.fromisoformat(text[:10])
    except ValueError:
        raise InputError(f"{what}: not a date (YYYY-MM-DD): {text!r}") from None


def validated(registry: Registry) -> Registry:
    """Normalise every identifier and check the parties' structure; ``InputError`` names
    the first problem."""
    ids = {p.id for p in registry.parties}
    if len(ids) != len(registry.parties):
        raise InputError("two parties share one id")
    count = 0
    for party in registry.parties:
        if not party.id.strip() or len(party.id) > 128:
            raise InputError("a party id must be 1 to 128 characters")
        if party.affiliate_of is not None and party.affiliate_of not in ids:
            raise InputError(f"party {party.id}: affiliate_of names no party in the file "
                             f"({party.affiliate_of!r})")
        for order in party.orders:
            _check_date(order.date, f"party {party.id}: order date")
        fixed = []
        for ident in party.identifiers:
            count += 1
            if count > MAX_IDENTIFIERS:
                raise InputError(f"more than {MAX_IDENTIFIERS} identifiers")
            fixed.append(msgspec.structs.replace(ident, value=normalise(ident.kind,
                                                                        ident.value)))
        party.identifiers = fixed
    _no_cycles(registry)
    for pattern in registry.official_clients:
        if not pattern or len(pattern) > 256:
            raise InputError("official_clients: a pattern must be 1 to 256 characters")
    return registry


def _no_cycles(registry: Registry) -> None:
    parent = {p.id: p.affiliate_of for p in registry.parties}
    for start in parent:
        seen = {start}
        node = parent[start]
        while node is not None:
            if node in seen:
                raise InputError(f"party {start}: affiliate_of forms a loop")
            seen.add(node)
            node = parent.get(node)


def load_json(data: bytes) -> Registry:
    """The contract's registry JSON -> a validated ``Registry``."""
    if len(data) > MAX_REGISTRY_BYTES:
        raise InputError(f"registry larger than {MAX_REGISTRY_BYTES} bytes")
    try:
        registry = msgspec.json.decode(data, type=Registry)
    except msgspec.ValidationError as exc:
        raise InputError(f"registry: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InputError(f"registry: not valid JSON: {exc}") from None
    return validated(registry)


def dump_json(registry: Registry) -> bytes:
    return msgspec.json.format(msgspec.json.encode(registry), indent=2) + b"\n"


def official_matcher(patterns: list[str]) -> re.Pattern[str]:
    """One regular expression for every official client pattern (shell-style)."""
    if not patterns:
        return re.compile(r"(?!)")   # nothing is official
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))
