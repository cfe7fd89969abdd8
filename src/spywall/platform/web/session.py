"""Sign-in, sessions and CSRF for the console.

A session is a cookie signed with ``itsdangerous`` (HMAC, server secret) that carries
the API key's id, a random session nonce and an expiry; nothing is stored server-side.
On every request the key id is looked up in ``api_keys``: a revoked or deleted key ends
its sessions at once. The CSRF token of a session is HMAC(secret, nonce): bound to that
session, never stored, compared in constant time. The sign-in form, which has no session
yet, is bound the same way to a short-lived pre-session cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeTimedSerializer

from spywall.platform import auth, db

COOKIE = "spywall_ui"
PRE_COOKIE = "spywall_ui_pre"
SECRET_ENV = "SPYWALL_UI_SECRET"  # noqa: S105 - the name of a variable
INSECURE_ENV = "SPYWALL_UI_INSECURE_COOKIE"   # "1": no Secure flag (plain-HTTP testing)
SESSION_SECONDS = 8 * 3600
PRE_SECONDS = 1800
CONSOLE_SCOPE = "analyst"


# The map's libraries and data, vendored from the npm registry at install time: d3 (the
# projection, the paths and the colour scale), topojson-client and world-atlas (Natural
# Earth's countries at 1:110m, ISO 3166 numeric ids).
ATLAS_FILES = ("d3.min.js", "topojson-client.min.js", "countries-110m.json")


@dataclass(frozen=True)
class WebSettings:
    """What the console is configured with (``mount`` builds it)."""

    secret: bytes
    secure_cookie: bool = True
    session_seconds: int = SESSION_SECONDS
    log_key: str | None = None           # signing key file for exports (else env)
    htmx: bool = False                   # the vendored htmx file is present
    atlas: bool = False                  # d3, topojson-client and world-atlas vendored
    serializer: URLSafeTimedSerializer = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "serializer",
                           URLSafeTimedSerializer(self.secret, salt="spywall-ui-session"))


def make_settings(secret: str | bytes | None, secure_cookie: bool | None,
                  log_key: str | None, static: Path) -> WebSettings:
    raw = secret if secret is not None else os.environ.get(SECRET_ENV)
    key = raw.encode() if isinstance(raw, str) else raw
    if key is None:
        key = secrets.token_bytes(32)   # sessions end when the process does
    if len(key) < 16:
        raise ValueError(f"{SECRET_ENV} must be at least 16 bytes")
    if secure_cookie is None:
        secure_cookie = os.environ.get(INSECURE_ENV) != "1"
    return WebSettings(secret=key, secure_cookie=secure_cookie, log_key=log_key,
                       htmx=(static / "vendor" / "htmx.min.js").is_file(),
                       atlas=all((static / "vendor" / name).is_file() for name in ATLAS_FILES))


@dataclass(frozen=True)
class Session:
    principal: auth.Principal
    nonce: str
    csrf: str
    expires: int


def _mac(settings: WebSettings, purpose: str, nonce: str) -> str:
    return hmac.new(settings.secret, f"{purpose}:{nonce}".encode(),
                    hashlib.sha256).hexdigest()


def issue(settings: WebSettings, principal: auth.Principal) -> str:
    """A new session cookie value for ``principal``."""
    expires = int(time.time()) + settings.session_seconds
    return settings.serializer.dumps({"k": principal.id, "n": secrets.token_urlsafe(18),
                                      "e": expires})


def _principal(conn: sa.Connection, key_id: str) -> auth.Principal | None:
    k = db.api_keys
    row = conn.execute(sa.select(k).where(k.c.id == key_id)).first()
    if row is None or row.revoked_us is not None:
        return None
    return auth.Principal(id=row.id, name=row.name, scopes=frozenset(row.scopes))


def read(settings: WebSettings, engine: sa.Engine, cookie: str | None) -> Session | None:
    """The session a cookie carries, or None (missing, forged, expired, key revoked)."""
    if not cookie or len(cookie) > 1024:
        return None
    try:
        data: Any = settings.serializer.loads(cookie, max_age=settings.session_seconds)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    key_id, nonce, expires = data.get("k"), data.get("n"), data.get("e")
    if not (isinstance(key_id, str) and isinstance(nonce, str) and isinstance(expires, int)):
        return None
    if expires <= time.time() or len(key_id) > 32:
        return None
    with engine.connect() as conn:
        principal = _principal(conn, key_id)
    if principal is None or not principal.allows(CONSOLE_SCOPE):
        return None
    return Session(principal, nonce, _mac(settings, "csrf", nonce), expires)


def pre_session(settings: WebSettings, cookie: str | None) -> tuple[str, str]:
    """The sign-in form's (pre-session cookie, CSRF token); a valid cookie is kept."""
    nonce = None
    if cookie and len(cookie) <= 256:
        try:
            got = settings.serializer.loads(cookie, max_age=PRE_SECONDS, salt="spywall-pre")
        except BadSignature:
            got = None
        nonce = got if isinstance(got, str) else None
    if nonce is None:
        nonce = secrets.token_urlsafe(18)
        cookie = settings.serializer.dumps(nonce, salt="spywall-pre")
    assert cookie is not None
    return cookie, _mac(settings, "login", nonce)


def check_login_csrf(settings: WebSettings, cookie: str | None, token: str) -> bool:
    if not cookie or len(cookie) > 256 or not token:
        return False
    try:
        nonce = settings.serializer.loads(cookie, max_age=PRE_SECONDS, salt="spywall-pre")
    except BadSignature:
        return False
    return isinstance(nonce, str) and hmac.compare_digest(_mac(settings, "login", nonce),
                                                          token)


def check_csrf(session: Session, token: str) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf, token)
