"""The sign-in page (an API key with the analyst scope becomes a session cookie) and
sign-out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from spywall.platform import auth
from spywall.platform.web.core import (
    SessionDep,
    form,
    platform_of,
    render,
    see_other,
    settings_of,
)
from spywall.platform.web.session import (
    CONSOLE_SCOPE,
    COOKIE,
    PRE_COOKIE,
    PRE_SECONDS,
    check_login_csrf,
    issue,
    pre_session,
    read,
)

router = APIRouter()


def _login_page(request: Request, error: str = "", status: int = 200) -> Response:
    settings = settings_of(request)
    cookie, token = pre_session(settings, request.cookies.get(PRE_COOKIE))
    page = render(request, "login.html", None, status=status, login_csrf=token, error=error)
    page.set_cookie(PRE_COOKIE, cookie, max_age=PRE_SECONDS, path="/ui", httponly=True,
                    samesite="strict", secure=settings.secure_cookie)
    return page


@router.get("/ui/login")
def login_form(request: Request) -> Response:
    settings = settings_of(request)
    if read(settings, platform_of(request).engine, request.cookies.get(COOKIE)):
        return see_other("/ui/")
    return _login_page(request)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    settings = settings_of(request)
    data = await request.form(max_files=0, max_fields=5, max_part_size=4096)
    key, token = data.get("key"), data.get("csrf")
    if not isinstance(token, str) or not check_login_csrf(
            settings, request.cookies.get(PRE_COOKIE), token):
        return _login_page(request, "The form expired or was not sent by this page; "
                                    "try again.", 403)
    principal = None
    if isinstance(key, str) and 0 < len(key.strip()) <= 200:
        with platform_of(request).engine.connect() as conn:
            principal = auth.verify(conn, key.strip())
    if principal is None:
        return _login_page(request, "Unknown or revoked API key.", 401)
    if not principal.allows(CONSOLE_SCOPE):
        return _login_page(request, f"This key lacks the {CONSOLE_SCOPE} scope.", 403)
    with platform_of(request).engine.begin() as conn:
        auth.audit(conn, f"{principal.name[:100]}#{principal.id}", "ui-sign-in", {})
    answer = see_other("/ui/")
    answer.set_cookie(COOKIE, issue(settings, principal), max_age=settings.session_seconds,
                      path="/ui", httponly=True, samesite="strict",
                      secure=settings.secure_cookie)
    answer.delete_cookie(PRE_COOKIE, path="/ui")
    return answer


@router.post("/ui/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    await form(request, session)
    answer = see_other("/ui/login")
    answer.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict",
                         secure=settings_of(request).secure_cookie)
    return answer
