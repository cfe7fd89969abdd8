"""TAXII 2.1 against independent implementations: the OASIS reference client
(``taxii2-client``) reads and writes spywall's server, and an indicator set travels from
one spywall, through the OASIS reference server (``medallion``), to a second spywall, and
back into a spywall server, with nothing lost."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from spywall.platform import auth, db, taxii_api
from spywall.platform import taxii_store as store
from spywall.platform.api import create_app
from spywall.platform.registry_store import load_registry
from spywall.platform.service import import_file
from spywall.platform.taxii_client import pull, push, remote, review
from spywall.platform.world import registry as world_registry

REGISTRY = world_registry("cd" * 32)
COLL = store.COLLECTIONS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


class Spywall:
    def __init__(self, url: str, engine: sa.Engine, keys: dict[str, str]) -> None:
        self.url, self.engine, self.keys = url, engine, keys

    def collection(self, name: str) -> str:
        return f"{self.url}/taxii/collections/{COLL[name]['id']}/"


@pytest.fixture
def spywall(db_url: str, tmp_path: Path) -> Iterator[Spywall]:
    engine = db.make_engine(db_url)
    import_file(engine, json.dumps(REGISTRY).encode(), "test", "taxii test")
    with engine.begin() as conn:
        keys = {s: auth.create_key(conn, s, [s]) for s in ("admin", "analyst", "ingest")}
        store.publish_registry(conn)
    app = create_app(engine, tmp_path)
    taxii_api.mount(app)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait(f"http://127.0.0.1:{port}/healthz")
    yield Spywall(f"http://127.0.0.1:{port}", engine, keys)
    server.should_exit = True
    thread.join(timeout=30)
    engine.dispose()


@pytest.fixture
def medallion(tmp_path: Path) -> Iterator[str]:
    pytest.importorskip("medallion")
    port = _free_port()
    collection = str(uuid.uuid4())
    data = {"/discovery": {"title": "medallion", "default": f"http://127.0.0.1:{port}/api1/",
                           "api_roots": [f"http://127.0.0.1:{port}/api1/"]},
            "api1": {"information": {"title": "api1", "versions": [store.TAXII_MEDIA],
                                     "max_content_length": 100 << 20},
                     "status": [],
                     "collections": [{"id": collection, "title": "exchange",
                                      "can_read": True, "can_write": True,
                                      "media_types": [store.STIX_MEDIA], "objects": [],
                                      "manifest": []}]}}
    (tmp_path / "data.json").write_text(json.dumps(data))
    (tmp_path / "config.json").write_text(json.dumps({
        "backend": {"module": "medallion.backends.memory_backend",
                    "module_class": "MemoryBackend", "filename": str(tmp_path / "data.json")},
        "users": {"exchange": "Password0"}, "taxii": {"max_page_size": 20}}))
    proc = subprocess.Popen([sys.executable, "-m", "medallion.scripts.run", "--port",
                             str(port), str(tmp_path / "config.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(f"http://127.0.0.1:{port}/taxii2/")
        yield f"http://127.0.0.1:{port}/api1/collections/{collection}/"
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _registry_view(engine: sa.Engine) -> list[tuple[str, str, Any, list[tuple[str, str]]]]:
    with engine.connect() as conn:
        reg = load_registry(conn)
    return [(p.id, p.name, p.affiliate_of, sorted((i.kind, i.value) for i in p.identifiers))
            for p in reg.parties]


def test_reference_client_reads_spywall(spywall: Spywall) -> None:
    from taxii2client.v21 import Server, as_pages

    from spywall.platform.taxii_client import BearerAuth

    server = Server(f"{spywall.url}/taxii2/", auth=BearerAuth(spywall.keys["analyst"]))
    (root,) = server.api_roots
    assert root.versions == [store.TAXII_MEDIA]
    by_title = {c.title: c for c in root.collections}
    registry = by_title["spywall registry"]
    assert registry.can_read
    assert not registry.can_write
    pages = list(as_pages(registry.get_objects, per_request=7))
    objects = [o for p in pages for o in p.get("objects", [])]
    with spywall.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(db.taxii_objects)).scalar()
    assert len(pages) > 1
    assert len(objects) == count
    assert len({o["id"] for o in objects}) == count, "paging repeats or skips nothing"
    manifest = [m for p in as_pages(registry.get_manifest, per_request=5)
                for m in p.get("objects", [])]
    assert [m["id"] for m in manifest] == [o["id"] for o in objects]
    indicator = next(o for o in objects if o["type"] == "indicator")
    assert registry.get_object(indicator["id"])["objects"] == [indicator]
    assert registry.object_versions(indicator["id"])["versions"] == [indicator["modified"]]
    last = manifest[-1]["date_added"]
    assert registry.get_objects(added_after=last).get("objects", []) == []


def test_rights_per_key_and_collection(spywall: Spywall) -> None:
    url = spywall.collection("shared") + "objects/"
    body = {"objects": [{"type": "indicator", "id": f"indicator--{uuid.uuid4()}",
                         "spec_version": "2.1", "created": "2026-01-01T00:00:00.000Z",
                         "modified": "2026-01-01T00:00:00.000Z", "pattern_type": "stix",
                         "pattern": "[ipv4-addr:value = '192.0.2.1']",
                         "valid_from": "2026-01-01T00:00:00Z"}]}
    assert httpx.get(url).status_code == 401
    bearer = {"Authorization": f"Bearer {spywall.keys['ingest']}"}
    assert httpx.get(url, headers=bearer).status_code == 403
    analyst = {"Authorization": f"Bearer {spywall.keys['analyst']}"}
    assert httpx.post(url, headers=analyst, json=body).status_code == 403
    admin = httpx.BasicAuth("anyone", spywall.keys["admin"])
    answer = httpx.post(url, auth=admin, json=body)
    assert answer.status_code == 202
    assert answer.json()["success_count"] == 1
    with spywall.engine.begin() as conn:
        store.grant(conn, "analyst", "shared", read=True, write=True)
    assert httpx.post(url, headers=analyst, json=body).status_code == 202
    registry = spywall.collection("registry") + "objects/"
    assert httpx.post(registry, auth=admin, json=body).status_code == 403, "read-only"
    status_id = answer.json()["id"]
    status = httpx.get(f"{spywall.url}/taxii/status/{status_id}/", auth=admin).json()
    assert status["status"] == "complete"


def test_registry_travels_through_medallion_with_nothing_lost(
        spywall: Spywall, medallion: str, tmp_path: Path) -> None:
    sent = push(spywall.engine, "registry", remote(medallion, "exchange", "Password0", None))
    assert sent["stored"] == sent["sent"] > 0
    second = db.make_engine(f"sqlite:///{tmp_path}/second.db")
    db.init_schema(second)
    got = pull(second, remote(medallion, "exchange", "Password0", None))
    assert got["received"] == sent["sent"]
    review(second, "analyst-2", "shared by the first platform")
    assert _registry_view(second) == _registry_view(spywall.engine)
    # ... and back into the first spywall's shared collection, over its own TAXII.
    back = push(second, "shared", remote(spywall.collection("shared"), None, None,
                                         spywall.keys["admin"]))
    assert back["stored"] == back["sent"] == sent["sent"]
    with spywall.engine.connect() as conn:
        ids = set(conn.execute(sa.select(db.taxii_objects.c.id).where(
            db.taxii_objects.c.collection == "shared")).scalars())
        published = set(conn.execute(sa.select(db.taxii_objects.c.id).where(
            db.taxii_objects.c.collection == "registry")).scalars())
    assert ids == published
