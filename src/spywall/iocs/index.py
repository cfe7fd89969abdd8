"""``IocIndex``: every loaded indicator, filed for constant-cost look-ups.

Exact values sit in one hash map per kind. Domains are matched by walking the queried
name's parents on label boundaries; IP ranges by masking the address once per prefix
length present; directory indicators by walking the queried path's parents; truncated
process names through 15/16-character prefix maps. No look-up loops over the indicators.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from spywall import heap
from spywall.errors import InputError
from spywall.iocs.model import (
    HASH_KINDS_BY_LENGTH,
    NORMALISERS,
    Indicator,
    ip_kind,
    norm_domain,
    norm_hash,
    norm_ip,
    norm_path,
    norm_url,
)
from spywall.iocs.stix import Loaded, load_bundle, load_csv
from spywall.report import (
    Finding,
    FindingKind,
    IndicatorMatch,
    IocSource,
    Location,
    Severity,
)

# Four times the largest public set known (~30 MB for 50,000 indicators); decoded JSON
# costs several times its text, and the loader refuses more than ``stix.MAX_VALUES``.
MAX_IOC_FILE = 128 * 1024 * 1024
STIX_SUFFIXES = (".stix2", ".stix", ".json")
CSV_SUFFIXES = (".csv",)
CSV_COLLECTION = "Pegasus"   # the only CSV form known is Amnesty's 2018 NSO Pegasus list
TRUNCATIONS = (15, 16)       # Linux comm is 15 characters; some tools keep 16
MAX_QUERY = 8192
# Kinds matched whatever their case, as MVT matches them (app ids, Android property
# names); the indicator keeps its own spelling for the report.
CASELESS = frozenset({"app_id", "android_property"})


def bundled_dir() -> Path:
    """The indicator sets shipped with spywall (see data/iocs/NOTICE.md)."""
    from importlib import resources  # (only when they are used: a few ms of start-up)

    return Path(str(resources.files("spywall") / "data" / "iocs"))


def _files(paths: Sequence[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted((f for f in p.rglob("*")
                            if f.is_file() and f.suffix.lower() in STIX_SUFFIXES + CSV_SUFFIXES),
                           key=lambda f: (f.suffix.lower() in CSV_SUFFIXES, str(f)))
            if not found:
                raise InputError(f"{p}: no indicator files (.stix2, .json, .csv) in folder")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such indicator file or folder")
    return out


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_IOC_FILE:
            raise InputError(f"{path}: indicator file larger than {MAX_IOC_FILE} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def load_file(path: Path) -> tuple[Loaded, str]:
    """(indicators, sha256) of one indicator file."""
    data = _read(path)
    if path.suffix.lower() in CSV_SUFFIXES:
        loaded = load_csv(data, path.name, CSV_COLLECTION)
    else:
        loaded = load_bundle(data, path.name, path.stem)
    return loaded, hashlib.sha256(data).hexdigest()


class IocIndex:
    """Indicators from one or more files, ready for matching."""

    def __init__(self) -> None:
        self.sources: list[IocSource] = []
        self.unsupported: list[str] = []  # the first of each file's (``Loaded``)
        self.unsupported_total = 0
        self.indicators: list[Indicator] = []
        self._exact: dict[str, dict[str, list[Indicator]]] = defaultdict(dict)
        self._nets: dict[tuple[int, int], dict[int, list[Indicator]]] = defaultdict(dict)
        self._proc_prefix: dict[str, list[Indicator]] = {}
        self._path_lengths: set[int] = set()
        self._dispatch: dict[str, Callable[[str], list[Indicator]]] = {
            "host": self.match_host, "domain": self.match_domain, "url": self.match_url,
            "ipv4": self.match_ip, "ipv6": self.match_ip, "cidr": self.match_ip,
            "ip": self.match_ip, "email": self.match_email, "process": self.match_process,
            "file_name": self.match_file_name, "file_path": self.match_file_path,
            "sha256": self.match_hash, "sha1": self.match_hash, "md5": self.match_hash,
            "hash": self.match_hash, "app_id": self.match_app_id,
            "app_cert": self.match_app_cert, "config_profile": self.match_config_profile,
            "android_property": self.match_android_property,
        }

    # ---- loading -------------------------------------------------------------------
    @classmethod
    def load(cls, paths: Sequence[str | Path] = ()) -> IocIndex:
        """Load files or folders (recursively); ``()`` loads the bundled sets."""
        index = cls()
        with heap.paused():
            for f in _files(list(paths) or [bundled_dir()]):
                index._load_one(f)
        return index

    def _load_one(self, f: Path) -> None:
        loaded, digest = load_file(f)
        self.add(loaded.indicators)
        self.unsupported.extend(f"{f.name}: {u}" for u in loaded.unsupported)
        self.unsupported_total += loaded.unsupported_total
        self.sources.append(IocSource(path=str(f), sha256=digest,
                                      indicators=len(loaded.indicators),
                                      collections=loaded.collections))

    def add(self, indicators: Iterable[Indicator]) -> None:
        """File indicators; the same value for the same malware twice is kept once."""
        exact, kept = self._exact, self.indicators
        for ind in indicators:
            if ind.kind == "cidr":
                net = ipaddress.ip_network(ind.value, strict=False)
                table = self._nets[(net.version, net.prefixlen)]
                bucket = table.setdefault(int(net.network_address), [])
            else:
                key = ind.value.lower() if ind.kind in CASELESS else ind.value
                bucket = exact[ind.kind].setdefault(key, [])
            if bucket and any(i.collection == ind.collection for i in bucket):
                continue
            bucket.append(ind)
            kept.append(ind)
            if ind.kind == "file_path":
                self._path_lengths.add(len(ind.value))
            if ind.kind == "process":
                for n in TRUNCATIONS:
                    if len(ind.value) > n:
                        self._proc_prefix.setdefault(f"{n}:{ind.value[:n]}", []).append(ind)

    def __len__(self) -> int:
        return len(self.indicators)

    def counts(self) -> dict[tuple[str, str], int]:
        """(collection, kind) -> number of indicators."""
        out: dict[tuple[str, str], int] = defaultdict(int)
        for ind in self.indicators:
            out[(ind.collection, ind.kind)] += 1
        return dict(out)

    # ---- matching ------------------------------------------------------------------
    def _get(self, kind: str, value: str) -> list[Indicator]:
        return list(self._exact.get(kind, {}).get(value, ()))

    def match(self, kind: str, value: str) -> list[Indicator]:
        """Match ``value`` seen in evidence as ``kind`` (a KINDS name, ``host`` or ``hash``)."""
        fn = self._dispatch.get(kind)
        if fn is None:
            raise ValueError(f"unknown indicator kind {kind!r}")
        if not value or len(value) > MAX_QUERY:
            return []
        return fn(value)

    def match_domain(self, name: str) -> list[Indicator]:
        """The name and its parents on label boundaries (evil.com matches a.b.evil.com)."""
        host = norm_domain(name)
        if ip_kind(host) is not None:
            return self.match_ip(host)
        table = self._exact.get("domain", {})
        out: list[Indicator] = []
        while host:
            out.extend(table.get(host, ()))
            _, dot, host = host.partition(".")
            if not dot:
                break
        return out

    def match_host(self, host: str) -> list[Indicator]:
        """A host name or an IP literal (``[v6]`` and ``host:port`` tolerated)."""
        h = host.strip()
        if h.startswith("["):
            h = h[1:].partition("]")[0]
        elif h.count(":") == 1:
            h = h.partition(":")[0]
        return self.match_ip(h) if ip_kind(h) in ("ipv4", "ipv6") else self.match_domain(h)

    def match_ip(self, addr: str) -> list[Indicator]:
        """Exact v4/v6 addresses and every CIDR range that holds the address."""
        try:
            text = norm_ip(addr)
            ip = ipaddress.ip_address(text.partition("/")[0])
        except ValueError:
            return []
        out = self._get(f"ipv{ip.version}", text)
        as_int, bits = int(ip), ip.max_prefixlen
        for (version, plen), bucket in self._nets.items():
            if version == ip.version:
                mask = ((1 << plen) - 1) << (bits - plen)
                out.extend(bucket.get(as_int & mask, ()))
        return out

    def url_sites(self) -> set[str]:
        """What comes before the first ``/`` in every exact URL indicator's key (its
        normalised host part): a URL whose host part is not among them matches none."""
        return {key.partition("/")[0] for key in self._exact.get("url", {})}

    def match_url_exact(self, url: str) -> list[Indicator]:
        """Exact URL indicators only (``match_url`` without the host)."""
        return self._get("url", norm_url(url.strip())) if "url" in self._exact else []

    def match_url(self, url: str) -> list[Indicator]:
        """Exact URL indicators plus the URL's host (scheme-less and junk tolerated)."""
        text = url.strip()
        out = self._get("url", norm_url(text))
        rest = text.partition("://")[2] if "://" in text else text
        authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        host = authority.rpartition("@")[2]
        if host:
            out.extend(self.match_host(host))
        return out

    def match_process(self, name: str) -> list[Indicator]:
        """Exact names, and names truncated to 15/16 characters (either side)."""
        n = name.strip()
        out = self._get("process", n)
        if len(n) in TRUNCATIONS:
            out.extend(self._proc_prefix.get(f"{len(n)}:{n}", ()))
        for t in TRUNCATIONS:
            if len(n) > t:
                out.extend(i for i in self._get("process", n[:t]) if i not in out)
        return out

    def match_file_path(self, path: str) -> list[Indicator]:
        """Exact paths, and directory indicators that hold the path (parents are only
        sliced at lengths some path indicator has)."""
        p = norm_path(path)
        table = self._exact.get("file_path", {})
        out = list(table.get(p, ()))
        lengths = self._path_lengths
        i = p.rfind("/")
        while i >= 0:
            if (i or 1) in lengths:
                out.extend(table.get(p[:i] or "/", ()))
            i = p.rfind("/", 0, i)
        return out

    def match_file_name(self, name: str) -> list[Indicator]:
        return self._get("file_name", name.strip())

    def match_file(self, path: str) -> list[Indicator]:
        """A path as file_path indicators, and its last component as a file_name."""
        name = path.rstrip("/").rpartition("/")[2]
        return self.match_file_path(path) + self.match_file_name(name)

    def match_hash(self, digest: str) -> list[Indicator]:
        """md5 / sha1 / sha256 chosen by length."""
        h = norm_hash(digest)
        kind = HASH_KINDS_BY_LENGTH.get(len(h))
        return self._get(kind, h) if kind else []

    def _simple(self, kind: str, value: str) -> list[Indicator]:
        return self._get(kind, NORMALISERS[kind](value))

    def match_email(self, addr: str) -> list[Indicator]:
        return self._simple("email", addr.removeprefix("mailto:"))

    def match_app_id(self, app_id: str) -> list[Indicator]:
        return self._get("app_id", NORMALISERS["app_id"](app_id).lower())

    def match_app_cert(self, digest: str) -> list[Indicator]:
        return self._simple("app_cert", digest)

    def match_config_profile(self, ident: str) -> list[Indicator]:
        return self._simple("config_profile", ident)

    def match_android_property(self, name: str) -> list[Indicator]:
        return self._get("android_property", NORMALISERS["android_property"](name).lower())

    # ---- reporting -----------------------------------------------------------------
    def finding(self, ind: Indicator, matched: str, *, path: str, rule: str, title: str,
                message: str, location: Location | None = None,
                severity: Severity = Severity.HIGH) -> Finding:
        """A report finding for one indicator match."""
        return Finding(
            rule=rule, title=title, kind=FindingKind.INDICATOR, severity=severity,
            message=message, path=path, location=location or Location(),
            indicator=IndicatorMatch(ioc_type=ind.stix_type, value=ind.value, matched=matched,
                                     collection=ind.collection, source=ind.source),
        )
