"""What one indicator is, which STIX observable maps to which kind, and how values are
normalised so that an indicator and a value seen in evidence compare equal.

The same normaliser is applied when an indicator is loaded and when evidence is matched,
so matching is a dictionary look-up.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

KINDS: tuple[str, ...] = (
    "domain", "ipv4", "ipv6", "cidr", "url", "email", "process", "file_name", "file_path",
    "sha256", "sha1", "md5", "app_id", "app_cert", "config_profile", "android_property",
)


class Indicator(NamedTuple):
    """One published indicator value (a compound pattern gives one per comparison).

    A named tuple rather than a frozen dataclass: as immutable, and built about three
    times faster, which counts when a set holds tens of thousands of indicators."""

    kind: str
    value: str
    stix_type: str
    collection: str
    source: str


def object_path(stix_type: str) -> str:
    """``file:hashes.'SHA-256'`` -> ``file:hashes.sha256`` (quotes, case and dashes dropped)."""
    return stix_type.replace("'", "").replace("-", "").lower()


# Canonical (object_path) -> kind. Anything not here is reported as unsupported.
STIX_KINDS: dict[str, str] = {
    "domainname:value": "domain",
    "ipv4addr:value": "ipv4",
    "ipv6addr:value": "ipv6",
    "url:value": "url",
    "emailaddr:value": "email",
    "process:name": "process",
    "file:name": "file_name",
    "file:path": "file_path",
    "file:hashes.sha256": "sha256",
    "file:hashes.sha1": "sha1",
    "file:hashes.md5": "md5",
    "app:id": "app_id",
    "app:cert.sha256": "app_cert",
    "app:cert.sha1": "app_cert",
    "app:cert.md5": "app_cert",
    "configurationprofile:id": "config_profile",
    "androidproperty:name": "android_property",
}

@lru_cache(maxsize=1024)
def kind_of(stix_type: str) -> str | None:
    """The kind a published ``type:path`` maps to, or None if unsupported."""
    return STIX_KINDS.get(object_path(stix_type))


HASH_KINDS_BY_LENGTH: dict[int, str] = {32: "md5", 40: "sha1", 64: "sha256"}


# Cheap pre-check so that host names never pay for an ipaddress parse failure.
_IPISH = re.compile(r"\[?(?:[0-9.]+|[0-9a-fA-F.]*:[0-9a-fA-F:.%\w]*)\]?(?:/[0-9]+)?")


# A lower-case ASCII host name whose last label starts with a letter (so not an address).
_PLAIN_HOST = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.[a-z][a-z0-9-]*")


def ip_norm(value: str) -> tuple[str, str] | None:
    """(``ipv4`` / ``ipv6`` / ``cidr``, canonical text) of an IP literal or network, or None
    (``::ffff:1.2.3.4`` stays v6)."""
    text = value.strip()
    if not _IPISH.fullmatch(text):
        return None
    text = text.strip("[]")
    try:
        if "/" in text:
            return "cidr", str(ipaddress.ip_network(text, strict=False))
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return ("ipv4" if ip.version == 4 else "ipv6"), str(ip)


def ip_kind(value: str) -> str | None:
    """``ipv4`` / ``ipv6`` / ``cidr`` if ``value`` is an IP literal or network, else None."""
    got = ip_norm(value)
    return got[0] if got else None


def norm_ip(value: str) -> str:
    """Canonical text of an address or network; ``ValueError`` if it is neither."""
    got = ip_norm(value)
    if got is None:
        raise ValueError(f"not an IP address or network: {value[:100]!r}")
    return got[1]


def norm_domain(value: str) -> str:
    """Lower case, no trailing dot or ``*.``; international names in their IDNA form."""
    v = value.strip().lower().rstrip(".")
    if v.startswith("*."):
        v = v[2:]
    if not v.isascii():
        with contextlib.suppress(UnicodeError):
            v = v.encode("idna").decode("ascii")
    return v


def norm_hash(value: str) -> str:
    return value.strip().lower().replace(":", "").replace(" ", "")


def norm_url(value: str) -> str:
    """The URL without its scheme (http and https match alike), host normalised, a lone
    trailing slash dropped; path and query keep their case."""
    v = value.strip()
    rest = v.partition("://")[2] if "://" in v else v
    host, slash, tail = rest.partition("/")
    return f"{norm_domain(host)}{slash + tail if tail else ''}"


def norm_path(value: str) -> str:
    v = value.strip()
    return v.rstrip("/") if len(v) > 1 else v


def _strip(value: str) -> str:
    return value.strip()


def _lower(value: str) -> str:
    return value.strip().lower()


NORMALISERS: dict[str, Callable[[str], str]] = {
    "domain": norm_domain,
    "ipv4": norm_ip,
    "ipv6": norm_ip,
    "cidr": norm_ip,
    "url": norm_url,
    "email": _lower,
    "process": _strip,
    "file_name": _strip,
    "file_path": norm_path,
    "sha256": norm_hash,
    "sha1": norm_hash,
    "md5": norm_hash,
    "app_id": _strip,
    "app_cert": norm_hash,
    "config_profile": _lower,
    "android_property": _strip,
}


def classify(stix_type: str, raw: str) -> tuple[str, str] | None:
    """(kind, normalised value) for a published comparison, or None if unsupported/empty.

    IP literals published as ``domain-name:value`` (the NoviSpy set does this) and
    networks published as ``ipv4-addr:value`` are filed as addresses / CIDR ranges; a
    ``domain-name`` value with a path (one in the Coruna set) is filed as a URL.
    """
    kind = kind_of(stix_type)
    if kind is None or not raw.strip():
        return None
    if kind == "domain" and _PLAIN_HOST.fullmatch(raw):  # already normal: the common case
        return kind, raw
    if kind == "domain" and "/" in raw:  # a published "domain" with a path is a URL
        kind = "url"
    elif kind in ("domain", "ipv4", "ipv6"):
        ip = ip_norm(raw)
        if ip is not None:
            return ip
        if kind != "domain":
            return None
    value = NORMALISERS[kind](raw)
    return (kind, value) if value else None
