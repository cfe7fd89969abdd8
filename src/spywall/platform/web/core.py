"""What every console page shares: templates (autoescaped), the session dependency, form
reading with CSRF checks and bounds, and the security headers on every ``/ui`` answer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData, UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spywall.platform import auth
from spywall.platform.api import Platform, actor
from spywall.platform.web.session import COOKIE, Session, WebSettings, check_csrf, read

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
HEADERS = [(b"content-security-policy", CSP.encode()),
           (b"x-content-type-options", b"nosniff"),
           (b"x-frame-options", b"DENY"),
           (b"referrer-policy", b"no-referrer"),
           (b"cross-origin-opener-policy", b"same-origin")]
MAX_FIELDS = 50
MAX_FILES = 1
MAX_PART = 1 << 20          # a text field
MAX_REASON = 2000
MAX_FIELD = 512             # an identifier value, a party id, a search term

templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(default=True, default_for_string=True),
                        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


class SecurityHeaders:
    """Pure ASGI middleware: the CSP and friends on every answer under ``/ui`` (it does
    not buffer, so the live stream flows)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/ui"):
            await self.app(scope, receive, send)
            return

        async def send_with(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {h[0] for h in HEADERS}
                headers = [h for h in message.get("headers", []) if h[0] not in names]
                headers += HEADERS
                if not any(h[0] == b"cache-control" for h in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with)


class SignIn(Exception):
    """No valid session: the handler sends the browser to the sign-in page."""


def settings_of(request: Request) -> WebSettings:
    got: WebSettings = request.app.state.web
    return got


def platform_of(request: Request) -> Platform:
    got: Platform = request.app.state.platform
    return got


def current(request: Request) -> Session:
    session = read(settings_of(request), platform_of(request).engine,
                   request.cookies.get(COOKIE))
    if session is None:
        raise SignIn
    return session


SessionDep = Annotated[Session, Depends(current)]


def who(session: Session) -> str:
    return actor(session.principal)


def need(session: Session, scope: str) -> None:
    if not session.principal.allows(scope):
        raise HTTPException(403, f"this key lacks the scope {scope}")


async def form(request: Request, session: Session) -> FormData:
    """The posted form, bounded, after its CSRF token was checked (403 otherwise)."""
    try:
        data = await request.form(max_files=MAX_FILES, max_fields=MAX_FIELDS,
                                  max_part_size=MAX_PART)
    except (ValueError, KeyError, AssertionError) as exc:
        raise HTTPException(400, "this form could not be read") from exc
    token = data.get("csrf")
    if not isinstance(token, str) or not check_csrf(session, token):
        raise HTTPException(403, "the form's CSRF token is missing or wrong; reload the page")
    return data


def text(data: FormData, name: str, limit: int = MAX_FIELD, required: bool = True) -> str:
    value = data.get(name)
    if isinstance(value, UploadFile) or value is None:
        value = ""
    value = value.strip()
    if required and not value:
        raise HTTPException(422, f"{name} is required")
    if len(value) > limit or "\x00" in value:
        raise HTTPException(422, f"{name} is longer than {limit} characters")
    return value


def render(request: Request, name: str, session: Session | None, status: int = 200,
           **context: Any) -> HTMLResponse:
    page = templates.get_template(name).render(
        session=session, csrf=session.csrf if session else "", path=request.url.path,
        htmx=settings_of(request).htmx, atlas=settings_of(request).atlas, **context)
    return HTMLResponse(page, status_code=status)


_NOTE = re.compile(r"[a-z0-9_ +.-]{1,160}")


def done_note(request: Request) -> str:
    """The note a redirect after a step carries (``?done=...``): shown only when it is
    the plain words and numbers the console itself writes."""
    note = request.query_params.get("done", "")
    return note if _NOTE.fullmatch(note) else ""


def see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def audit(request: Request, session: Session, action: str, detail: dict[str, Any]) -> None:
    with platform_of(request).engine.begin() as conn:
        auth.audit(conn, who(session), action, detail)
