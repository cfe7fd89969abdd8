"""The analyst's console: server-rendered pages under ``/ui/`` on the platform's app.

``mount(app)`` adds the pages, the live stream, the static files and the security
headers to an app made by ``spywall.platform.api.create_app``. The console signs in with
the same API keys as the HTTP API (the analyst scope; the registry page needs admin) and
keeps the session in a signed cookie (``session``). Pages work as plain HTML forms; when
``static/vendor/htmx.min.js`` is present (vendored at install time) the review queue
updates in place through htmx. No inline script or style anywhere: the CSP forbids them.

Settings: ``SPYWALL_UI_SECRET`` (the cookie signing secret; random per process when
unset, so sessions end with the process), ``SPYWALL_UI_INSECURE_COOKIE=1`` (drop the
Secure flag, for plain-HTTP use on a workstation), ``SPYWALL_LOG_KEY`` or ``log_key``
(the log signing key an evidence export signs its checkpoint with).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from spywall.platform.web import campaigns, evidence_page, live, registry_page, review, signin
from spywall.platform.web.core import HERE, SecurityHeaders, SignIn, render, see_other
from spywall.platform.web.session import make_settings

ROUTERS = (signin.router, live.router, campaigns.router, review.router,
           registry_page.router, evidence_page.router)


async def _on_sign_in(request: Request, exc: Exception) -> Response:
    return see_other("/ui/login")


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not request.url.path.startswith("/ui/") or request.url.path.startswith("/ui/static/"):
        return await http_exception_handler(request, exc)
    return render(request, "error.html", None, status=exc.status_code,
                  status_code=exc.status_code, detail=str(exc.detail))


def mount(app: FastAPI, *, secret: str | bytes | None = None,
          secure_cookie: bool | None = None, log_key: str | None = None) -> None:
    """Add the console to ``app`` (see the module docstring for the settings)."""
    static = HERE / "static"
    mounted = getattr(app.state, "web", None) is not None
    app.state.web = make_settings(secret, secure_cookie, log_key, static)
    if mounted:      # a second call only changes the settings
        return
    for router in ROUTERS:
        app.include_router(router, include_in_schema=False)
    app.mount("/ui/static", StaticFiles(directory=static), name="ui-static")
    app.add_exception_handler(SignIn, _on_sign_in)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_middleware(SecurityHeaders)


__all__: list[Any] = ["mount"]
