"""What the console tests share: an app with the console mounted over a fresh database
(keys per scope, a log signing key), the 2019 world loaded through the CLI, and sign-in
through the real form (its CSRF token read from the page)."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from spywall.cli import main
from spywall.evidence.keys import Signer, write_signer
from spywall.platform import auth, service, web
from spywall.platform.api import create_app
from spywall.platform.world import Truth, generate

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
HOSTILE = "<script>alert(1)</script>"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    app: FastAPI
    engine: sa.Engine
    keys: dict[str, str]        # admin, analyst, ingest
    log_key: Path


def load_world(url: str, folder: Path) -> Truth:
    """The 2019 world, imported and ingested with the CLI (as an operator would)."""
    truth = generate(folder, background_users=6)
    for argv in (["platform", "registry", "import", "--db", url,
                  str(folder / "registry.json"), "-f", "json"],
                 ["platform", "ingest", "--db", url, str(folder / "events.jsonl"),
                  "-f", "json", "-q"]):
        with redirect_stdout(io.StringIO()):
            code = main(argv)
        assert code in (0, 1), argv
    return truth


def make_console(url: str, tmp: Path, secure_cookie: bool | None = False) -> Console:
    tmp.mkdir(parents=True, exist_ok=True)
    engine = service.open_db(url)
    with engine.begin() as conn:
        keys = {s: auth.create_key(conn, f"{s}-key", [s]) for s in ("admin", "analyst", "ingest")}
    signer = Signer.generate("spywall.test/log")
    log_key = tmp / "log.key"
    write_signer(signer, log_key)
    (tmp / "media").mkdir(exist_ok=True)
    app = create_app(engine, tmp / "media")
    web.mount(app, secret="test-secret-" + "x" * 20, secure_cookie=secure_cookie,
              log_key=str(log_key))
    return Console(app, engine, keys, log_key)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, key: str) -> tuple[int, str]:
    page = client.get("/ui/login")
    answer = client.post("/ui/login", data={"key": key, "csrf": csrf_of(page.text)},
                         follow_redirects=False)
    return answer.status_code, answer.headers.get("set-cookie", "")


def event_json(**fields: object) -> str:
    return json.dumps(fields)
