"""The analyst's console on a world of a million events: how long each page takes to
answer over loopback (a real uvicorn server, a signed-in session), median of several
loads after one warm-up. The issue's target is the first page under 300 ms.

    python benchmarks/bench_console.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from spywall.platform import auth, db, taxii_api, web
from spywall.platform.api import create_app
from spywall.platform.intake import IngestResult, Intake, ingest_stream
from spywall.platform.service import import_file, run_analysis
from spywall.platform.world import background_stream, generate

PAGES = ["/ui/", "/ui/live", "/ui/campaigns", "/ui/review", "/ui/notifications",
         "/ui/registry", "/ui/evidence"]


def build(folder: Path, events: int) -> str:
    url = f"sqlite:///{folder}/console.db"
    engine = db.make_engine(url)
    db.init_schema(engine)
    generate(folder / "world", background_users=200)
    import_file(engine, (folder / "world" / "registry.json").read_bytes(), "bench", "bench")
    background = folder / "bg.jsonl"
    with background.open("wb") as fh:
        fh.writelines(background_stream(events))
    intake = Intake(engine, folder / "world")
    for path in (background, folder / "world" / "events.jsonl"):
        with path.open("rb") as fh:
            ingest_stream(intake, fh, IngestResult())
    run_analysis(engine)
    engine.dispose()
    return url


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--loads", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = build(folder, args.events)
        engine = db.make_engine(url)
        with engine.begin() as conn:
            key = auth.create_key(conn, "bench", ["analyst", "admin"])
        app = create_app(engine, folder)
        taxii_api.mount(app)
        web.mount(app, secure_cookie=False)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                httpx.get(base + "/healthz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        with httpx.Client(base_url=base) as client:
            page = client.get("/ui/login").text
            token = re.search(r'name="csrf" value="([^"]+)"', page)
            assert token is not None
            client.post("/ui/login", data={"key": key, "csrf": token.group(1)})
            print(f"world: {args.events:,} background events + the 2019 world (SQLite)")
            for path in PAGES:
                client.get(path)
                times = []
                for _ in range(args.loads):
                    start = time.perf_counter()
                    answer = client.get(path)
                    times.append(time.perf_counter() - start)
                median = statistics.median(times) * 1000
                print(f"{path:20} {answer.status_code}  median {median:7.1f} ms"
                      f"  (max {max(times) * 1000:.1f} ms)", flush=True)
        server.should_exit = True


if __name__ == "__main__":
    main()
