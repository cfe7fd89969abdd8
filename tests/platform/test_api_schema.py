"""Schemathesis against ``/openapi.json``, in process (ASGI), on SQLite and PostgreSQL:
requests generated from the document (valid and invalid ones, bounded and deterministic:
fifteen per operation and mode, derandomised) never get a 5xx, every
status and body they get is the one the document promises, and a request whose key is
dropped is refused (the ``ignored_auth`` check)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from api_support import Api, make_api
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, ignored_auth]


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    made = make_api(db_url, tmp_path / "media")
    yield made
    made.engine.dispose()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_document(api: Api, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    headers = api.auth("admin")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 11
    nothing_to_break = []
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=15, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except Unsatisfiable:   # negative mode: an operation with no input to make invalid
            nothing_to_break.append(operation.label)
    assert set(nothing_to_break) <= {"GET /healthz", "GET /v1/campaigns",
                                     "GET /v1/notifications", "GET /v1/registry"}


def test_document_covers_the_contract(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    routes = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert routes >= {
        ("POST", "/v1/events"), ("GET", "/v1/events/{event_id}"), ("POST", "/v1/gate"),
        ("GET", "/v1/campaigns"), ("GET", "/v1/violations"), ("GET", "/v1/notifications"),
        ("GET", "/v1/bans"), ("POST", "/v1/bans/{ban_id}/{step}"), ("POST", "/v1/registry"),
        ("GET", "/v1/registry"), ("GET", "/healthz")}
    events = doc["paths"]["/v1/events"]["post"]
    kinds = {v["title"] for v in
             events["requestBody"]["content"]["application/json"]["schema"]["items"]["oneOf"]}
    assert kinds == {"account.registered", "account.connected", "call.offered",
                     "call.answered", "call.ended", "call.media", "message.sent"}
    gate = doc["paths"]["/v1/gate"]["post"]     # its short path is documented the same
    one = gate["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert {v["title"] for v in one} == kinds
    assert gate["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/GateAnswer"}
    assert {"400", "413", "422", "503"} <= set(gate["responses"])
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, ops in doc["paths"].items():
        for op in ops.values():
            if path != "/healthz":
                assert op["security"] == [{"HTTPBearer": []}], path
                assert {"401", "403"} <= set(op["responses"]), path
