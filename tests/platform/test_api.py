"""The HTTP API against the contract, on SQLite and PostgreSQL: keys and scopes, events
in (idempotent) and back, the inline gate on registry identifiers and on payloads (a
crafted BLASTPASS WebP denied, a Pillow PNG allowed), registry changes seen by the next
decision, and the review queue with its audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_support import (
    BARRED_ACCOUNT,
    REGISTRY,
    TS,
    Api,
    benign_png,
    blastpass_webp,
    connected,
    inline,
    make_api,
    message,
    registered,
)

from spywall.platform import db


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    made = make_api(db_url, tmp_path / "media")
    yield made
    made.engine.dispose()


# route -> scopes that may call it (admin may call everything)
ROUTES: list[tuple[str, str, Any, set[str]]] = [
    ("POST", "/v1/events", [], {"ingest"}),
    ("GET", "/v1/events/nothing-here", None, {"ingest", "analyst"}),
    ("POST", "/v1/gate", connected("auth-1", "someone"), {"ingest"}),
    ("GET", "/v1/campaigns", None, {"analyst"}),
    ("GET", "/v1/violations", None, {"analyst"}),
    ("GET", "/v1/notifications", None, {"analyst"}),
    ("GET", "/v1/bans", None, {"analyst"}),
    ("POST", "/v1/bans/1/approve", {"reason": "checked"}, {"analyst"}),
    ("POST", "/v1/registry", REGISTRY, {"admin"}),
    ("GET", "/v1/registry", None, {"admin"}),
]


def test_every_route_needs_a_key_with_its_scope(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    for method, path, body, scopes in ROUTES:
        send = {"json": body} if body is not None else {}
        anonymous = api.client.request(method, path, **send)
        assert anonymous.status_code == 401, (method, path)
        assert anonymous.headers["www-authenticate"] == "Bearer"
        for bad in ("Bearer sw_0000_nope", "Basic dXNlcjpwYXNz", "Bearer "):
            r = api.client.request(method, path, headers={"Authorization": bad}, **send)
            assert r.status_code == 401, (method, path, bad)
        for who in ("ingest", "analyst", "admin"):
            r = api.client.request(method, path, headers=api.auth(who), **send)
            if who in scopes or who == "admin":
                assert r.status_code not in (401, 403), (method, path, who, r.text)
            else:
                assert r.status_code == 403, (method, path, who)


def test_events_are_stored_once_and_answered_after_commit(api: Api) -> None:
    batch = [registered("e1", "alice"), connected("e2", "alice"),
             {**connected("e3", "bob"), "edge": {"pop": "ams", "rtt_ms": 12}}]
    first = api.post("/v1/events", "ingest", batch)
    assert first.status_code == 200
    assert first.json() == {"accepted": ["e1", "e2", "e3"], "refused": []}
    assert sorted(api.stored_ids()) == ["e1", "e2", "e3"]   # committed when answered
    again = api.post("/v1/events", "ingest", [*batch, connected("e4", "carol")])
    assert again.json()["accepted"] == ["e1", "e2", "e3", "e4"]
    assert sorted(api.stored_ids()) == ["e1", "e2", "e3", "e4"]
    stored = api.get("/v1/events/e3", "analyst").json()
    assert stored["edge"] == {"pop": "ams", "rtt_ms": 12}      # unknown fields kept
    assert {k: stored[k] for k in batch[2]} == batch[2]
    assert stored["verdict"] == "allow"
    assert stored["reasons"] == []
    assert api.get("/v1/events/e1", "ingest").status_code == 200
    assert api.get("/v1/events/no-such-event", "ingest").status_code == 404


def test_valid_events_are_kept_and_the_rest_refused_by_index(api: Api) -> None:
    batch: list[Any] = [connected("ok-1", "dave"), {"id": "bad-1", "type": "call.ended"},
                        17, {**connected("bad-2", "dave"), "ts": "yesterday"}]
    r = api.post("/v1/events", "ingest", batch)
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == ["ok-1"]
    assert [(x["index"], x["id"]) for x in body["refused"]] == [
        (1, "bad-1"), (2, None), (3, "bad-2")]
    assert "ts" in body["refused"][0]["reason"]
    assert "ts" in body["refused"][2]["reason"]
    assert sorted(api.stored_ids()) == ["ok-1"]
    none = api.post("/v1/events", "ingest", batch[1:])
    assert none.status_code == 422
    assert none.json()["accepted"] == []
    assert len(none.json()["refused"]) == 3


def test_gate_denies_a_registry_identifier_and_records_it(api: Api) -> None:
    event = registered("g1", "newcomer", ip="203.0.113.44")
    r = api.post("/v1/gate", "ingest", event)
    assert r.status_code == 200
    answer = r.json()
    assert answer["verdict"] == "deny"
    assert answer["party"] == "vendor-x"
    [reason] = answer["reasons"]
    assert reason["rule"] == "registry-identifier"
    assert reason["kind"] == "cidr"
    assert reason["value"] == "203.0.113.0/24"
    stored = api.get("/v1/events/g1", "analyst").json()
    assert (stored["verdict"], stored["party"]) == ("deny", "vendor-x")
    violations = api.get("/v1/violations", "analyst").json()["violations"]
    assert [(v["event"], v["party"], v["ts"]) for v in violations] == [("g1", "vendor-x", TS)]
    # the account's registration was denied: its next event is denied too
    later = api.post("/v1/gate", "ingest", connected("g2", "newcomer")).json()
    assert later["verdict"] == "deny"
    assert later["reasons"][0]["rule"] == "registration-denied"
    barred = api.post("/v1/gate", "ingest", connected("g3", BARRED_ACCOUNT)).json()
    assert (barred["verdict"], barred["party"]) == ("deny", "vendor-x")


def test_gate_judges_inline_attachments(api: Api) -> None:
    exploit = blastpass_webp()
    r = api.post("/v1/gate", "ingest", message("m1", "sender-a", ["victim-1"],
                                               [inline(exploit)])).json()
    assert r["verdict"] == "deny"
    rules = {x["rule"]: x for x in r["reasons"]}
    assert "webp-huffman-overflow" in rules["attachment-exploit"]["detectors"]
    png = benign_png()
    import io

    from PIL import Image  # the independent decoder reads it whole

    Image.open(io.BytesIO(png)).load()
    ok = api.post("/v1/gate", "ingest", message("m2", "sender-b", ["friend"], [inline(png)]))
    assert ok.json() == {"verdict": "allow", "reasons": [], "party": None}
    liar = inline(png) | {"sha256": "0" * 64}   # bytes that are not what they claim
    held = api.post("/v1/gate", "ingest", message("m3", "sender-b", ["friend"], [liar]))
    assert held.json()["verdict"] == "hold"
    assert held.json()["reasons"][0]["rule"] == "attachment-incomplete"


def test_gate_reads_attachments_under_the_media_root(api: Api) -> None:
    exploit = blastpass_webp()
    (api.media / "in").mkdir()
    (api.media / "in" / "a.webp").write_bytes(exploit)
    att = inline(exploit)
    del att["data"]
    relative = api.post("/v1/gate", "ingest",
                        message("p1", "s1", ["t1"], [att | {"path": "in/a.webp"}])).json()
    assert relative["verdict"] == "deny"
    absolute = str(api.media / "in" / "a.webp")
    fresh = api.post("/v1/gate", "ingest",
                     message("p2", "s1", ["t1"], [att | {"path": absolute}])).json()
    assert fresh["verdict"] == "deny"
    missing = api.post("/v1/gate", "ingest", message("p3", "s1", ["t1"], [
        {"sha256": "ab" * 32, "path": "in/none.webp"}])).json()
    assert missing["verdict"] == "hold"       # could not be examined: fail closed


def test_registry_import_is_seen_by_the_next_decision(api: Api) -> None:
    event = connected("r1", "mallory", ip="198.51.100.7")
    assert api.post("/v1/gate", "ingest", event).json()["verdict"] == "allow"
    extra = {"official_clients": [], "parties": [{
        "id": "vendor-y", "name": "Vendor Y", "aliases": [], "affiliate_of": None,
        "orders": [{"court": "c", "case": "k", "date": "2026-01-01", "scope": "s"}],
        "identifiers": [{"kind": "ip", "value": "198.51.100.7", "source": "test",
                         "added": "2026-02-01"}]}]}
    assert api.post("/v1/registry", "analyst", extra).status_code == 403
    imported = api.post("/v1/registry", "admin", extra)
    assert imported.status_code == 200
    assert imported.json() == {"parties": 1, "orders": 1, "identifiers": 1,
                               "official_clients": 0}
    after = api.post("/v1/gate", "ingest", connected("r2", "mallory", ip="198.51.100.7"))
    assert (after.json()["verdict"], after.json()["party"]) == ("deny", "vendor-y")
    # the same id again gets the decision stored when it first came
    assert api.post("/v1/gate", "ingest", event).json()["verdict"] == "allow"
    exported = json.loads(api.get("/v1/registry", "admin").content)
    assert {p["id"] for p in exported["parties"]} == {"vendor-x", "vendor-y"}


def test_registry_import_takes_a_stix_bundle(api: Api) -> None:
    from spywall.platform.registry import Identifier, Order, Party, Registry
    from spywall.platform.registry_stix import to_stix

    party = Party(id="vendor-z", name="Vendor Z", aliases=[], affiliate_of=None,
                  orders=[Order(court="c", case="k", date="2026-01-01", scope="s")],
                  identifiers=[Identifier(kind="ip", value="192.0.2.200", source="stix",
                                          added="2026-01-02")])
    bundle = to_stix(Registry(official_clients=[], parties=[party]))
    r = api.client.post("/v1/registry", headers=api.auth("admin"), content=bundle.encode())
    assert r.status_code == 200, r.text
    assert r.json()["identifiers"] == 1
    after = api.post("/v1/gate", "ingest", connected("s1", "zed", ip="192.0.2.200")).json()
    assert after["verdict"] == "deny"
    bad = api.client.post("/v1/registry", headers=api.auth("admin"), content=b'{"parties": 3}')
    assert bad.status_code == 422


def test_review_queue_steps_need_reasons_and_are_audited(api: Api) -> None:
    sent = api.post("/v1/events", "ingest", [
        message("d1", "attacker-1", ["victim-1", "victim-2"], [inline(blastpass_webp())])])
    assert sent.status_code == 200      # the analysis ran after the answer (test client)
    campaigns = api.get("/v1/campaigns", "analyst").json()["campaigns"]
    assert [(c["actors"], c["targets"]) for c in campaigns] == [
        (["attacker-1"], ["victim-1", "victim-2"])]
    notes = api.get("/v1/notifications", "analyst").json()["notifications"]
    assert sorted(n["target"] for n in notes) == ["victim-1", "victim-2"]
    [ban] = api.get("/v1/bans", "analyst").json()["bans"]
    assert (ban["account"], ban["status"]) == ("attacker-1", "proposed")
    held = api.post("/v1/gate", "ingest", connected("d2", "attacker-1")).json()
    assert held["verdict"] == "hold"
    path = f"/v1/bans/{ban['id']}"
    assert api.post(f"{path}/approve", "analyst", {}).status_code == 422
    assert api.post(f"{path}/approve", "analyst", {"reason": "   "}).status_code == 422
    assert api.post(f"{path}/approve", "ingest", {"reason": "x"}).status_code == 403
    assert api.post(f"{path}/explode", "analyst", {"reason": "x"}).status_code == 422
    assert api.post("/v1/bans/99999/approve", "analyst", {"reason": "x"}).status_code == 404
    r = api.post(f"{path}/approve", "analyst", {"reason": "exploit confirmed"})
    assert r.json() == {"ban": ban["id"], "status": "approved"}
    assert api.post(f"{path}/reject", "analyst", {"reason": "late"}).status_code == 409
    assert api.post(f"{path}/apply", "analyst", {"reason": "go"}).json()["status"] == "applied"
    denied = api.post("/v1/gate", "ingest", connected("d3", "attacker-1")).json()
    assert denied["verdict"] == "deny"
    assert "account-banned" in {x["rule"] for x in denied["reasons"]}
    steps = api.get("/v1/bans", "analyst").json()["bans"][0]["steps"]
    assert [(s["step"], s["reason"]) for s in steps[1:]] == [
        ("approve", "exploit confirmed"), ("apply", "go")]
    assert steps[1]["actor"].startswith("analyst-key#")
    with api.engine.connect() as conn:
        audit = [(r.actor.split("#")[0], r.action) for r in conn.execute(
            sa.select(db.audit).where(db.audit.c.actor != "cli").order_by(db.audit.c.seq))]
    assert ("analyst-key", "view-campaigns") in audit
    assert ("analyst-key", "ban-approve") in audit
    assert ("analyst-key", "ban-apply") in audit
    assert ("analyst-key", "view-bans") in audit
    api.get("/v1/events/d1", "analyst")
    api.get("/v1/events/d1", "ingest")
    with api.engine.connect() as conn:
        reads = [r.actor.split("#")[0] for r in conn.execute(
            sa.select(db.audit).where(db.audit.c.action == "view-event"))]
    assert reads == ["analyst-key"]


def test_a_review_made_elsewhere_reaches_the_next_decision(api: Api) -> None:
    from spywall.platform import enforce

    api.post("/v1/events", "ingest", [
        message("x1", "attacker-2", ["victim-3"], [inline(blastpass_webp())])])
    [ban] = api.get("/v1/bans", "analyst").json()["bans"]
    assert api.post("/v1/gate", "ingest", connected("x2", "attacker-2")).json()[
        "verdict"] == "hold"
    with api.engine.begin() as conn:      # as `spywall platform bans approve` would
        assert enforce.approve(conn, ban["id"], "cli", "confirmed") == "applied"
    after = api.post("/v1/gate", "ingest", connected("x3", "attacker-2")).json()
    assert after["verdict"] == "deny"
    assert "account-banned" in {r["rule"] for r in after["reasons"]}


def test_a_revoked_key_is_refused_at_its_next_request(api: Api) -> None:
    """Revoked from the command line (another process's connection): the very next
    request with the key gets 401, the other keys go on, and the audit log says who
    revoked it and why."""
    import subprocess
    import sys

    from spywall.platform import auth

    assert api.post("/v1/gate", "ingest", connected("k1", "someone")).status_code == 200
    ident = auth.key_id(api.keys["ingest"])
    assert ident is not None
    url = api.engine.url.render_as_string(hide_password=False)
    done = subprocess.run([sys.executable, "-m", "spywall", "platform", "keys", "revoke",
                           ident, "--reason", "laptop stolen", "--db", url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    r = api.post("/v1/gate", "ingest", connected("k2", "someone"))
    assert r.status_code == 401
    assert api.get("/v1/campaigns", "analyst").status_code == 200
    again = subprocess.run([sys.executable, "-m", "spywall", "platform", "keys", "revoke",
                            ident, "--reason", "twice", "--db", url],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2
    assert "already revoked" in again.stderr
    with api.engine.connect() as conn:
        rows = conn.execute(sa.select(db.audit.c.actor, db.audit.c.detail).where(
            db.audit.c.action == "key-revoke")).all()
    assert [(r.actor, r.detail) for r in rows] == [
        ("cli", {"id": ident, "reason": "laptop stolen"})]


def test_background_analyses_start_an_interval_apart(api: Api, monkeypatch: Any) -> None:
    """Under a stream of requests the analysis runs once an interval, not once a request:
    a call that comes while one waits to start returns at once, covered by that run."""
    import threading

    from spywall.platform import api as api_module
    from spywall.platform import service
    from spywall.platform.api import Platform, Settings

    class Quiet:
        proposals = derived = attributed = violations = 0

    runs: list[int] = []
    waits: list[float] = []
    waiting, go = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:      # the wait before a run, held by the test
        waits.append(seconds)
        waiting.set()
        assert go.wait(timeout=120)

    monkeypatch.setattr(service, "run_analysis", lambda engine: runs.append(1) or Quiet())
    monkeypatch.setattr(api_module.time, "sleep", sleep)
    platform = Platform(api.engine, Settings(api.media, analysis_interval=30.0))
    platform.analyse()                                  # the first runs at once
    assert runs == [1]
    assert waits == []
    second = threading.Thread(target=platform.analyse)
    second.start()
    assert waiting.wait(timeout=120)                    # it waits for the interval
    assert 0 < waits[0] <= 30.0
    for _ in range(7):
        platform.analyse()                              # covered by the waiting run
    assert runs == [1]
    go.set()
    second.join(timeout=120)
    assert runs == [1, 1]
    assert len(waits) == 1
