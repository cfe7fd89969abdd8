"""``spywall iocs update``: fetch the indicator sets named in the public index.

The index (mvt-project/mvt-indicators ``indicators.yaml``) lists sets as
``github: {owner, repo, branch, path}``; each becomes a raw.githubusercontent.com URL.
Apple's release feed gives the list of current iOS releases (``ios.releases``).
This is the only place spywall touches the network, and only when the user runs it.
Every download is size-capped and must load as a STIX bundle before it replaces the
previous copy (written to a temporary name, then renamed).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import msgspec
import yaml

from spywall.errors import InputError, SpywallError
from spywall.iocs.paths import default_dest as default_dest
from spywall.iocs.stix import load_bundle

INDEX_URL = "https://raw.githubusercontent.com/mvt-project/mvt-indicators/main/indicators.yaml"
RAW_URL = "https://raw.githubusercontent.com/{owner}/{repo}/{branch}/{path}"
MAX_DOWNLOAD = 64 * 1024 * 1024
MAX_ENTRIES = 1000
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PART = re.compile(r"[A-Za-z0-9._-]+")


class SetEntry(msgspec.Struct, frozen=True):
    name: str
    url: str
    filename: str


class UpdateResult(msgspec.Struct):
    dest: Path
    downloaded: list[Path] = msgspec.field(default_factory=list)
    failed: list[tuple[str, str]] = msgspec.field(default_factory=list)


def _entry(item: Any) -> SetEntry | None:
    if not isinstance(item, dict) or item.get("type") != "github":
        return None
    gh = item.get("github")
    if not isinstance(gh, dict):
        return None
    parts = {k: str(gh.get(k, "")) for k in ("owner", "repo", "branch", "path")}
    path_ok = all(_PART.fullmatch(p) and p != ".." for p in parts["path"].split("/"))
    if not path_ok or not all(_PART.fullmatch(parts[k]) for k in ("owner", "repo", "branch")):
        return None
    filename = _SAFE.sub("_", f"{parts['owner']}_{parts['repo']}_{parts['path']}")
    return SetEntry(str(item.get("name") or parts["path"]), RAW_URL.format(**parts), filename)


def parse_index(text: str) -> list[SetEntry]:
    """The downloadable sets of an ``indicators.yaml``; raises ``InputError`` if malformed."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"indicator index is not YAML: {exc}") from exc
    items = doc.get("indicators") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise InputError("indicator index has no 'indicators' list")
    entries = [e for e in map(_entry, items[:MAX_ENTRIES]) if e is not None]
    if not entries:
        raise InputError("indicator index lists no github sets")
    return entries


def _fetch(client: httpx.Client, url: str) -> bytes:
    out = bytearray()
    with client.stream("GET", url) as resp:
        if resp.status_code != httpx.codes.OK:
            raise InputError(f"HTTP {resp.status_code}")
        for chunk in resp.iter_bytes():
            out += chunk
            if len(out) > MAX_DOWNLOAD:
                raise InputError(f"larger than {MAX_DOWNLOAD} bytes")
    return bytes(out)


def _write(dest: Path, name: str, data: bytes) -> Path:
    target = dest / name
    tmp = dest / f".{name}.part"
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


def update(dest: Path | None = None, *, index_url: str = INDEX_URL,
           transport: httpx.BaseTransport | None = None, timeout: float = 30.0) -> UpdateResult:
    """Download every set of the index into ``dest``; failures are listed, not raised
    (except for the index itself)."""
    result = UpdateResult(dest or default_dest())
    try:
        result.dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{result.dest}: cannot create: {exc.strerror or exc}") from exc
    with httpx.Client(transport=transport, timeout=timeout, follow_redirects=True) as client:
        try:
            index = _fetch(client, index_url)
        except (httpx.HTTPError, InputError) as exc:
            raise InputError(f"cannot fetch the indicator index {index_url}: {exc}") from exc
        entries = parse_index(index.decode("utf-8", "replace"))
        for entry in entries:
            try:
                data = _fetch(client, entry.url)
                load_bundle(data, entry.filename, entry.name)  # refuse what would not load
                result.downloaded.append(_write(result.dest, entry.filename, data))
            except (httpx.HTTPError, SpywallError, OSError) as exc:
                result.failed.append((entry.url, str(exc)[:300]))
        _write(result.dest, "indicators.yaml", index)
        _releases(client, result)
    return result


def _releases(client: httpx.Client, result: UpdateResult) -> None:
    """The list of current iOS releases behind ``ios-outdated`` (``ios.releases``)."""
    from spywall.ios import releases

    try:
        data = _fetch(client, releases.FEED_URL)
        text = releases.refreshed(data.decode("utf-8", "replace"), dest=result.dest)
        result.downloaded.append(_write(result.dest, releases.FILENAME, text))
    except (httpx.HTTPError, SpywallError, OSError, ValueError) as exc:
        result.failed.append((releases.FEED_URL, str(exc)[:300]))
