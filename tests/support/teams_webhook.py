"""A Teams channel's incoming webhook on loopback, for tests: records what is posted to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# A Teams webhook URL is a credential: it must never reach a log line.
WEBHOOK_SECRET = "IncomingWebhook/0123456789abcdef"


@dataclass
class Webhook:
    """A Teams incoming webhook on loopback: records what is posted to it."""

    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)


@asynccontextmanager
async def teams_webhook(status: int = 200) -> AsyncIterator[Webhook]:
    """A webhook answering `status` to every post, at a URL that ends in WEBHOOK_SECRET."""

    async def receive(request: web.Request) -> web.Response:
        webhook.posts.append(await request.json())
        return web.Response(text="1", status=status)  # what Teams answers

    app = web.Application()
    app.router.add_post("/webhookb2/{path:.*}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    webhook = Webhook(f"http://127.0.0.1:{port}/webhookb2/{WEBHOOK_SECRET}")
    try:
        yield webhook
    finally:
        await runner.cleanup()
