"""The one HTTP server `lore serve` runs: each platform mounts its routes on it, `/healthz`
reports readiness, and shutdown waits for the answers still being written."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

Routes = Callable[[web.Application], None]


def is_loopback(host: str | None) -> bool:
    """Whether `host` (a name or an address, as in a URL or `--host`) is this machine only."""
    if not host:
        return False
    name = host.strip().strip("[]").casefold()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Workload:
    """Answers accepted but not yet delivered. Platforms acknowledge a message at once and do
    the work in a task spawned here, so the server can report queue depth and, on shutdown,
    finish every accepted answer instead of dropping it."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run `work` in the background and keep it until it ends."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    @property
    def depth(self) -> int:
        """How many answers are in progress or waiting for the model."""
        return len(self._tasks)

    async def drain(self, timeout: float) -> bool:
        """Wait until all work (including work spawned meanwhile) ends; False on timeout."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=left)
        return True

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Spawned work handles its own errors; reaching here is a bug worth a traceback.
            log.error("background work %s failed", task.get_name(), exc_info=task.exception())


# Typed by the annotation: `Services` (bot.app, a layer above) is imported for type checking only.
SERVICES: web.AppKey[Services] = web.AppKey("lore.services")
WORKLOAD = web.AppKey("lore.workload", Workload)


def create_web_app(services: Services, routes: Sequence[Routes], *, drain_seconds: float = 300.0) -> web.Application:
    """The aiohttp application: `/healthz` plus every platform's routes. On shutdown it waits
    up to `drain_seconds` for answers in flight (after the routes' own shutdown hooks ran,
    so Socket Mode stops taking new events first)."""
    limits = services.settings.server
    app = web.Application(
        client_max_size=limits.max_body_bytes,
        middlewares=[_body_within_limits(limits.max_body_bytes, limits.body_read_seconds)],
    )
    app[SERVICES] = services
    app[WORKLOAD] = Workload()
    app.router.add_get("/healthz", _healthz)
    for mount in routes:
        mount(app)

    async def drain(app: web.Application) -> None:
        workload = app[WORKLOAD]
        if workload.depth:
            log.info("waiting for %d answer(s) in flight", workload.depth)
        if not await workload.drain(drain_seconds):
            log.warning("stopped with %d answer(s) unfinished", workload.depth)

    app.on_shutdown.append(drain)
    return app


def _body_within_limits(max_bytes: int, read_seconds: float) -> Any:
    """Middleware: a declared body over `max_bytes` gets 413 before it is read; a body that
    does not arrive within `read_seconds` gets 408. Handlers then read it from memory."""

    @web.middleware
    async def read_body(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists:
            return await handler(request)
        if (request.content_length or 0) > max_bytes:
            return web.json_response({"error": f"the body is over {max_bytes} bytes"}, status=413)
        try:
            await asyncio.wait_for(request.read(), read_seconds)
        except TimeoutError:
            log.warning("%s %s: the body did not arrive in %.0f s", request.method, request.path, read_seconds)
            return web.json_response({"error": "the request body arrived too slowly"}, status=408)
        return await handler(request)

    return read_body


def _may_see_details(request: web.Request, token: str | None) -> bool:
    """Callers on this machine (not relayed by a proxy) and holders of the health token."""
    if token is not None:
        offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if offered and hmac.compare_digest(offered.encode(), token.encode()):
            return True
    relayed = any(name in request.headers for name in ("Forwarded", "X-Forwarded-For", "X-Real-IP"))
    return not relayed and is_loopback(request.remote)


async def _healthz(request: web.Request) -> web.Response:
    """Readiness; the details (model, index, queue) only for `_may_see_details` callers."""
    report, status = await _health(request)
    token = request.app[SERVICES].settings.server.health_token
    if _may_see_details(request, token.get_secret_value() if token else None):
        return web.json_response(report, status=status)
    # A filter over the full report, whatever it comes to hold: only its status goes out.
    return web.json_response({"status": report["status"]}, status=status)


async def _health(request: web.Request) -> tuple[dict[str, Any], int]:
    """The full readiness report and its HTTP status (503 when the index cannot be read)."""
    services = request.app[SERVICES]
    body: dict[str, Any] = {
        "status": "ok",
        "model": {
            # Loaded on first use: while answers are the excerpts, the weights are not needed.
            "loaded": getattr(services.model, "loaded", True),
            "name": services.model.name,
            "adapter": services.model.adapter,
            "writes": services.agent.model_writes(),
        },
        "queue_depth": request.app[WORKLOAD].depth,
    }
    try:
        status = await asyncio.to_thread(services.knowledge.status)
    except Exception as error:  # a health check reports failures, never raises
        log.warning("health check: index status failed: %s", error)
        body["status"] = "degraded"
        body["index"] = {"error": str(error)}
        return body, 503
    last = status.last_refresh_at
    body["index"] = {
        "documents": status.documents,
        "chunks": status.chunks,
        "last_refresh_at": last.isoformat() if last else None,
        # Files failing refresh after refresh (their last good version, if any, still answers).
        "failing_files": len(status.failing),
        "failing": [
            {"path": record.path, "reason": record.reason, "refreshes": record.refreshes} for record in status.failing
        ],
    }
    return body, 200


async def run_server(app: web.Application, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve `app` on host:port until `stop` is set, then stop accepting connections, let the
    shutdown hooks finish the work in flight, and return."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("listening on http://%s:%d (healthz at /healthz)", host, port)
    try:
        await stop.wait()
        log.info("stopping: no new requests; finishing answers in flight")
    finally:
        await runner.cleanup()
    log.info("stopped")
