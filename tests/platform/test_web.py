"""The console without a browser (FastAPI's TestClient), on SQLite and PostgreSQL:
sign-in and its refusals, the session cookie's flags and signature, CSRF on every form,
the security headers, no inline script or style in any page, and hostile strings shown
as text."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from web_support import CSP, HOSTILE, Console, csrf_of, load_world, make_console, sign_in

from spywall.platform import db
from spywall.platform.world import Truth

PAGES = ["/ui/", "/ui/live", "/ui/campaigns", "/ui/review", "/ui/registry",
         "/ui/notifications", "/ui/evidence", "/ui/login"]


@pytest.fixture
def console(db_url: str, tmp_path: Path) -> Console:
    return make_console(db_url, tmp_path)


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> tuple[Console, Truth]:
    truth = load_world(db_url, tmp_path / "world")
    return make_console(db_url, tmp_path), truth


class Inline(HTMLParser):
    """Collects what a strict CSP would refuse: inline scripts, style elements and
    attributes, event-handler attributes, javascript: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {k for k, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style>")
        for k, v in attrs:
            if k == "style" or k.startswith("on"):
                self.found.append(f"{tag} {k}=")
            if k in ("href", "src", "action") and (v or "").strip().lower().startswith(
                    "javascript:"):
                self.found.append(f"{tag} {k}=javascript:")


def test_pages_need_a_session(console: Console) -> None:
    client = TestClient(console.app)
    for path in PAGES[:-1]:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == "/ui/login"
    assert client.get("/ui/live/stream").status_code == 401
    assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"


def test_sign_in_refusals(console: Console) -> None:
    client = TestClient(console.app)
    assert sign_in(client, "sw_0123456789abcdef_wrong")[0] == 401
    assert sign_in(client, console.keys["ingest"])[0] == 403, "the console needs analyst"
    wrong_secret = console.keys["analyst"][:-4] + "AAAA"
    assert sign_in(client, wrong_secret)[0] == 401
    # A sign-in form not sent from the page (no pre-session cookie, forged token).
    fresh = TestClient(console.app)
    answer = fresh.post("/ui/login", data={"key": console.keys["analyst"], "csrf": "x" * 64},
                        follow_redirects=False)
    assert answer.status_code == 403
    assert "spywall_ui=" not in answer.headers.get("set-cookie", "")
    assert fresh.get("/ui/live", follow_redirects=False).status_code == 303


def test_session_cookie_flags_and_signature(console: Console, tmp_path: Path,
                                            db_url: str) -> None:
    client = TestClient(console.app)
    status, cookie = sign_in(client, console.keys["analyst"])
    assert status == 303
    session = cookie.split(",")[0]
    assert "HttpOnly" in session
    assert "SameSite=strict" in session
    assert "Path=/ui" in session
    assert "Secure" not in session, "this app was configured without the Secure flag"
    assert client.get("/ui/live").status_code == 200
    # A cookie changed by one character is not a session.
    value = client.cookies["spywall_ui"]
    forged = TestClient(console.app)
    # (the first character: every bit of it counts, where a last base64 character may
    # carry only padding bits and decode to the same signature)
    forged.cookies.set("spywall_ui", ("A" if value[0] != "A" else "B") + value[1:],
                       path="/ui")
    assert forged.get("/ui/live", follow_redirects=False).status_code == 303
    # Revoking the key ends the session at once.
    key_id = console.keys["analyst"].split("_")[1]
    with console.engine.begin() as conn:
        conn.execute(db.api_keys.update().where(db.api_keys.c.id == key_id).values(
            revoked_us=1))
    assert client.get("/ui/live", follow_redirects=False).status_code == 303
    # The Secure flag is on by default.
    secure = make_console(db_url, tmp_path / "secure", secure_cookie=None)
    answer = TestClient(secure.app)
    assert "Secure" in sign_in(answer, secure.keys["analyst"])[1].split(",")[0]


def test_headers_and_no_inline_code(world: tuple[Console, Truth]) -> None:
    console, _ = world
    client = TestClient(console.app)
    sign_in(client, console.keys["admin"])
    for path in [*PAGES, "/ui/evidence?kind=violation"]:
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-security-policy"] == CSP
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"
        parser = Inline()
        parser.feed(answer.text)
        assert not parser.found, (path, parser.found)
    # Every POST form carries the session's CSRF token.
    page = client.get("/ui/registry").text
    forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", page, re.S)
    assert forms
    assert all(f'value="{csrf_of(page)}"' in f for f in forms)
    # Every page read is in the audit log, with who read it.
    with console.engine.connect() as conn:
        seen = {(a, who.split("#")[0]) for a, who in conn.execute(
            sa.select(db.audit.c.action, db.audit.c.actor))}
    for action in ("ui-sign-in", "ui-view-live", "ui-view-campaigns", "ui-view-review",
                   "ui-view-registry", "ui-view-notifications", "ui-view-evidence"):
        assert (action, "admin-key") in seen, action
    # The API answers keep their own headers.
    assert "content-security-policy" not in client.get("/healthz").headers


def test_every_form_refuses_a_wrong_csrf_token(world: tuple[Console, Truth]) -> None:
    console, _ = world
    client = TestClient(console.app)
    sign_in(client, console.keys["admin"])
    other = TestClient(console.app)
    sign_in(other, console.keys["admin"])
    theirs = csrf_of(other.get("/ui/review").text)
    mine = csrf_of(client.get("/ui/review").text)
    assert theirs != mine, "a token is bound to its session"
    with console.engine.connect() as conn:
        ban = conn.execute(sa.select(db.bans.c.id).where(db.bans.c.status == "proposed")
                           ).scalars().first()
    assert ban is not None
    posts = {f"/ui/review/{ban}": {"action": "approve", "reason": "r"},
             "/ui/registry/add": {"party": "nso-group", "kind": "ip", "value": "192.0.2.9",
                                  "source": "s", "reason": "r"},
             "/ui/registry/retire": {"party": "nso-group", "kind": "ip",
                                     "value": "54.93.81.200", "reason": "r"},
             "/ui/evidence/export": {"party": ""},
             "/ui/logout": {}}
    for path, fields in posts.items():
        wrong = mine[:-1] + ("1" if mine.endswith("0") else "0")   # never the real one
        for token in (None, "", theirs, wrong):
            data = dict(fields) if token is None else {**fields, "csrf": token}
            answer = client.post(path, data=data, follow_redirects=False)
            assert answer.status_code == 403, (path, token)
    with console.engine.connect() as conn:
        assert conn.execute(sa.select(db.bans.c.status).where(db.bans.c.id == ban)
                            ).scalar() == "proposed"
    assert client.get("/ui/live").status_code == 200, "still signed in"


def test_review_step_needs_a_reason_and_records_it(world: tuple[Console, Truth]) -> None:
    console, truth = world
    client = TestClient(console.app)
    sign_in(client, console.keys["analyst"])
    with console.engine.connect() as conn:
        ban = conn.execute(sa.select(db.bans.c.id).where(
            db.bans.c.account == truth.returning_account)).scalar_one()
    token = csrf_of(client.get("/ui/review").text)
    empty = client.post(f"/ui/review/{ban}", data={"csrf": token, "action": "approve",
                                                   "reason": "  "})
    assert empty.status_code == 422
    done = client.post(f"/ui/review/{ban}", data={"csrf": token, "action": "reject",
                                                  "reason": "not enough: shared rig only"},
                       follow_redirects=False)
    assert done.status_code == 303
    again = client.post(f"/ui/review/{ban}", data={"csrf": token, "action": "reject",
                                                   "reason": "twice"})
    assert again.status_code == 409, "a rejected ban cannot be rejected again"
    with console.engine.connect() as conn:
        steps = conn.execute(sa.select(db.ban_steps.c.step, db.ban_steps.c.reason,
                                       db.ban_steps.c.actor).where(db.ban_steps.c.ban == ban)
                             ).all()
    assert ("reject", "not enough: shared rig only") in [(s, r) for s, r, _ in steps]
    assert any(a.startswith("analyst-key#") for s, _, a in steps if s == "reject")


def test_hostile_strings_are_text(world: tuple[Console, Truth]) -> None:
    console, _ = world
    client = TestClient(console.app)
    sign_in(client, console.keys["admin"])
    ingest = {"Authorization": f"Bearer {console.keys['ingest']}"}
    event = {"id": f"x-{HOSTILE}", "type": "account.connected", "ts": "2026-12-01T10:00:00Z",
             "account": HOSTILE, "ip": "54.93.81.200", "device": HOSTILE,
             "client": f"{HOSTILE} iOS"}
    assert client.post("/v1/events", json=[event], headers=ingest).status_code == 200
    token = csrf_of(client.get("/ui/registry").text)
    added = client.post("/ui/registry/add", data={
        "csrf": token, "party": "nso-group", "kind": "account", "value": HOSTILE,
        "source": f"\"><img src=x onerror=alert(1)>{HOSTILE}", "reason": HOSTILE},
        follow_redirects=False)
    assert added.status_code == 303
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for path in ("/ui/live", "/ui/registry", f"/ui/deliveries/{HOSTILE}"):
        page = client.get(path).text
        assert HOSTILE not in page, path
        assert "<img src=x" not in page, path
        if not path.startswith("/ui/deliveries"):
            assert escaped in page, path
        parser = Inline()
        parser.feed(page)
        assert not parser.found, (path, parser.found)
    with console.engine.connect() as conn:
        stored = conn.execute(sa.select(db.identifiers.c.value).where(
            db.identifiers.c.kind == "account")).scalars().all()
    assert HOSTILE in stored, "kept exact in the database"


def test_unpack_refuses_paths_and_bombs(tmp_path: Path) -> None:
    import io
    import zipfile

    from fastapi import HTTPException

    from spywall.platform.web.evidence_page import unpack

    def archive(files: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files.items():
                z.writestr(name, data)
        return buf.getvalue()

    for bad in ({"../evil": b"x"}, {"a/b/c": b"x"}, {".hidden": b"x"},
                {f"f{i}": b"x" for i in range(40)}):
        target = tmp_path / str(len(list(tmp_path.iterdir())))
        target.mkdir()
        with pytest.raises(HTTPException):
            unpack(archive(bad), target)
    with pytest.raises(HTTPException):
        unpack(b"not a zip", tmp_path)
    ok = tmp_path / "ok"
    ok.mkdir()
    unpack(archive({"bundle/checkpoint": b"c", "bundle/keys.json": b"{}"}), ok)
    assert sorted(p.name for p in ok.iterdir()) == ["checkpoint", "keys.json"]


def test_registry_import_stix_and_garbage(console: Console) -> None:
    from spywall.platform.registry import Identifier, Order, Party, Registry
    from spywall.platform.registry_stix import to_stix

    client = TestClient(console.app)
    sign_in(client, console.keys["admin"])
    party = Party(id="vendor-z", name="Vendor Z", aliases=[], affiliate_of=None,
                  orders=[Order(court="c", case="1", date="2025-01-01")],
                  identifiers=[Identifier(kind="domain", value="c2.vendor-z.example",
                                          source="report", added="2025-01-02")])
    bundle = to_stix(Registry(official_clients=[], parties=[party])).encode()
    token = csrf_of(client.get("/ui/registry").text)
    done = client.post("/ui/registry/import", data={"csrf": token, "reason": "STIX feed"},
                       files={"file": ("feed.json", bundle, "application/json")},
                       follow_redirects=False)
    assert done.status_code == 303
    page = client.get(done.headers["location"]).text
    assert "c2.vendor-z.example" in page
    assert "Done: imported" in page
    for junk in (b"{not json", b'{"type": "bundle", "objects": 5}', b"\xff" * 100):
        bad = client.post("/ui/registry/import", data={"csrf": token, "reason": "x"},
                          files={"file": ("x.json", junk, "application/json")})
        assert bad.status_code == 422, junk
        assert "<h1>422</h1>" in bad.text
    # The note after a redirect is shown only when it is the console's own words.
    assert "Done:" not in client.get("/ui/registry?done=<b>hi</b>").text
    # An analyst key can use the console but not the registry page.
    analyst = TestClient(console.app)
    sign_in(analyst, console.keys["analyst"])
    assert analyst.get("/ui/registry").status_code == 403
    assert 'href="/ui/registry"' not in analyst.get("/ui/live").text


def test_evidence_page_shows_checkpoint_witnesses_and_entries(world: tuple[Console, Truth]
                                                              ) -> None:
    from spywall.evidence import log
    from spywall.evidence.keys import COSIGNER, Signer, add_signature, load_signer

    console, truth = world
    signer = load_signer(str(console.log_key))
    witness = Signer.generate("witness.example/w1", COSIGNER)
    with console.engine.begin() as conn:
        note = log.checkpoint(conn, signer)
        size = int(note.split("\n")[1])
        log.add_cosignatures(conn, size, add_signature(note, witness))
    client = TestClient(console.app)
    sign_in(client, console.keys["analyst"])
    page = client.get("/ui/evidence").text
    assert f"Size {size}," in page
    assert "witness: witness.example/w1 (key hash " + witness.id.hex() in page
    assert "log: spywall.test/log" in page
    assert signer.vkey() in page
    hits = client.get("/ui/evidence", params={"kind": "violation",
                                              "party": truth.party}).text
    assert hits.count('href="/ui/evidence?index=') >= len(truth.violation_events)
    one = client.get("/ui/evidence", params={"index": "0"}).text
    assert 'id="entry-body"' in one
    assert client.get("/ui/evidence", params={"index": "-1; drop"}).status_code == 200


def test_live_stream_over_http_resumes_without_repeats(console: Console) -> None:
    """The stream through a real server (uvicorn): decisions arrive as SSE frames, and a
    reconnection with Last-Event-ID resumes after the last frame seen."""
    import json
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(console.app, host="127.0.0.1", port=port,
                                           log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    ingest = {"Authorization": f"Bearer {console.keys['ingest']}"}

    def post(ident: str) -> None:
        event = {"id": ident, "type": "account.connected", "ts": "2026-12-01T10:00:00Z",
                 "account": ident, "ip": "192.0.2.1", "device": "d", "client": "WA/2 iOS"}
        assert httpx.post(base + "/v1/events", json=[event], headers=ingest,
                          timeout=60).status_code == 200

    def frames(client: httpx.Client, headers: dict[str, str], until: str
               ) -> list[tuple[str, dict[str, object]]]:
        got: list[tuple[str, dict[str, object]]] = []
        last_id = ""
        with client.stream("GET", "/ui/live/stream", headers=headers) as answer:
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/event-stream")
            for line in answer.iter_lines():
                if line.startswith("id: "):
                    last_id = line[4:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    got.append((last_id, data))
                    if data.get("id") == until:
                        return got
        raise AssertionError("the stream ended before the event came")

    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            assert httpx.get(base + "/ui/live/stream", timeout=10).status_code == 401
            page = client.get("/ui/login")
            client.post("/ui/login", data={"key": console.keys["analyst"],
                                           "csrf": csrf_of(page.text)})
            post("first")
            seen = frames(client, {}, "first")
            assert [d.get("id") for _, d in seen] == ["first"]
            post("second")
            resumed = frames(client, {"Last-Event-ID": seen[-1][0]}, "second")
            assert [d.get("id") for _, d in resumed] == ["second"], "no repeats"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_mount_twice_changes_only_the_settings(console: Console) -> None:
    from spywall.platform import web

    routes = len(console.app.routes)
    web.mount(console.app, secret="another-secret-" + "y" * 20, secure_cookie=False)
    assert len(console.app.routes) == routes
    client = TestClient(console.app)
    assert sign_in(client, console.keys["analyst"])[0] == 303
    assert client.get("/ui/live").status_code == 200
