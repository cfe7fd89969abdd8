"""What the HTTP API tests share: an app over a fresh database with one key per scope,
a registry, event builders and payloads (a crafted BLASTPASS WebP from the project's
generator, a benign PNG written by Pillow)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from spywall.platform import auth, db, service
from spywall.platform.api import create_app
from spywall.platform.media import PayloadScanner

SRC = Path(__file__).resolve().parents[2] / "src"
TS = "2026-03-01T10:00:00Z"          # after the order below
ORDER_DATE = "2025-10-17"
BARRED_CIDR = "203.0.113.0/24"
BARRED_ACCOUNT = "acct-vendor-1"
REGISTRY: dict[str, Any] = {
    "official_clients": ["WA/* iOS", "WA/* Android"],
    "parties": [{
        "id": "vendor-x", "name": "Vendor X Ltd", "aliases": ["VX"], "affiliate_of": None,
        "orders": [{"court": "N.D. Cal.", "case": "4:19-cv-07123", "date": ORDER_DATE,
                    "scope": "permanent injunction"}],
        "identifiers": [
            {"kind": "cidr", "value": BARRED_CIDR, "source": "court record",
             "added": "2019-05-13"},
            {"kind": "account", "value": BARRED_ACCOUNT, "source": "court record",
             "added": "2019-05-13"},
        ]}],
}


@dataclass
class Api:
    client: TestClient
    engine: sa.Engine
    keys: dict[str, str]          # scope -> key (admin, ingest, analyst)
    media: Path

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def post(self, path: str, who: str, body: Any) -> Any:
        return self.client.post(path, headers=self.auth(who), json=body)

    def get(self, path: str, who: str) -> Any:
        return self.client.get(path, headers=self.auth(who))

    def stored_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(db.events.c.id)).scalars())


def make_api(url: str, media: Path, registry: bool = True,
             scanner: PayloadScanner | None = None) -> Api:
    engine = service.open_db(url)
    if registry:
        service.import_file(engine, json.dumps(REGISTRY).encode(), "test", "fixture")
    with engine.begin() as conn:
        keys = {scope: auth.create_key(conn, f"{scope}-key", [scope])
                for scope in ("admin", "ingest", "analyst")}
    media.mkdir(parents=True, exist_ok=True)
    return Api(TestClient(create_app(engine, media, scanner=scanner)), engine, keys, media)


def registered(ident: str, account: str, ip: str = "192.0.2.10",
               client: str = "WA/2.26.1 iOS", device: str | None = None) -> dict[str, Any]:
    return {"id": ident, "type": "account.registered", "ts": TS, "account": account,
            "phone": "+14155550100", "ip": ip, "device": device or f"dev-{account}",
            "client": client}


def connected(ident: str, account: str, ip: str = "192.0.2.10") -> dict[str, Any]:
    return {"id": ident, "type": "account.connected", "ts": TS, "account": account,
            "ip": ip, "device": f"dev-{account}", "client": "WA/2.26.1 iOS"}


def message(ident: str, sender: str, recipients: list[str],
            attachments: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": ident, "type": "message.sent", "ts": TS, "message": f"m-{ident}",
            "sender": sender, "recipients": recipients, "ip": "192.0.2.77",
            "attachments": attachments}


def inline(data: bytes) -> dict[str, Any]:
    """An attachment carried inline (base64), as the contract allows over HTTP."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "data": base64.b64encode(data).decode()}


def blastpass_webp() -> bytes:
    from spywall.samples.webp import chunk, plain, riff

    return riff(chunk(b"VP8L", plain()))


def benign_png() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (32, 24))
    image.putdata([(x * 8, y * 10, (x + y) * 4) for y in range(24) for x in range(32)])
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, media: Path, *options: str) -> tuple[subprocess.Popen[bytes], str]:
    """``spywall serve`` (with ``options``) on a free port, answering /healthz (a port
    taken between the probe and the bind means another try)."""
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    errors = b""
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "spywall", "serve", "--db", url, "--port", str(port),
             "--media-root", str(media), "--log-level", "warning", *options],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2, trust_env=False).status_code == 200:
                    return proc, base
            except httpx.TransportError:
                time.sleep(0.2)
        stop(proc)
        errors = proc.stderr.read()[-2000:] if proc.stderr else b""
    pytest.fail(f"spywall serve did not start: {errors.decode(errors='replace')}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out
