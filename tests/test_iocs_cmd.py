"""``spywall iocs`` commands and ``iocs update`` against a mocked HTTP transport."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from spywall.cli import main
from spywall.errors import InputError
from spywall.iocs import IocIndex
from spywall.iocs.update import RAW_URL, parse_index, update
from spywall.ios import releases
from spywall.report import Report, load_report

INDEX = """
indicators:
  - type: github
    name: Good set
    github: {owner: acme, repo: iocs, branch: main, path: good/good.stix2}
  - type: github
    name: Broken set
    github: {owner: acme, repo: iocs, branch: main, path: broken.stix2}
  - type: github
    name: Missing set
    github: {owner: acme, repo: iocs, branch: main, path: gone.stix2}
  - type: github
    name: Escaping path
    github: {owner: acme, repo: iocs, branch: main, path: ../../etc/passwd}
  - type: other
    name: not github
"""
GOOD = json.dumps({"type": "bundle", "objects": [
    {"type": "malware", "id": "malware--1", "name": "Acme"},
    {"type": "indicator", "id": "indicator--1", "pattern": "[domain-name:value = 'acme.evil']"},
]}).encode()


def _url(path: str) -> str:
    return RAW_URL.format(owner="acme", repo="iocs", branch="main", path=path)


FEED = (b"<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel>"
        b"<item><title>iOS 99.1 (99B1)</title><pubDate>Tue, 01 Dec 2026 10:00:00 PST"
        b"</pubDate></item></channel></rss>")


def _transport(requests: list[str]) -> httpx.MockTransport:
    def handler(req: httpx.Request) -> httpx.Response:
        requests.append(str(req.url))
        if str(req.url) == "https://index.test/indicators.yaml":
            return httpx.Response(200, content=INDEX.encode())
        if str(req.url) == _url("good/good.stix2"):
            return httpx.Response(200, content=GOOD)
        if str(req.url) == _url("broken.stix2"):
            return httpx.Response(200, content=b"<html>rate limited</html>")
        if str(req.url) == releases.FEED_URL:
            return httpx.Response(200, content=FEED)
        return httpx.Response(404)
    return httpx.MockTransport(handler)


def test_parse_index_real_file() -> None:
    real = Path(__file__).parents[1] / "src/spywall/data/iocs/indicators.yaml"
    entries = parse_index(real.read_text())
    assert len(entries) >= 10
    assert all(e.url.startswith("https://raw.githubusercontent.com/") for e in entries)
    assert any(e.url.endswith("2021-07-18_nso/pegasus.stix2") for e in entries)
    assert len({e.filename for e in entries}) == len(entries)


def test_parse_index_rejects_junk() -> None:
    for text in ("", "a: [", "indicators: 3", "indicators: [{type: other}]"):
        with pytest.raises(InputError):
            parse_index(text)


def test_update_with_mocked_transport(tmp_path: Path) -> None:
    seen: list[str] = []
    res = update(tmp_path, index_url="https://index.test/indicators.yaml",
                 transport=_transport(seen))
    assert [p.name for p in res.downloaded] == ["acme_iocs_good_good.stix2",
                                                "ios_releases.list"]
    assert sorted(u.rsplit("/", 1)[1] for u, _ in res.failed) == ["broken.stix2", "gone.stix2"]
    assert not any("passwd" in u for u in seen)  # the escaping entry was never requested
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "acme_iocs_good_good.stix2", "indicators.yaml", "ios_releases.list"]
    fresh = releases.current(tmp_path)
    assert fresh.latest() == releases.Release("99.1", "2026-12-01", "99B1")
    index = IocIndex.load([tmp_path])  # the releases list is not taken for indicators
    assert index.match_domain("x.acme.evil")[0].collection == "Acme"


def test_update_index_unreachable(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        update(tmp_path, index_url="https://index.test/nothing", transport=_transport([]))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Report]:
    rc = main(["iocs", *argv, "--format", "json", "--quiet"])
    return rc, load_report(capsys.readouterr().out)


def test_iocs_list_and_stats(capsys: pytest.CaptureFixture[str]) -> None:
    rc, rep = _run(capsys, "list")
    assert rc == 0
    bundled = Path(__file__).parents[1] / "src/spywall/data/iocs"
    files = [*bundled.glob("*.stix2"), *bundled.glob("*.csv")]
    assert sorted(Path(s.path).name for s in rep.ioc_sources) == sorted(f.name for f in files)
    assert rep.device["indicators"] == len(IocIndex.load())
    assert {"Pegasus", "NoviSpy", "Predator"} <= {c for s in rep.ioc_sources
                                                  for c in s.collections}
    assert rep.device["collection.NoviSpy"] == 18
    assert rep.device["kind.app_cert"] == 11
    rc, rep = _run(capsys, "stats")
    assert rc == 0
    assert rep.device["collection.NoviSpy"] == 18
    assert rep.device["collection.NoviSpy.app_id"] == 4
    assert rep.device["kind.android_property"] == 3
    assert isinstance(rep.device["load_seconds"], float)


def test_iocs_custom_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "mine.stix2"
    f.write_bytes(GOOD)
    rc, rep = _run(capsys, "list", "--iocs", str(f))
    assert rc == 0
    assert [(Path(s.path).name, s.indicators, s.collections) for s in rep.ioc_sources] == [
        ("mine.stix2", 1, ["Acme"])]
    assert main(["iocs", "list", "--iocs", str(tmp_path / "nope"), "-q"]) == 2


def test_table_output_lists_every_source(capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # no folding of long file names
    assert main(["iocs", "list", "-f", "table"]) == 0
    text = capsys.readouterr().out
    for s in IocIndex.load().sources:
        assert Path(s.path).name in text
    assert "NoviSpy" in text
    assert "Indicator sources" in text
