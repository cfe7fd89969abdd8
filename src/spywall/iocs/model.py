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
from dataclasses import dataclass
from functools import lru_cache

KINDS: tuple[str, ...] = (
    "domain", "ipv4", "ipv6", "cidr", "url", "email", "process", "file_name", "file_path",
    "sha256", "sha1", "md5", "app_id", "app_cert", "config_profile", "android_property",
)


@dataclass(frozen=True, slots=True)
class Indicator:
    """One published indicator value (a compound pattern gives one per comparison)."""

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


def ip_kind(value: str) -> str | None:
    """``ipv4`` / ``ipv6`` / ``cidr`` if ``value`` is an IP literal or network, else None."""
    text = value.strip()
    if not _IPISH.fullmatch(text):
        return None
    text = text.strip("[]")
    try:
        if "/" in text:
            ipaddress.ip_network(text, strict=False)
            return "cidr"
        return "ipv4" if ipaddress.ip_address(text).version == 4 else "ipv6"
    except ValueError:
        return None


def norm_ip(value: str) -> str:
    """Canonical text of an address (``::ffff:1.2.3.4`` stays v6) or network."""
    text = value.strip().strip("[]")
    if "/" in text:
        return str(ipaddress.ip_network(text, strict=False))
    return str(ipaddress.ip_address(text))


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
    if kind == "domain" and "/" in raw:  # a published "domain" with a path is a URL
        kind = "url"
    elif kind in ("domain", "ipv4", "ipv6"):
        kind = ip_kind(raw) or ("domain" if kind == "domain" else "")
        if not kind:
            return None
    value = NORMALISERS[kind](raw)
    return (kind, value) if value else None
