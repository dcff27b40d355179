"""Who is asking, on every console request: a bearer token (scripts) or a signed session
cookie (browsers), then admin membership and, on a POST made with a cookie, the CSRF token.
Without either, pages redirect to sign-in and the API answers 401; a signed-in person who is
not an admin gets 403."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.console.members import Members
from bot.console.sessions import SESSION_COOKIE, CookieSigner

# Paths under /admin anyone may reach: the sign-in itself and the stylesheet.
OPEN_PREFIXES = ("/admin/auth/", "/admin/static/")
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Viewer:
    """The admin behind a request: a signed-in e-mail (with its CSRF token), or the token."""

    email: str | None  # None: the bearer token
    csrf: str = ""

    @property
    def name(self) -> str:
        """How reviews and audit rows name this admin."""
        return f"console:{self.email}" if self.email else "console:token"


VIEWER = web.RequestKey("lore.console.viewer", Viewer)


def token_matches(offered: str, token_sha256: str | None) -> bool:
    """Whether the SHA-256 of `offered` is `token_sha256`, compared in constant time."""
    if not token_sha256 or not offered:
        return False
    digest = hashlib.sha256(offered.encode()).hexdigest()
    return hmac.compare_digest(digest, token_sha256)


def viewer_of(request: web.Request) -> Viewer:
    """The admin `guard` let through for this request."""
    return request[VIEWER]


def guard(signer: CookieSigner, admins: Members, token_sha256: str | None) -> Middleware:
    """Middleware for the console sub-application (see the module docstring)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(OPEN_PREFIXES):
            return await handler(request)
        api = request.path.startswith("/admin/api/")
        authorization = request.headers.get("Authorization", "")
        if authorization:
            scheme, _, offered = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token_matches(offered.strip(), token_sha256):
                return _refused(401, "the bearer token is not the console's token (console.token_sha256)", api)
            request[VIEWER] = Viewer(email=None)
            return await handler(request)
        session = signer.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            if api:
                return _refused(401, "sign in at /admin/auth/login, or send Authorization: Bearer <token>", api)
            raise web.HTTPFound("/admin/auth/login?" + urlencode({"next": request.path_qs}))
        if not admins.include(session.email):
            return _refused(403, f"{session.email} is not a console admin (console.admins)", api)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            form = await request.post()
            offered = str(form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, ""))
            if not hmac.compare_digest(offered.encode(), session.csrf.encode()):
                return _refused(403, "the form's CSRF token is missing or wrong: reload the page and try again", api)
        request[VIEWER] = Viewer(email=session.email, csrf=session.csrf)
        return await handler(request)

    return check


def _refused(status: int, why: str, api: bool) -> web.Response:
    if api:
        return web.json_response({"error": why}, status=status)
    return web.Response(status=status, text=f"{status}: {why}", content_type="text/plain")
