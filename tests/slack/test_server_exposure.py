"""What `lore serve`'s HTTP server gives to callers it does not know (#14, smaller items):
bodies have a size cap and a read deadline, and /healthz tells strangers only its status.
Real sockets against the server Slack's tests run (any route would do)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.app import Services
from bot.server import create_web_app
from tests.slack.conftest import SlackRig

Start = Callable[..., Awaitable[SlackRig]]
HEALTH_TOKEN = "health-s3cret"


def with_server(stack: Services, **server: Any) -> Services:
    settings = stack.settings.model_copy(update={"server": stack.settings.server.model_copy(update=server)})
    return dataclasses.replace(stack, settings=settings)


async def raw_request(port: int, head: bytes, body: bytes, wait: float) -> bytes:
    """Send `head` and a partial `body`, then read whatever comes back within `wait` s."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        await writer.drain()
        return await asyncio.wait_for(reader.read(200), wait)
    except TimeoutError:
        return b""
    finally:
        writer.close()


async def test_a_body_that_trickles_in_too_slowly_gets_408(rig: SlackRig) -> None:
    """A slow-loris sender holds a connection for `server.body_read_seconds` (10 s), no more."""
    head = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"

    reply = await raw_request(rig.port, head, b'{"type": "', wait=15.0)

    assert reply.startswith(b"HTTP/1.1 408"), reply


async def test_a_body_declared_over_the_cap_gets_413_before_it_is_sent(rig: SlackRig) -> None:
    """`server.max_body_bytes` (1 MiB) is checked against Content-Length before reading."""
    head = (
        b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1073741824\r\n\r\n"
    )

    reply = await raw_request(rig.port, head, b"", wait=5.0)

    assert reply.startswith(b"HTTP/1.1 413"), reply


async def test_a_body_over_the_cap_without_a_length_gets_413(start_rig: Start, stack: Services) -> None:
    rig = await start_rig(with_server(stack, max_body_bytes=64 * 1024))

    async def chunks() -> Any:  # chunked transfer: no Content-Length to refuse up front
        for _ in range(20):
            yield b"x" * 8192

    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{rig.port}/slack/events", data=chunks()) as response:
            assert response.status == 413


async def healthz(port: int, headers: dict[str, str] | None = None, host: str = "127.0.0.1") -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{host}:{port}/healthz", headers=headers or {}) as response:
            assert response.status == 200
            return await response.json()


async def test_healthz_relayed_by_a_proxy_shows_only_the_status(rig: SlackRig) -> None:
    """A reverse proxy on this machine connects from loopback; what it relays is not local."""
    for relayed in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}, {"X-Real-IP": "203.0.113.9"}):
        assert await healthz(rig.port, relayed) == {"status": "ok"}
    assert "model" in await healthz(rig.port)  # straight from this machine: the details


async def test_only_the_right_health_token_unlocks_the_details(start_rig: Start, stack: Services) -> None:
    rig = await start_rig(with_server(stack, health_token=SecretStr(HEALTH_TOKEN)))
    proxied = {"X-Forwarded-For": "203.0.113.9"}

    assert await healthz(rig.port, {**proxied, "Authorization": "Bearer wrong"}) == {"status": "ok"}
    detailed = await healthz(rig.port, {**proxied, "Authorization": f"Bearer {HEALTH_TOKEN}"})
    assert detailed["index"]["documents"] > 0 and "model" in detailed


async def test_healthz_from_another_machine_shows_only_the_status(stack: Services) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.200", 9))  # picks the outward interface; sends nothing
        except OSError:
            pytest.skip("this machine has no address besides loopback to test from")
        outward = probe.getsockname()[0]
    runner = web.AppRunner(create_web_app(stack, []), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, outward, 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        body = await healthz(port, host=outward)
    finally:
        await runner.cleanup()

    assert body == {"status": "ok"}, json.dumps(body)
