"""The platform end to end on the 2019 world, on SQLite and PostgreSQL: the contract's
commands, campaigns, attribution, violations, notifications and enforcement against the
world's ground truth."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from spywall.cli import main
from spywall.platform.world import Truth, generate


def run(*argv: str) -> tuple[int, object]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(argv))
    text = out.getvalue()
    return code, (json.loads(text) if text.strip().startswith("{") else text)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    folder = tmp_path_factory.mktemp("world")
    return folder, generate(folder, background_users=30)


@pytest.fixture
def loaded(db_url: str, world: tuple[Path, Truth]) -> tuple[str, Truth, dict[str, object]]:
    folder, truth = world
    code, _ = run("platform", "registry", "import", "--db", db_url, str(folder / "registry.json"),
                  "-f", "json")
    assert code == 0
    code, result = run("platform", "ingest", "--db", db_url, str(folder / "events.jsonl"),
                       "-f", "json", "-q")
    assert code == 1, "violations and malicious deliveries were among the events"
    assert isinstance(result, dict)
    return db_url, truth, result


def test_campaign_actors_targets_and_party(loaded: tuple[str, Truth, dict[str, object]]) -> None:
    url, truth, _ = loaded
    code, data = run("platform", "campaigns", "--db", url, "-f", "json")
    assert code == 1
    assert isinstance(data, dict)
    (campaign,) = data["campaigns"]
    assert campaign["actors"] == truth.actors
    assert campaign["targets"] == truth.targets
    assert campaign["party"] == truth.party
    assert not set(campaign["targets"]) & set(campaign["actors"])
    # Shared NAT address, the dialler and its callees never join anything.
    everyone = set(campaign["actors"]) | set(campaign["targets"])
    assert not everyone & {*truth.nat_users, truth.dialler, *truth.background}
    assert campaign["first_seen"] == "2019-04-29T06:00:00Z"
    assert {"voip-rtcp-length", "webp-huffman-overflow"} <= set(campaign["detectors"])
    assert "104.223.76.220" in campaign["infrastructure"]
    assert campaign["countries"]["MX"] == 3
    assert campaign["deliveries"] == len(truth.targets) + 3   # calls, the return, 2 messages


def test_violations_after_the_order_only(loaded: tuple[str, Truth, dict[str, object]]) -> None:
    url, truth, _ = loaded
    code, data = run("platform", "violations", "--db", url, "-f", "json")
    assert code == 1
    assert isinstance(data, dict)
    events = sorted(v["event"] for v in data["violations"])
    assert events == truth.violation_events
    for v in data["violations"]:
        assert v["party"] == truth.party
        assert v["ts"] >= "2025-10-17"
        assert v["identifiers"], "every violation names what tied it to the party"
        assert set(v) >= {"event", "party", "type", "ts", "verdict", "identifiers"}


def test_notifications_one_per_target_in_their_language(
        loaded: tuple[str, Truth, dict[str, object]]) -> None:
    url, truth, _ = loaded
    _, data = run("platform", "notifications", "--db", url, "-f", "json")
    assert isinstance(data, dict)
    got = {n["target"]: n["language"] for n in data["notifications"]}
    assert got == truth.languages
    assert all(n["status"] == "pending" for n in data["notifications"])


def test_reingest_is_idempotent(loaded: tuple[str, Truth, dict[str, object]],
                               world: tuple[Path, Truth]) -> None:
    url, _, first = loaded
    folder, _ = world
    _, before = run("platform", "campaigns", "--db", url, "-f", "json")
    _, again = run("platform", "ingest", "--db", url, str(folder / "events.jsonl"), "-f", "json",
                   "-q")
    assert isinstance(again, dict)
    assert again["accepted"] == 0
    assert again["duplicates"] == first["accepted"]
    _, after = run("platform", "campaigns", "--db", url, "-f", "json")
    assert after == before


def test_approved_ban_denies_the_next_event(loaded: tuple[str, Truth, dict[str, object]],
                                           tmp_path: Path) -> None:
    url, truth, _ = loaded
    _, bans = run("platform", "bans", "--db", url, "-f", "json")
    assert isinstance(bans, dict)
    proposed = {b["account"]: b for b in bans["bans"] if b["status"] == "proposed"}
    assert truth.returning_account in proposed
    ban = proposed[truth.returning_account]["id"]
    assert run("platform", "bans", "approve", str(ban), "--db", url, "--reason",
               "")[0] == 2, "a reason is required"
    code, moved = run("platform", "bans", "approve", str(ban), "--db", url, "--reason",
                      "shares rig-b with wis-3", "-f", "json")
    assert code == 0
    assert isinstance(moved, dict)
    assert moved["status"] == "applied"
    event = {"id": "after-ban-1", "type": "call.offered", "ts": "2026-07-01T10:00:00Z",
             "call": "c-after", "caller": truth.returning_account, "callee": "target-03",
             "ip": "198.51.100.41"}
    path = tmp_path / "next.jsonl"
    path.write_text(json.dumps(event) + "\n")
    code, result = run("platform", "ingest", "--db", url, str(path), "-f", "json", "-q")
    assert code == 1
    assert isinstance(result, dict)
    assert result["denied"] == 1
    assert result["violations"] == 1


def test_malformed_lines_refused_with_line_numbers(db_url: str, tmp_path: Path) -> None:
    lines = [
        '{"id": "a", "type": "call.answered", "ts": "2020-01-01T00:00:00Z", "call": "x"}',
        "{not json",
        '{"id": "b", "type": "call.answered", "ts": "yesterday", "call": "x"}',
        '{"id": "c", "type": "message.sent", "ts": "2020-01-01T00:00:00Z", "message": "m",'
        ' "sender": "s", "recipients": [], "ip": "1.2.3.4", "attachments": []}',
        '{"id": "d", "type": "call.ended", "ts": "2020-01-01T00:00:01Z", "call": "x",'
        ' "extra": {"kept": true}}',
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, result = run("platform", "ingest", "--db", db_url, str(path), "-f", "json", "-q")
    assert code == 0
    assert isinstance(result, dict)
    assert result["accepted"] == 2
    assert result["refused"] == 3
    assert [r["line"] for r in result["refusals"]] == [2, 3, 4]
    assert "recipients" in result["refusals"][2]["reason"]


def test_campaigns_are_shared_as_stix(loaded: tuple[str, Truth, dict[str, object]],
                                      world: tuple[Path, Truth]) -> None:
    """What 'spywall share publish' puts in the registry collection: the campaign,
    attributed to the party's identity, with indicators for its infrastructure and the
    payload hashes found malicious in it; read back with the stix2 library and its
    pattern validator."""
    import hashlib

    import sqlalchemy as sa
    import stix2
    from stix2patterns.validator import validate

    from spywall.platform import db, taxii_store
    from spywall.platform.world import _blastpass

    url, truth, _ = loaded
    engine = db.make_engine(url)
    with engine.begin() as conn:
        first = taxii_store.publish_registry(conn)
    with engine.begin() as conn:
        again = taxii_store.publish_registry(conn)
        rows, _more = taxii_store.query(conn, "registry", limit=10_000)
    assert again["success_count"] == first["success_count"]
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(db.taxii_objects)).scalar()
    assert count == len(rows), "a second publish adds nothing"
    objects = [stix2.parse(r.body, allow_custom=True) for r in rows]
    (campaign,) = [o for o in objects if o.type == "campaign"]
    by_id = {o.id: o for o in objects}
    attributed = [o for o in objects if o.type == "relationship"
                  and o.source_ref == campaign.id and o.relationship_type == "attributed-to"]
    assert len(attributed) == 1
    assert by_id[attributed[0].target_ref].x_spywall_party_id == truth.party
    indicators = [by_id[o.source_ref] for o in objects if o.type == "relationship"
                  and o.target_ref == campaign.id and o.relationship_type == "indicates"]
    patterns = {i.pattern for i in indicators}
    assert all(validate(p, stix_version="2.1") for p in patterns)
    assert "[ipv4-addr:value = '104.223.76.220']" in patterns
    blastpass = hashlib.sha256(_blastpass()).hexdigest()
    assert f"[file:hashes.'SHA-256' = '{blastpass}']" in patterns
