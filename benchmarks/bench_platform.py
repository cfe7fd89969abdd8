"""Platform side: gate decisions per second in process, ingest events per second on SQLite
and PostgreSQL with peak memory as the world grows, and analysis time.

    python benchmarks/bench_platform.py [--events 1000000] [--pg URL]

The world is the 2019 world (``spywall.platform.world``) plus generated background
events without media (registrations, connections, calls, hash-only messages). The anchor
for the gate is the Hasher-Matcher-Actioner's stated 4,000 look-ups per second across
several instances; the issue's targets are 20,000 decisions/s on one core, 50,000 events/s
ingested on SQLite and 20,000 on PostgreSQL, and analysis of a 1M-event world in a minute.
Each figure is from one run. Ingest is the command's: the gate in one process and the
database writes in a writer process (``spywall.platform.pipeline``), so on two cores both
work at once; peak memory is given for each.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from spywall.platform import db
from spywall.platform.contract import parse_line
from spywall.platform.intake import IngestResult, Intake, ingest_stream
from spywall.platform.service import import_file, run_analysis
from spywall.platform.world import background_stream, generate


def gate_rate(engine: sa.Engine, n: int) -> float:
    intake = Intake(engine)
    events = [parse_line(line) for line in background_stream(n, seed=11, start_index=10**8)]
    events = [e for e in events if e.type != "message.sent"] + \
        [e for e in events if e.type == "message.sent"]
    start = time.process_time()
    for ev in events:
        intake.gate.decide(ev)
    return n / (time.process_time() - start)


def ingest(url: str, world: Path, background: Path) -> dict[str, float]:
    engine = db.make_engine(url)
    db.init_schema(engine)
    import_file(engine, (world / "registry.json").read_bytes(), "bench", "benchmark")
    intake = Intake(engine, world)
    result = IngestResult()
    start = time.perf_counter()
    with background.open("rb") as fh:
        ingest_stream(intake, fh, result, pipeline=True)
    with (world / "events.jsonl").open("rb") as fh:
        ingest_stream(intake, fh, result, pipeline=True)
    took = time.perf_counter() - start
    start = time.perf_counter()
    analysis = run_analysis(engine)
    analyse_s = time.perf_counter() - start
    rate = gate_rate(engine, 100_000)
    engine.dispose()
    return {"events": result.accepted, "seconds": took, "rate": result.accepted / took,
            "analysis_s": analyse_s, "campaigns": analysis.campaigns, "gate_rate": rate,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            # the ingest's writer process (spywall.platform.pipeline)
            "writer_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def child(args: argparse.Namespace) -> None:
    figures = ingest(args.url, Path(args.world), Path(args.background))
    print(" ".join(f"{k}={v:.3f}" for k, v in figures.items()))


def run_child(url: str, world: Path, background: Path) -> dict[str, float]:
    """Each measurement in a fresh process, so that peak memory is its own."""
    out = subprocess.run([sys.executable, __file__, "--child", "--url", url, "--world",
                          str(world), "--background", str(background)],
                         check=True, capture_output=True, text=True).stdout
    return {k: float(v) for k, v in (p.split("=") for p in out.split())}


def pg_database(admin_url: str) -> str | None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"spywall_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        return None
    return admin.url.set(database=name).render_as_string(hide_password=False)


def drop_pg_database(admin_url: str, url: str) -> None:
    """The benchmark's database goes when its figures are taken (they hold a million
    events each)."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}"'))
    admin.dispose()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--pg", default="postgresql+psycopg://root@127.0.0.1:5432/test")
    p.add_argument("--child", action="store_true")
    p.add_argument("--url")
    p.add_argument("--world")
    p.add_argument("--background")
    args = p.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generate(folder / "world", background_users=200)
        sizes = sorted({args.events // 4, args.events})
        for size in sizes:
            background = folder / f"bg-{size}.jsonl"
            with background.open("wb") as fh:
                fh.writelines(background_stream(size))
            targets = [("SQLite", f"sqlite:///{folder}/bench-{size}.db")]
            pg = pg_database(args.pg)
            if pg is not None:
                targets.append(("PostgreSQL", pg))
            for name, url in targets:
                try:
                    f = run_child(url, folder / "world", background)
                finally:
                    if name == "PostgreSQL":
                        drop_pg_database(args.pg, url)
                print(f"{name:10} {int(f['events']):>9,} events: ingest {f['rate']:,.0f}/s "
                      f"({f['seconds']:.1f} s), analysis {f['analysis_s']:.1f} s, "
                      f"{int(f['campaigns'])} campaign(s), peak {f['peak_mib']:.0f} MiB "
                      f"(writer {f['writer_peak_mib']:.0f} MiB), "
                      f"gate {f['gate_rate']:,.0f} decisions/s (one core)", flush=True)


if __name__ == "__main__":
    main()
