"""The verdict cache: a cached result is exactly a fresh scan's, bounded, keyed right."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from spywall.engine import scan_bytes, scan_paths
from spywall.limits import Limits, MiB
from spywall.report import ErrorEntry, Subject
from spywall.samples import Sample, all_samples
from spywall.verdict_cache import Verdict, VerdictCache, detector_set_version

SAMPLES = list(all_samples())


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_cached_result_is_the_fresh_result(sample: Sample) -> None:
    cache = VerdictCache()
    first = scan_bytes(sample.data, f"a/{sample.name}", cache=cache)
    assert first == scan_bytes(sample.data, f"a/{sample.name}")
    fresh = scan_bytes(sample.data, f"other/dir/{sample.name}")
    cached = scan_bytes(sample.data, f"other/dir/{sample.name}", cache=cache)
    assert cached == fresh
    if Verdict.of(fresh) is not None:
        assert cache.hits == 1
        assert {f.rule for f in cached.findings} == set(sample.expected)


def test_no_hash_result_from_the_cache_has_no_input_hash() -> None:
    data = SAMPLES[0].data
    limits = Limits(hash_inputs=False)
    cache = VerdictCache(limits)
    scan_bytes(data, "x", limits, cache=cache)
    again = scan_bytes(data, "y", limits, cache=cache)
    assert again == scan_bytes(data, "y", limits)
    assert again.sha256 is None


def test_sqlite_file_is_shared_and_keyed_by_version_and_caps(tmp_path: Path) -> None:
    db = str(tmp_path / "verdicts.sqlite")
    sample = next(s for s in SAMPLES if s.expected)
    digest = hashlib.sha256(sample.data).hexdigest()
    writer = VerdictCache(path=db)
    scan_bytes(sample.data, "in.bin", cache=writer)
    writer.close()
    reader = VerdictCache(path=db)
    verdict = reader.get(digest)
    assert verdict is not None
    assert verdict.subject("z", len(sample.data), digest) == scan_bytes(sample.data, "z")
    assert VerdictCache(Limits(max_depth=3), path=db).get(digest) is None
    assert VerdictCache(path=db, version="another detector set").get(digest) is None
    assert len(detector_set_version()) == 32


def test_memory_is_least_recently_used_and_bounded() -> None:
    cache = VerdictCache(max_entries=2)
    v = Verdict(format="png", objects=1, findings=(), errors=())
    cache.put("a", v)
    cache.put("b", v)
    assert cache.get("a") == v  # a is now the most recent
    cache.put("c", v)
    assert cache.get("b") is None
    assert cache.get("a") == v
    assert len(cache) == 2


def test_sqlite_file_is_trimmed(tmp_path: Path) -> None:
    db = str(tmp_path / "v.sqlite")
    cache = VerdictCache(path=db, max_entries=50)
    v = Verdict(format="png", objects=1, findings=(), errors=())
    for i in range(1000):
        cache.put(f"{i:064x}", v)
    cache.close()
    with sqlite3.connect(db) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM verdicts").fetchone()
    assert 50 <= rows < 50 + 256
    assert VerdictCache(path=db, max_entries=50).get(f"{999:064x}") == v


def test_results_that_hit_a_limit_are_not_cached() -> None:
    hit = Subject(path="p", errors=[ErrorEntry(path="p", code="limit", message="time")])
    assert Verdict.of(hit) is None
    data = next(s.data for s in SAMPLES if s.name.endswith(".pdf"))
    limits = Limits(max_elements=1)
    cache = VerdictCache(limits)
    first = scan_bytes(data, "p", limits, cache=cache)
    assert any(e.code == "limit" for e in first.errors)
    assert len(cache) == 0


def test_scan_paths_with_workers_and_a_cache_file(tmp_path: Path) -> None:
    files = tmp_path / "in"
    files.mkdir()
    picked = SAMPLES[:: max(1, len(SAMPLES) // 12)]
    for i, s in enumerate(picked):
        (files / f"{i:02d}-{s.name}").write_bytes(s.data)
        (files / f"{i:02d}-copy-{s.name}").write_bytes(s.data)
    limits = Limits(max_total_decompressed=64 * MiB)
    fresh = scan_paths([str(files)], limits, jobs=1)
    db = str(tmp_path / "v.sqlite")
    for _ in range(2):  # the second run reads every verdict from the file
        cached = scan_paths([str(files)], limits, jobs=2, cache=VerdictCache(limits, db))
        assert cached == fresh
    with sqlite3.connect(db) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM verdicts").fetchone()
    assert rows >= len(picked) // 2


def test_cli_cache_flag_gives_the_same_report(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from spywall.cli import main
    from spywall.report import load_report

    files = tmp_path / "in"
    files.mkdir()
    for s in SAMPLES[:: max(1, len(SAMPLES) // 8)]:
        (files / s.name).write_bytes(s.data)
    db = str(tmp_path / "v.sqlite")
    reports = []
    for extra in (["--no-cache"], ["--cache", db], ["--cache", db], []):
        main(["scan", str(files), "--format", "json", "--jobs", "1", *extra])
        reports.append(load_report(capsys.readouterr().out).subjects)
    assert reports[0] == reports[1] == reports[2] == reports[3]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM verdicts").fetchone()[0] > 0
    assert main(["scan", str(files), "--cache", db, "--no-cache"]) == 2


def test_one_cache_serves_several_threads(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    cache = VerdictCache(path=str(tmp_path / "v.sqlite"), max_entries=1000)  # no eviction
    verdicts = [Verdict(format=f"f{i}", objects=i, findings=(), errors=()) for i in range(400)]

    def work(i: int) -> bool:
        cache.put(f"{i:064x}", verdicts[i])
        return cache.get(f"{i:064x}") is not None

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(400)))
    cache.close()
    assert VerdictCache(path=str(tmp_path / "v.sqlite")).get(f"{399:064x}") == verdicts[399]
