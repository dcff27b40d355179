"""The console's routes, mounted by `lore serve` as a sub-application at /admin: sign-in and
sign-out, each page as HTML and as JSON under /admin/api/, and the review actions."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any, NoReturn
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler
from jinja2 import Environment, PackageLoader, select_autoescape

from bot.adapter_registry import adapter_registry
from bot.app import Services
from bot.console import customization, pages, permissions_check
from bot.console.background import BackgroundAction, Retraining, refresh_action, retrain_action
from bot.console.gaps import GapGroups
from bot.console.guard import CSRF_FIELD, guard, viewer_of
from bot.console.lookups import SourceLookups
from bot.console.members import Members
from bot.console.oidc import OpenIDClient, SignInError
from bot.console.pages import Console, Jobs
from bot.console.sessions import LOGIN_COOKIE, SESSION_COOKIE, CookieSigner, session_secret
from bot.server import Routes
from bot.store.answer_views import AnswerViews
from knowledge.errors import LoreError

log = logging.getLogger(__name__)

NAVIGATION = (
    ("overview", "Overview"),
    ("questions", "Questions"),
    ("gaps", "Gaps"),
    ("review", "Feedback review"),
    ("customization", "Customization"),
    ("sources", "Sources"),
    ("actions", "Actions"),
)
SECURITY_HEADERS = {
    # Nothing runs or loads from elsewhere: one stylesheet of ours, inline SVG charts.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def console_routes(
    services: Services, lookups: SourceLookups, jobs: Jobs = list, retraining: Retraining | None = None
) -> Routes:
    """The mount for `create_web_app`: the console at /admin when `console.enabled`.
    `retraining`: the job "retrain now" runs (None: no such button)."""

    def mount(app: web.Application) -> None:
        app.add_subapp("/admin", console_app(services, lookups, jobs, retraining))

    return mount


def console_app(
    services: Services, lookups: SourceLookups, jobs: Jobs = list, retraining: Retraining | None = None
) -> web.Application:
    """The console as an aiohttp sub-application (its paths start /admin once mounted)."""
    settings = services.settings.console
    secret = session_secret(
        settings.session_secret.get_secret_value() if settings.session_secret else None, services.settings.home
    )
    signer = CookieSigner(secret, settings.session_hours * 3600)
    principals = services.access.principals
    console = Console(
        services=services,
        admins=Members(settings.admins, principals),
        private_viewers=Members(settings.private_answers_viewers, principals),
        views=AnswerViews(services.database),
        jobs=jobs,
        gaps=GapGroups(services.knowledge.embedder),
        refresh=refresh_action(services.knowledge),
        retrain=retrain_action(retraining, services.settings.home) if retraining is not None else None,
        lookups=lookups,
    )
    oidc = (
        OpenIDClient(
            settings.issuer,
            settings.client_id,
            settings.client_secret.get_secret_value(),
            settings.public_url.rstrip("/") + "/admin/auth/callback",
        )
        if settings.issuer
        else None
    )
    views = _Views(console, signer, oidc, secure=settings.public_url.startswith("https://"))
    app = web.Application(middlewares=[_security_headers, guard(signer, console.admins, settings.token_sha256)])
    app.router.add_get("", views.home)
    app.router.add_get("/", views.home)
    app.router.add_get("/static/console.css", _stylesheet)
    app.router.add_get("/auth/login", views.login)
    app.router.add_get("/auth/callback", views.callback)
    app.router.add_get("/auth/signed-out", _signed_out)
    app.router.add_post("/logout", views.logout)
    for name, handler in (
        ("overview", views.overview),
        ("questions", views.questions),
        ("gaps", views.gaps),
        ("review", views.review),
        ("sources", views.sources),
        ("actions", views.actions),
        ("customization", views.customization),
    ):
        app.router.add_get(f"/{name}", _page(views, name, handler))
        app.router.add_get(f"/api/{name}", _api(handler))
    app.router.add_get("/questions/{answer_id}", _page(views, "question", views.question))
    app.router.add_get("/api/questions/{answer_id}", _api(views.question))
    app.router.add_post("/review/{feedback_id}", views.decide_page)
    app.router.add_post("/api/review/{feedback_id}", views.decide_api)
    app.router.add_post("/sources", views.sources_check)
    app.router.add_post("/customization/{action:promote|rollback}", views.customize_page)
    app.router.add_post("/api/customization/{action:promote|rollback}", views.customize_api)
    app.router.add_post("/actions/{action:refresh|retrain}", views.action_page)
    app.router.add_post("/api/actions/{action:refresh|retrain}", views.action_api)
    app.router.add_get("/api/sources/explain", views.explain_api)
    app.router.add_get("/api/sources/who", views.who_api)
    app.cleanup_ctx.append(_warm_gaps(console))
    return app


def _back_to(page: str, outcome: str, done: bool) -> NoReturn:
    """After a form: back to its page, which shows what was done or why not."""
    raise web.HTTPSeeOther(f"/admin/{page}?" + ("done=" if done else "error=") + _quote(outcome))


def _decided(outcome: str, done: bool) -> web.Response:
    """The API's answer to a decision: 200 when done, 409 (with the reason) when refused."""
    return web.json_response({"ok": done, "message": outcome}, status=200 if done else 409)


def _warm_gaps(console: Console) -> Callable[[web.Application], AsyncIterator[None]]:
    """Embed the Gaps page's questions while the server starts, so its first load does not
    (the vectors are kept; later loads embed only new questions)."""

    async def warm(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(asyncio.to_thread(pages.gaps, console, pages.utc_now()))
        yield
        try:
            await task
        except Exception as error:  # only a warm-up: the page computes what it needs anyway
            log.warning("console: preparing the Gaps page failed: %s", error)

    return warm


PageData = Callable[[web.Request], Awaitable[dict[str, Any]]]


def _page(views: _Views, template: str, data: PageData) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return views.render(request, template, await data(request))

    return handler


def _api(data: PageData) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = await data(request)
        body.pop("questions_chart", None)  # the chart's markup; its numbers are in the JSON
        return web.json_response(body)

    return handler


class _Views:
    """The handlers, sharing the console, the cookie signer and the identity provider."""

    def __init__(self, console: Console, signer: CookieSigner, oidc: OpenIDClient | None, secure: bool) -> None:
        self.console = console
        self.signer = signer
        self.oidc = oidc
        self.secure = secure
        self.templates = Environment(
            loader=PackageLoader("bot.console", "templates"), autoescape=select_autoescape(default=True)
        )

    def render(self, request: web.Request, template: str, data: dict[str, Any], status: int = 200) -> web.Response:
        viewer = viewer_of(request)
        page = self.templates.get_template(f"{template}.html").render(
            data=data, viewer=viewer, csrf_field=CSRF_FIELD, navigation=NAVIGATION, current=template
        )
        return web.Response(text=page, content_type="text/html", status=status)

    # -- signing in and out ------------------------------------------------------------

    async def home(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/admin/overview")

    async def login(self, request: web.Request) -> web.StreamResponse:
        if self.oidc is None:
            return _plain(
                503, "Sign-in is not configured: set console.issuer, client_id and client_secret, or use the token."
            )
        try:
            attempt = await self.oidc.start()
        except SignInError as error:
            log.warning("console sign-in: %s", error)
            return _plain(502, f"Sign-in is unavailable: {error}")
        response = _redirect(attempt.url)
        values = {"state": attempt.state, "nonce": attempt.nonce, "verifier": attempt.verifier}
        values["next"] = _local_path(request.query.get("next", ""))
        response.set_cookie(LOGIN_COOKIE, self.signer.login(values), **self._cookie_flags(max_age=600))
        return response

    async def callback(self, request: web.Request) -> web.StreamResponse:
        pending = self.signer.pending_login(request.cookies.get(LOGIN_COOKIE))
        state = request.query.get("state", "")
        if pending is None or not hmac.compare_digest(state.encode(), pending["state"].encode()):
            return _plain(401, "This sign-in was not started here or took too long: start again at /admin.")
        if "code" not in request.query or self.oidc is None:
            return _plain(401, f"The identity provider did not sign you in: {request.query.get('error', 'no code')}.")
        try:
            claims = await self.oidc.finish(request.query["code"], pending["nonce"], pending["verifier"])
        except SignInError as error:
            log.warning("console sign-in refused: %s", error)
            return _plain(401, f"Sign-in refused: {error}")
        email = str(claims.get("email") or "").strip().casefold()
        if "@" not in email:
            return _plain(401, "The identity provider gave no e-mail address (ask for the email scope).")
        _session, cookie = self.signer.new_session(email)
        response = _redirect(pending.get("next") or "/admin/overview")
        response.set_cookie(SESSION_COOKIE, cookie, **self._cookie_flags(max_age=int(self.signer.session_seconds)))
        response.del_cookie(LOGIN_COOKIE, path="/admin")
        log.info("console: %s signed in", email)
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        response = _redirect("/admin/auth/signed-out")
        response.del_cookie(SESSION_COOKIE, path="/admin")
        return response

    def _cookie_flags(self, max_age: int) -> dict[str, Any]:
        return {"max_age": max_age, "path": "/admin", "httponly": True, "samesite": "Lax", "secure": self.secure}

    # -- pages -------------------------------------------------------------------------

    async def overview(self, request: web.Request) -> dict[str, Any]:
        return await asyncio.to_thread(pages.overview, self.console, pages.utc_now())

    async def questions(self, request: web.Request) -> dict[str, Any]:
        email = viewer_of(request).email
        return await asyncio.to_thread(pages.questions, self.console, dict(request.query), email)

    async def question(self, request: web.Request) -> dict[str, Any]:
        viewer = viewer_of(request)
        answer_id = request.match_info["answer_id"]
        entry = await asyncio.to_thread(pages.question, self.console, answer_id, viewer.email, viewer.name)
        if entry is None:
            raise web.HTTPNotFound(text=f"no answer {answer_id} you may read")
        return entry

    async def gaps(self, request: web.Request) -> dict[str, Any]:
        return await asyncio.to_thread(pages.gaps, self.console, pages.utc_now())

    async def review(self, request: web.Request) -> dict[str, Any]:
        viewer = viewer_of(request)
        data = await asyncio.to_thread(pages.review, self.console, viewer.email, viewer.name)
        return {**data, "done": request.query.get("done", ""), "error": request.query.get("error", "")}

    async def sources(self, request: web.Request) -> dict[str, Any]:
        return await asyncio.to_thread(pages.sources, self.console, pages.utc_now())

    async def customization(self, request: web.Request) -> dict[str, Any]:
        services = self.console.services
        registry = adapter_registry(services.settings, services.database)
        data = await asyncio.to_thread(customization.customization, services.settings, registry)
        return {**data, "done": request.query.get("done", ""), "error": request.query.get("error", "")}

    async def actions(self, request: web.Request) -> dict[str, Any]:
        return pages.actions(self.console)

    # -- actions -----------------------------------------------------------------------

    async def _customize(self, request: web.Request) -> tuple[str, bool]:
        services = self.console.services
        registry = adapter_registry(services.settings, services.database)
        form = await request.post()
        try:
            if request.match_info["action"] == "promote":
                name = str(form.get("name", ""))
                outcome = await asyncio.to_thread(customization.promote_adapter, services.settings, registry, name)
            else:
                outcome = await asyncio.to_thread(customization.roll_back, registry)
        except LoreError as error:  # PromotionError, or an unknown adapter name
            return str(error), False
        log.info("console: %s by %s", outcome, viewer_of(request).name)
        return outcome, True

    async def customize_page(self, request: web.Request) -> web.StreamResponse:
        _back_to("customization", *await self._customize(request))

    async def customize_api(self, request: web.Request) -> web.StreamResponse:
        return _decided(*await self._customize(request))

    def _action(self, request: web.Request) -> BackgroundAction:
        chosen = self.console.refresh if request.match_info["action"] == "refresh" else self.console.retrain
        if chosen is None:
            raise web.HTTPNotFound(text="retraining is not available in this process")
        return chosen

    async def action_page(self, request: web.Request) -> web.StreamResponse:
        self._action(request).start(viewer_of(request).name)  # already running: the page shows it
        raise web.HTTPSeeOther("/admin/actions")

    async def action_api(self, request: web.Request) -> web.StreamResponse:
        action = self._action(request)
        if not action.start(viewer_of(request).name):
            return web.json_response({"started": False, "message": f"a {action.name} is already running"}, status=409)
        return web.json_response({"started": True, **action.status()}, status=202)

    async def _decide(self, request: web.Request) -> tuple[str, bool]:
        form = await request.post()
        try:
            feedback_id = int(request.match_info["feedback_id"])
            outcome = await asyncio.to_thread(
                pages.decide,
                self.console.services.feedback,
                self.console,
                feedback_id,
                str(form.get("action", "")),
                str(form.get("text", "")),
                viewer_of(request).name,
            )
        except ValueError as error:
            return str(error), False
        log.info("console: %s by %s", outcome, viewer_of(request).name)
        return outcome, True

    async def decide_page(self, request: web.Request) -> web.StreamResponse:
        _back_to("review", *await self._decide(request))

    async def decide_api(self, request: web.Request) -> web.StreamResponse:
        return _decided(*await self._decide(request))

    async def sources_check(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        path, source, email = (str(form.get(key, "")).strip() for key in ("path", "source", "email"))
        data = await self.sources(request)
        services = self.console.services
        if email:
            data["who"] = await asyncio.to_thread(
                permissions_check.who_can_see, services, self.console.lookups, path, source or None, email
            )
        else:
            data["explain"] = await asyncio.to_thread(
                permissions_check.explain, services, self.console.lookups, path, source or None
            )
        return self.render(request, "sources", data)

    async def explain_api(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        services = self.console.services
        result = await asyncio.to_thread(
            permissions_check.explain, services, self.console.lookups, query.get("path", ""), query.get("source")
        )
        return web.json_response(result, status=400 if "error" in result else 200)

    async def who_api(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        result = await asyncio.to_thread(
            permissions_check.who_can_see,
            self.console.services,
            self.console.lookups,
            query.get("path", ""),
            query.get("source"),
            query.get("email", ""),
        )
        return web.json_response(result, status=400 if "error" in result else 200)


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as error:
        error.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response


async def _stylesheet(_request: web.Request) -> web.StreamResponse:
    css = resources.files("bot.console").joinpath("static/console.css").read_text(encoding="utf-8")
    return web.Response(text=css, content_type="text/css")


async def _signed_out(_request: web.Request) -> web.StreamResponse:
    return _plain(200, "You are signed out of the Lore console. Sign in again at /admin.")


def _redirect(location: str) -> web.Response:
    """A 302 whose cookies the handler still sets (aiohttp's HTTPFound is raised, not returned)."""
    return web.Response(status=302, headers={"Location": location})


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


def _local_path(target: str) -> str:
    """Only a path of the console itself is a place to return to after sign-in (never
    another site: `//evil.example` or `/\\evil.example` are refused)."""
    if target.startswith("/admin") and not target.startswith(("//", "/\\")) and "\\" not in target:
        return target
    return "/admin/overview"


def _quote(text: str) -> str:
    return quote(text, safe="")
