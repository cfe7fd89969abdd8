"""Indicator loading and matching speed on a generated 50,000-indicator STIX bundle.

    .venv/bin/python benchmarks/bench_iocs.py [N]

Prints load time (JSON + pattern parsing + indexing) and look-ups per second. Matching
must not depend on the number of indicators: the look-up rate is measured at N and N/10.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from spywall.iocs import IocIndex

FORMS = (
    "[domain-name:value = 'host{i}.example-{i}.net']",
    "[ipv4-addr:value = '10.{a}.{b}.{c}']",
    "[file:hashes.sha256 = '{i:064x}']",
    "[app:id = 'com.generated.app{i}']",
    "[process:name = 'generatedproc{i}']",
    "[file:path = '/data/local/tmp/gen{i}']",
    "[domain-name:value = 'a{i}.example' OR url:value = 'https://a{i}.example/x=\\'{i}\\'']",
)


def bundle(n: int) -> bytes:
    objs: list[dict[str, object]] = [{"type": "malware", "id": "malware--b", "name": "Bench"}]
    for i in range(n):
        pattern = FORMS[i % len(FORMS)].format(i=i, a=i >> 16 & 255, b=i >> 8 & 255, c=i & 255)
        objs.append({"type": "indicator", "id": f"indicator--{i}", "pattern": pattern,
                     "pattern_type": "stix", "pattern_version": "2.1"})
        objs.append({"type": "relationship", "relationship_type": "indicates",
                     "source_ref": f"indicator--{i}", "target_ref": "malware--b"})
    return json.dumps({"type": "bundle", "id": "bundle--b", "objects": objs}).encode()


def lookups_per_second(index: IocIndex, rounds: int = 20_000) -> float:
    queries = [("host", f"x.host{i}.example-{i}.net") for i in range(rounds // 4)]
    queries += [("host", f"10.0.{i & 255}.{i >> 8 & 255}") for i in range(rounds // 4)]
    queries += [("process", f"generatedproc{i}") for i in range(rounds // 4)]
    queries += [("file_path", f"/data/local/tmp/gen{i}/sub/file") for i in range(rounds // 4)]
    start = time.perf_counter()
    for kind, value in queries:
        index.match(kind, value)
    return len(queries) / (time.perf_counter() - start)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    with tempfile.TemporaryDirectory() as tmp:
        rates = []
        for size in (n // 10, n):
            path = Path(tmp) / f"bench{size}.stix2"
            path.write_bytes(bundle(size))
            start = time.perf_counter()
            index = IocIndex.load([path])
            took = time.perf_counter() - start
            print(f"load {size:>7,} indicators ({path.stat().st_size / 1e6:.1f} MB): "
                  f"{took:.3f} s -> {len(index):,} indexed, {len(index.unsupported)} unsupported")
            rates.append(lookups_per_second(index))
            print(f"  match: {rates[-1]:,.0f} look-ups/s")
    start = time.perf_counter()
    bundled = IocIndex.load()
    print(f"bundled sets: {len(bundled):,} indicators in {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
