"""The platform over HTTP (FastAPI): the face of ``spywall serve``. It holds no logic of
its own: events go through ``Intake`` (the same gate and storage as ``ingest``), views
come from ``views``, review steps from ``enforce``, the registry from ``service``.

Routes (contract in ``reference/platform.md``; OpenAPI at ``/openapi.json``). Every
route but ``/healthz`` needs ``Authorization: Bearer KEY``: 401 without a valid key, 403
for a key without the route's scope (``admin`` implies every scope).

- ``POST /v1/events`` (ingest): a JSON array of at most 10,000 events. The answer comes
  once the accepted events are committed: ``{"accepted": [id...], "refused": [{"index",
  "id", "reason"}...]}``. Valid events are stored even when others in the array are
  refused; ``accepted`` lists every valid event now stored, re-sent ids included. Status
  200 when at least one event was accepted (or the array was empty), 422 when every
  event was refused.
- ``GET /v1/events/{id}`` (ingest or analyst): the event as sent, plus ``verdict``,
  ``reasons`` and ``party``; 404 when unknown.
- ``POST /v1/gate`` (ingest): one event -> ``{"verdict", "reasons", "party"}``, recorded
  like an ingested event; an id already stored gets its stored decision back. Its path
  is kept short, as the inline gate's: no per-request dependencies (``DirectRoute``),
  one hop into the gate's own thread and connection, where the key, the body and the
  decision are checked and stored in one transaction. An event with payloads has them
  scanned first, by the scan workers (``PayloadScanner``) from a pool thread, so that
  decisions on other events do not queue behind it.
- ``GET /v1/campaigns``, ``/v1/violations``, ``/v1/notifications``, ``/v1/bans``
  (analyst); ``POST /v1/bans/{id}/{approve|reject|apply|revert}`` with ``{"reason"}``
  (analyst): 404 unknown ban, 409 when the step does not apply to the ban's status.
- ``POST /v1/registry`` (admin): merge a registry JSON or STIX 2.1 bundle;
  ``GET /v1/registry`` (admin): the registry as stored.

Every analyst and admin request is written to the audit log (who, what). Bodies over 16
MiB get 413; a body that is not JSON 400; a body of the wrong shape 422; a database that
does not answer 503. After events are stored, the analysis runs in a background task
(serialised, coalesced when requests come faster than it runs, and started at most once
an ``analysis_interval``: ``spywall serve`` uses one second); the gate reloads its
state when the registry or the review queue moved (in this process or another: one query
per request) and after an analysis that changed something.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec
import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from spywall import __version__
from spywall.errors import InputError
from spywall.platform import api_models as m
from spywall.platform import auth, db, enforce, views
from spywall.platform.api_limits import BodyError, BodyLimit, split_array
from spywall.platform.contract import MAX_ID_CHARS, Event, EventError, parse_line
from spywall.platform.gate import Scanned
from spywall.platform.intake import Intake, Outcome
from spywall.platform.media import PayloadScanner
from spywall.platform.prepared import Prepared
from spywall.platform.worker import Worker


@dataclass(frozen=True)
class Settings:
    media_root: Path
    max_body: int = m.MAX_BODY_BYTES
    max_events: int = m.MAX_EVENTS
    analysis_interval: float = 0.0   # seconds between the starts of background analyses


# The state token (the newest registry change and the newest review step: the gate
# reloads when it moves, in this process or another) and a key's row with it, in one
# query. Built once: building them cost more than running them.
_TOKEN_COLUMNS = (
    sa.select(sa.func.max(db.registry_changes.c.seq)).scalar_subquery().label("token_0"),
    sa.select(sa.func.max(db.ban_steps.c.seq)).scalar_subquery().label("token_1"))
_TOKEN = sa.select(*_TOKEN_COLUMNS)
_KEY_AND_TOKEN = Prepared(sa.select(db.api_keys, *_TOKEN_COLUMNS).where(
    db.api_keys.c.id == sa.bindparam("id")))


class Platform:
    """What one app serves from: the engine, the gate (one writer at a time in this
    process; ``POST /v1/gate`` runs in a thread of its own) and the analysis runner."""

    def __init__(self, engine: sa.Engine, settings: Settings,
                 scanner: PayloadScanner | None = None) -> None:
        self.engine, self.settings = engine, settings
        self.intake = Intake(engine, settings.media_root, source="http", scanner=scanner)
        self._gate_thread = Worker("gate")
        self._scanning = asyncio.Semaphore(self.intake.gate.scanner.pool.size)
        self._gate_conn: sa.Connection | None = None   # held by the gate's thread
        self._intake_lock = threading.Lock()
        self._analysis_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending = False
        self._last_start = -float("inf")
        self._token: tuple[Any, ...] | None = None

    def submit(self, events: list[Event], source: str,
               token: tuple[Any, ...] | None = None) -> list[Outcome]:
        """Gate and store ``events``. ``token`` is the state token read with the request's
        key (one query for both); without it, it is read here."""
        scanned = self.intake.scan_payloads(events)   # before the lock: see gate()
        with self._intake_lock:
            if token is None:
                token = self._state_token()
            if token != self._token:     # the registry or a review moved (any process)
                self.intake.refresh(force=True)
                self._token = token
            return self.intake.submit(events, source, scanned=scanned)

    def _state_token(self) -> tuple[Any, ...]:
        with self.engine.connect() as conn:
            return tuple(conn.execute(_TOKEN).one())

    def authorize(self, key: str, conn: sa.Connection | None = None
                  ) -> tuple[auth.Principal | None, tuple[Any, ...] | None]:
        """The key's principal and the state token, in one query (through ``conn``, the
        caller's transaction, when given)."""
        ident = auth.key_id(key)
        if ident is None:
            return None, None
        if conn is None:
            with self.engine.connect() as own:
                return self.authorize(key, own)
        row = _KEY_AND_TOKEN.first(conn, {"id": ident})
        if row is None:
            return None, None
        return auth.check(row, key), (row.token_0, row.token_1)

    async def gate(self, key: str, body: bytes) -> Outcome:
        """``POST /v1/gate`` after its ``Authorization`` header was found: one hop into
        the gate's own thread (its work waits on the database, never the event loop).
        An event that may carry payloads (the body names attachments or a capture) has
        them scanned first, in a thread of the pool (at most as many at once as the
        scanner has workers; the other requests wait here, holding no thread): the gate's
        thread decides one event at a time, and no decision waits on another's payload."""
        scanned = None
        if any(word in body for word in _PAYLOAD_WORDS):
            async with self._scanning:
                scanned = await run_in_threadpool(self._scan_payloads, key, body)
        return await self._gate_thread.run(self._gate, key, body, scanned)

    def _scan_payloads(self, key: str, body: bytes) -> Scanned | None:
        """The payload verdicts of a gate request's event, for a key allowed to ask
        (None for any other request: ``_gate`` answers it as it would)."""
        principal, _ = self.authorize(key)
        try:
            admit(principal, GATE_SCOPES)
            event = _gate_event(body)
        except HTTPException:
            return None
        return self.intake.scan_payloads([event])[0]

    def _gate(self, key: str, body: bytes, scanned: Scanned | None = None) -> Outcome:
        """The key, the body and the decision in one transaction: 401 or 403 for the
        key (checked first, as every route does), then 400 or 422 for the body, then
        the decision, stored (or the stored one, for an id already stored)."""
        with self._intake_lock:
            for attempt in (1, 2):
                if self._gate_conn is None:
                    self._gate_conn = self.engine.connect()
                conn = self._gate_conn
                try:
                    with conn.begin():
                        return self._decide(conn, key, body, scanned)
                except sa.exc.DBAPIError as exc:
                    self._gate_conn = None      # the next try starts on a fresh one
                    conn.close()
                    # A connection the server dropped while it was held is tried once
                    # more on a fresh one (as the pool's pre-ping would), which is safe:
                    # an id whose decision was committed gets it back.
                    if attempt == 2 or not exc.connection_invalidated:
                        raise
        raise AssertionError("unreachable")

    def _decide(self, conn: sa.Connection, key: str, body: bytes,
                scanned: Scanned | None) -> Outcome:
        principal, token = self.authorize(key, conn)
        admit(principal, GATE_SCOPES)
        event = _gate_event(body)
        if token != self._token:     # the registry or a review moved (any process)
            self.intake.refresh(force=True, conn=conn)
            self._token = token
        [outcome] = self.intake.submit([event], "gate", conn, [scanned])
        return outcome

    def close(self) -> None:
        """Give the gate's connection back to the pool and stop the payload scanner's
        workers (the app's shut-down)."""
        self.intake.close()     # first: a decision waiting on a stuck worker ends now
        with self._intake_lock:
            if self._gate_conn is not None:
                self._gate_conn.close()
                self._gate_conn = None

    def reload(self) -> None:
        with self._intake_lock:
            self._token = self._state_token()
            self.intake.refresh(force=True)

    def analysis_waiting(self) -> bool:
        """A run is waiting to start: it will see everything committed until it does."""
        return self._pending

    def analyse(self) -> None:
        """Run the analysis over everything stored. A call made while another waits to
        start returns at once: that run starts after this call's data was committed.
        Runs start at least ``analysis_interval`` apart: under a stream of requests the
        analysis (which takes the write lock) runs once an interval, not once a request,
        so the gate's own writes rarely wait for it. The gate's decisions never wait
        for an analysis: registry identifiers and bans apply at once."""
        with self._pending_lock:
            if self._pending:
                return
            self._pending = True
        with self._analysis_lock:
            wait = self._last_start + self.settings.analysis_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            with self._pending_lock:
                self._pending = False
            self._last_start = time.monotonic()
            from spywall.platform.service import run_analysis

            result = run_analysis(self.engine)
        if result.proposals or result.derived or result.attributed or result.violations:
            self.reload()


# -- dependencies ---------------------------------------------------------------------
async def get_platform(request: Request) -> Platform:
    """(async: FastAPI runs a plain ``def`` dependency in a worker thread, a hop per
    request for an attribute read)"""
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]
_bearer = HTTPBearer(auto_error=False, description="an API key (spywall platform keys add)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class Authorize:
    """A key with one of ``scopes`` (admin implies all): 401 without a valid key, 403
    when the key lacks the scope."""

    def __init__(self, *scopes: str) -> None:
        self.scopes = scopes

    def __call__(self, request: Request, platform: PlatformDep,
                 creds: Credentials) -> auth.Principal:
        principal, request.state.state_token = platform.authorize(bearer(creds))
        return admit(principal, self.scopes)


def bearer(creds: HTTPAuthorizationCredentials | None) -> str:
    """The key of an ``Authorization: Bearer KEY`` header (401 without one)."""
    if creds is None:
        raise HTTPException(401, "missing Authorization: Bearer KEY",
                            headers={"WWW-Authenticate": "Bearer"})
    return creds.credentials


def admit(principal: auth.Principal | None, scopes: tuple[str, ...]) -> auth.Principal:
    """401 for no principal (unknown, malformed or revoked key), 403 when it has none of
    ``scopes``."""
    if principal is None:
        raise HTTPException(401, "unknown or revoked API key",
                            headers={"WWW-Authenticate": "Bearer"})
    if not any(principal.allows(s) for s in scopes):
        raise HTTPException(403, f"this key lacks the scope {' or '.join(scopes)}")
    return principal


Ingest = Annotated[auth.Principal, Depends(Authorize("ingest"))]
Reader = Annotated[auth.Principal, Depends(Authorize("ingest", "analyst"))]
Analyst = Annotated[auth.Principal, Depends(Authorize("analyst"))]
Admin = Annotated[auth.Principal, Depends(Authorize("admin"))]


async def raw_body(request: Request) -> bytes:
    """The request body (``BodyLimit`` has already bounded it)."""
    return await request.body()


Body = Annotated[bytes, Depends(raw_body)]


def actor(principal: auth.Principal) -> str:
    """Who did it, as the audit log and review steps keep it: key name and key id."""
    return f"{principal.name[:100]}#{principal.id}"


def _audit(platform: Platform, principal: auth.Principal, action: str,
           detail: dict[str, Any]) -> None:
    with platform.engine.begin() as conn:
        auth.audit(conn, actor(principal), action, detail)


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    words = {400: "not JSON", 401: "no valid API key", 403: "the key lacks the scope",
             404: "not found", 409: "the step does not apply", 413: "body too large",
             422: "a body or parameter of the wrong shape",
             503: "the database does not answer"}
    return {c: {"model": m.Problem, "description": words[c]} for c in codes}


_AUTH = _problems(401, 403, 422, 503)   # 422: a parameter of the wrong shape
_BODY = _problems(400, 413, 422)
router = APIRouter()
_log = logging.getLogger("spywall.platform.api")


@router.get("/healthz", response_model=m.Health, responses=_problems(503), tags=["meta"])
def healthz(platform: PlatformDep) -> dict[str, str]:
    with platform.engine.connect() as conn:
        conn.execute(sa.select(1))
    return {"status": "ok"}


def _refused(index: int, text: str, reason: str) -> m.Refused:
    try:   # msgspec, as the contract: no lone surrogates that could not be encoded back
        obj = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):
        obj = None
    ident = obj.get("id") if isinstance(obj, dict) else None
    ok = isinstance(ident, str) and 0 < len(ident) <= MAX_ID_CHARS
    return m.Refused(index=index, id=ident if ok else None, reason=reason)


def _parse(text: str) -> Event:
    try:
        return parse_line(text)
    except UnicodeEncodeError:
        raise EventError("not valid Unicode (a lone surrogate)") from None


@router.post("/v1/events", response_model=m.Accepted, tags=["events"],
             responses={**_AUTH, **_BODY, 422: {"model": m.EventsRefused,
                                                "description": "every event was refused"}},
             openapi_extra=m.body(m.EVENTS_SCHEMA, "a JSON array of events"))
def post_events(request: Request, platform: PlatformDep, _: Ingest, body: Body,
                background: BackgroundTasks) -> JSONResponse:
    items = split_array(body, platform.settings.max_events)
    events: list[Event] = []
    refused: list[m.Refused] = []
    for index, text in enumerate(items):
        try:
            events.append(_parse(text))
        except EventError as exc:
            refused.append(_refused(index, text, str(exc)))
    outcomes = platform.submit(events, "http", request.state.state_token) if events else []
    if events:
        background.add_task(_analyse_soon, platform)
    answer = {"accepted": [o.id for o in outcomes],
              "refused": [r.model_dump() for r in refused]}
    if refused and not outcomes:
        return JSONResponse({"detail": "every event was refused", **answer}, status_code=422)
    return JSONResponse(answer)


@router.get("/v1/events/{event_id:path}", response_model=m.StoredEvent, tags=["events"],
            responses={**_AUTH, **_problems(404)})
def get_event(platform: PlatformDep, principal: Reader, event_id: str) -> JSONResponse:
    found = None
    if 0 < len(event_id) <= MAX_ID_CHARS and "\x00" not in event_id:
        with platform.engine.connect() as conn:
            found = views.event(conn, event_id)
        if principal.allows("analyst"):          # a person looking, not a producer
            _audit(platform, principal, "view-event", {"event": event_id})
    if found is None:
        raise HTTPException(404, "no event with this id")
    return JSONResponse(found)


class DirectRoute(APIRoute):
    """A route whose endpoint takes the request and answers it whole: FastAPI documents
    it (its dependencies, body and answers stand in ``/openapi.json`` as for any route)
    but runs no dependency per request: the endpoint reads what it needs itself. For the
    inline gate, where FastAPI's per-request work cost as much as the decision."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint


async def post_gate(request: Request) -> Response:
    # One hop into the gate's thread: the key, the body and the decision there, in one
    # transaction. The header is read by the same HTTPBearer the route documents.
    platform: Platform = request.app.state.platform
    outcome = await platform.gate(bearer(await _bearer(request)), await request.body())
    return Response(_json({"verdict": outcome.verdict, "reasons": outcome.reasons,
                           "party": outcome.party}), media_type="application/json",
                    background=None if platform.analysis_waiting()   # it covers these
                    else BackgroundTask(_analyse_soon, platform))


router.add_api_route("/v1/gate", post_gate, methods=["POST"], route_class_override=DirectRoute,
                     dependencies=[Depends(_bearer)], response_model=m.GateAnswer,
                     tags=["events"], responses={**_AUTH, **_BODY},
                     openapi_extra=m.body(m.EVENT_SCHEMA, "one event"))
GATE_SCOPES = ("ingest",)
# Words of a body that may carry payloads: a false hit costs a scan pass that finds none;
# a body that spells them otherwise (JSON escapes) has its payloads scanned in the gate's
# thread, as ``Gate.decide`` does when nobody scanned them first.
_PAYLOAD_WORDS = (b'"attachments"', b'"call.media"')
_json = msgspec.json.Encoder().encode


def _gate_event(body: bytes) -> Event:
    try:
        return _parse(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise HTTPException(400, "the body is not UTF-8") from None
    except EventError as exc:
        raise HTTPException(422, str(exc)) from None


async def _analyse_soon(platform: Platform) -> None:
    """After a request's events are committed: nothing to do when a run is already
    waiting to start (it covers them), else the analysis in a worker thread."""
    if platform.analysis_waiting():
        return
    await run_in_threadpool(platform.analyse)


def _view(platform: Platform, principal: auth.Principal, name: str, **kw: Any) -> JSONResponse:
    with platform.engine.connect() as conn:
        data = getattr(views, name)(conn, **kw)
    _audit(platform, principal, f"view-{name}", {k: v for k, v in kw.items() if v})
    return JSONResponse(data)


@router.get("/v1/campaigns", response_model=m.Campaigns, responses=_AUTH, tags=["analyst"])
def get_campaigns(platform: PlatformDep, principal: Analyst) -> JSONResponse:
    return _view(platform, principal, "campaigns")


@router.get("/v1/violations", response_model=m.Violations, responses=_AUTH, tags=["analyst"])
def get_violations(platform: PlatformDep, principal: Analyst,
                   party: Annotated[str | None, Query(max_length=128)] = None) -> JSONResponse:
    return _view(platform, principal, "violations", party=party)


@router.get("/v1/notifications", response_model=m.Notifications, responses=_AUTH,
            tags=["analyst"])
def get_notifications(platform: PlatformDep, principal: Analyst) -> JSONResponse:
    return _view(platform, principal, "notifications")


@router.get("/v1/bans", response_model=m.Bans, responses=_AUTH, tags=["analyst"])
def get_bans(platform: PlatformDep, principal: Analyst,
             status: m.BanStatus | None = None) -> JSONResponse:
    return _view(platform, principal, "bans", status=status)


@router.post("/v1/bans/{ban_id}/{step}", response_model=m.StepDone, tags=["analyst"],
             responses={**_AUTH, **_problems(400, 404, 409, 413)})
def post_ban_step(platform: PlatformDep, principal: Analyst,
                  ban_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)], step: m.Step,
                  body: m.StepIn) -> m.StepDone:
    with platform.engine.begin() as conn:
        if conn.execute(sa.select(db.bans.c.id).where(db.bans.c.id == ban_id)).first() is None:
            raise HTTPException(404, f"no ban {ban_id}")
        try:
            status = enforce.step(conn, ban_id, step, actor(principal), body.reason)
        except InputError as exc:
            raise HTTPException(409, str(exc)) from None
    platform.reload()
    return m.StepDone(ban=ban_id, status=status)


@router.post("/v1/registry", response_model=m.Imported, tags=["admin"],
             responses={**_AUTH, **_BODY},
             openapi_extra=m.body(m.REGISTRY_SCHEMA, "registry JSON or a STIX 2.1 bundle"))
def post_registry(platform: PlatformDep, principal: Admin, body: Body,
                  reason: Annotated[str, Query(min_length=1, max_length=m.MAX_REASON_CHARS)]
                  = "registry import over HTTP") -> m.Imported:
    from spywall.platform.service import import_file

    counts = import_file(platform.engine, body, actor(principal), reason)
    platform.reload()
    _audit(platform, principal, "registry-import", {"reason": reason, **counts})
    return m.Imported(**counts)


@router.get("/v1/registry", tags=["admin"], responses={
    **_AUTH, 200: {"description": "the registry as stored (the contract's JSON)",
                   "content": {"application/json": {"schema": m.REGISTRY_SCHEMA}}}})
def get_registry(platform: PlatformDep, principal: Admin) -> Response:
    from spywall.platform.registry import dump_json
    from spywall.platform.registry_store import load_registry

    with platform.engine.connect() as conn:
        data = dump_json(load_registry(conn))
    _audit(platform, principal, "registry-export", {})
    return Response(data, media_type="application/json")


# -- errors, mapped once ---------------------------------------------------------------
def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


async def _on_body(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BodyError)
    return _problem(exc.status, str(exc))


async def _on_input(_: Request, exc: Exception) -> JSONResponse:
    return _problem(422, str(exc)[:2000])


async def _on_data(_: Request, exc: Exception) -> JSONResponse:
    return _problem(422, "the database refused a value of this request")


async def _on_database(_: Request, exc: Exception) -> JSONResponse:
    _log.warning("database error answered with 503: %s", str(exc).splitlines()[0][:300])
    return _problem(503, "the database does not answer; try again")


def create_app(engine: sa.Engine, media_root: Path, *, max_body: int = m.MAX_BODY_BYTES,
               max_events: int = m.MAX_EVENTS, analysis_interval: float = 0.0,
               scanner: PayloadScanner | None = None) -> FastAPI:
    """The HTTP face over ``engine``; relative media paths resolve under ``media_root``;
    background analyses start at least ``analysis_interval`` seconds apart; payloads are
    scanned by ``scanner`` (default: a ``PayloadScanner`` of the app's own, stopped with
    the app)."""
    platform = Platform(engine, Settings(media_root, max_body, max_events, analysis_interval),
                        scanner)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        platform.close()

    app = FastAPI(title="spywall platform", version=__version__, lifespan=lifespan,
                  description=(__doc__ or "").split("\n\n")[0])
    app.state.platform = platform
    app.include_router(router)
    app.add_exception_handler(BodyError, _on_body)
    app.add_exception_handler(InputError, _on_input)
    app.add_exception_handler(sa.exc.DataError, _on_data)
    app.add_exception_handler(sa.exc.OperationalError, _on_database)
    app.add_middleware(BodyLimit, max_bytes=max_body)
    return app
