"""Hostile requests get a clear 4xx, never a 500: bodies that are not JSON, not UTF-8,
of the wrong shape or type, nested too deeply, too large by bytes (declared or chunked)
or by count, and values the databases cannot hold. ``split_array`` is checked against
msgspec's decoder as the independent oracle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from api_support import Api, connected, make_api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spywall.platform.api_limits import BodyError, split_array


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    made = make_api(db_url, tmp_path / "media", registry=False)
    yield made
    made.engine.dispose()


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Api]:
    """An app with small caps (64 KiB, 5 events), on SQLite."""
    from fastapi.testclient import TestClient

    from spywall.platform.api import create_app

    url = f"sqlite:///{tmp_path / 'small.db'}"
    from spywall.platform import db

    db.init_schema(db.make_engine(url))
    made = make_api(url, tmp_path / "media", registry=False)
    made.client = TestClient(create_app(made.engine, made.media, max_body=64 << 10,
                                        max_events=5))
    yield made
    made.engine.dispose()


BAD_EVENT_BODIES: list[tuple[bytes, int, str]] = [
    (b"", 400, "empty"),
    (b"{", 422, "array"),
    (b"[1, 2", 400, "expected ','"),
    (b"[] []", 400, "text after"),
    (b"\xff\xfe[]", 400, "UTF-8"),
    (b"[" * 50_000 + b"]" * 50_000, 400, "not valid JSON"),
    (b'{"id": "x"}', 422, "array"),
    (b'"events"', 422, "array"),
    (b"[" + b"9" * 5000 + b"]", 400, "not valid JSON"),
]


def test_event_bodies_that_cannot_be_used(api: Api) -> None:
    for body, status, words in BAD_EVENT_BODIES:
        r = api.client.post("/v1/events", headers=api.auth("ingest"), content=body)
        assert r.status_code == status, (body[:20], r.text)
        assert words in r.json()["detail"], (body[:20], r.text)
    deep = ('{"id": "d", "type": "call.ended", "ts": "2026-03-01T10:00:00Z", "call": "c", '
            '"extra": ' + "[" * 5000 + "]" * 5000 + "}").encode()
    r = api.client.post("/v1/gate", headers=api.auth("ingest"), content=deep)
    assert r.status_code == 422
    assert "nested too deeply" in r.json()["detail"]
    r = api.client.post("/v1/events", headers=api.auth("ingest"), content=b"[" + deep + b"]")
    assert r.status_code == 400
    assert api.stored_ids() == []


def event_with(**fields: Any) -> dict[str, Any]:
    return {**connected("v-1", "victor"), **fields}


WRONG_EVENTS: list[tuple[Any, str]] = [
    ([], "not a JSON object"),
    ({**connected("d", "deep"), "ts": None, "extra": {"k": [None] * 10}}, "ts"),
    ("event", "not a JSON object"),
    (event_with(id=7), "id"),
    (event_with(id=""), "id"),
    (event_with(id="x" * 300), "id"),
    (event_with(id="nul\x00id"), "NUL"),
    (event_with(account="a\x00b"), "NUL"),
    (event_with(type="account.deleted"), "type"),
    (event_with(ts="2026-13-01T00:00:00Z"), "ts"),
    (event_with(ts="2026-03-01T10:00:00"), "time zone"),
    (event_with(ts="0001-01-01T00:00:00+14:00"), "years"),
    (event_with(ts=1767225600), "ts"),
    (event_with(ip=["192.0.2.1"]), "ip"),
    (event_with(asn=1 << 40), "asn"),
    (event_with(asn={"as": 1}), "asn"),
    ({"id": "m", "type": "message.sent", "ts": "2026-03-01T10:00:00Z", "message": "m",
      "sender": "s", "recipients": "r", "ip": "192.0.2.1", "attachments": []}, "recipients"),
    ({"id": "m", "type": "message.sent", "ts": "2026-03-01T10:00:00Z", "message": "m",
      "sender": "s", "recipients": ["r"], "ip": "192.0.2.1",
      "attachments": [{"sha256": "zz"}]}, "sha256"),
]


def test_wrong_types_are_refused_with_the_field_named(api: Api) -> None:
    for event, words in WRONG_EVENTS:
        gate = api.client.post("/v1/gate", headers=api.auth("ingest"), json=event)
        assert gate.status_code == 422, (event, gate.text)
        assert words in gate.json()["detail"], (words, gate.text)
    batch = api.client.post("/v1/events", headers=api.auth("ingest"),
                            json=[event for event, _ in WRONG_EVENTS])
    assert batch.status_code == 422
    refused = batch.json()["refused"]
    assert [r["index"] for r in refused] == list(range(len(WRONG_EVENTS)))
    for r, (_, words) in zip(refused, WRONG_EVENTS, strict=True):
        assert words in r["reason"], (words, r)
    assert api.stored_ids() == []


def test_other_bodies_and_parameters(api: Api) -> None:
    h = api.auth("admin")
    for body in (b"nope", b'{"reason": 5}', b'{"reason": "x", "more": 1}', b"[]"):
        r = api.client.post("/v1/bans/1/approve", headers=h, content=body)
        assert r.status_code == 422, (body, r.text)
    assert api.client.post("/v1/bans/0/approve", headers=h,
                           json={"reason": "x"}).status_code == 422
    assert api.client.post(f"/v1/bans/{1 << 40}/approve", headers=h,
                           json={"reason": "x"}).status_code == 422
    assert api.client.get("/v1/bans?status=eaten", headers=h).status_code == 422
    for body in (b"", b"not json", b'{"parties": [{"id": 1}]}', b"\xff"):
        r = api.client.post("/v1/registry", headers=h, content=body)
        assert r.status_code == 422, (body, r.text)
    assert api.client.get("/v1/events/%00", headers=h).status_code == 404
    assert api.client.get("/v1/events/" + "x" * 300, headers=h).status_code == 404
    assert api.client.get("/v1/violations?party=" + "p" * 200,
                          headers=h).status_code == 422


def test_bodies_over_the_caps(small: Api) -> None:
    h = small.auth("ingest")
    big = json.dumps([connected(f"b{i}", "x") | {"pad": "p" * 2000} for i in range(40)])
    assert len(big) > 64 << 10
    r = small.client.post("/v1/events", headers=h, content=big.encode())
    assert r.status_code == 413
    assert "larger than 65536" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:        # no Content-Length: counted as it arrives
        data = big.encode()
        for start in range(0, len(data), 4096):
            yield data[start:start + 4096]

    r = small.client.post("/v1/events", headers=h, content=chunks())
    assert r.status_code == 413
    six = [connected(f"c{i}", "x") for i in range(6)]
    r = small.client.post("/v1/events", headers=h, json=six)
    assert r.status_code == 413
    assert "more than 5 events" in r.json()["detail"]
    assert small.client.post("/v1/events", headers=h, json=six[:5]).status_code == 200
    assert sorted(small.stored_ids()) == [f"c{i}" for i in range(5)]


# -- split_array against msgspec ---------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 63), 1 << 63) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)


@given(st.lists(json_values, max_size=12), st.sampled_from(["", " ", "\n\t", "  \r\n"]))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_split_array_matches_msgspec(items: list[Any], space: str) -> None:
    body = ("[" + space + ("," + space).join(
        space + json.dumps(i) + space for i in items) + space + "]").encode()
    parts = split_array(body, 100)
    expected = msgspec.json.decode(body, type=list[msgspec.Raw])
    assert [p.encode() for p in parts] == [bytes(r) for r in expected]
    assert [msgspec.json.decode(p) for p in parts] == msgspec.json.decode(body)


@given(st.binary(max_size=200) | st.text(alphabet="[]{},:\" 1a\\", max_size=60).map(
    str.encode))
@settings(max_examples=300, deadline=None)
def test_split_array_never_fails_otherwise(body: bytes) -> None:
    try:
        parts = split_array(body, 50)
    except BodyError as exc:
        status = exc.status
        parts = None
    if parts is None:
        assert status in (400, 413, 422)
        return
    try:
        whole = msgspec.json.decode(body)
    except msgspec.DecodeError:   # the standard library accepts NaN and Infinity
        assert any(w in body for w in (b"NaN", b"Infinity"))
        return
    assert isinstance(whole, list)
    assert len(parts) == len(whole)


def test_values_the_databases_cannot_hold_are_refused(api: Api) -> None:
    nul_in_optional = {"id": "n1", "type": "call.ended", "ts": "2026-03-01T10:00:00Z",
                       "call": "c", "ip": "192.0.2.1\x00"}
    lone = b'[{"id": "\\ud800", "type": "call.ended"}]'
    r = api.client.post("/v1/events", headers=api.auth("ingest"), json=[nul_in_optional])
    assert r.status_code == 422
    assert "NUL" in r.json()["refused"][0]["reason"]
    r = api.client.post("/v1/events", headers=api.auth("ingest"), content=lone)
    assert r.status_code == 422
    assert r.json()["refused"][0]["id"] is None
    assert api.stored_ids() == []


# -- the byte budget across requests in flight --------------------------------------------
def test_bodies_in_flight_share_a_byte_budget() -> None:
    """Two bodies that fit the budget together are both held; a third that would pass it
    is answered 503 with Retry-After before any of it is read; once the first request is
    done its bytes are free again (also after an error in the application)."""
    import asyncio

    from spywall.platform.api_limits import BodyLimit

    async def scenario() -> None:
        release = asyncio.Event()
        seen: list[bytes] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            message = await receive()
            seen.append(message["body"])
            if scope["path"] == "/boom":
                raise RuntimeError("application failure")
            await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        limit = BodyLimit(app, max_bytes=1000, budget=1500)

        async def request(size: int, path: str = "/", declared: bool = True) -> list[Any]:
            sent: list[Any] = []
            body = b"x" * size
            chunks = [body[:size // 2], body[size // 2:]]

            async def receive() -> dict[str, Any]:
                chunk = chunks.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

            async def send(message: Any) -> None:
                sent.append(message)

            headers = [(b"content-length", str(size).encode())] if declared else []
            scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
            try:
                await limit(scope, receive, send)
            except RuntimeError:
                sent.append("error")
            return sent

        first = asyncio.create_task(request(800))
        second = asyncio.create_task(request(600, declared=False))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert limit.held == 1400
        third = await request(200)                 # 1400 + 200 > 1500
        assert third[0]["status"] == 503
        assert (b"retry-after", b"1") in third[0]["headers"]
        assert len(seen) == 2                      # the refused body was never read
        release.set()
        answers = await asyncio.gather(first, second)
        assert [a[0]["status"] for a in answers] == [200, 200]
        assert limit.held == 0
        assert await request(900, "/boom") == ["error"]
        assert limit.held == 0
        assert (await request(1001))[0]["status"] == 413   # the per-request cap is apart

    asyncio.run(scenario())
