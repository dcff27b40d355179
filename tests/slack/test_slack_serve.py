"""`lore serve`'s web server: /healthz, and stopping without losing accepted answers — in
process, and as a real `lore serve` process receiving SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from bot.app import Services
from bot.platforms.slack.rendering import ACTION_HELPFUL
from bot.platforms.slack.routes import slack_routes
from bot.server import WORKLOAD, create_web_app, run_server
from tests.slack.conftest import PROGRESS_INTERVAL, SlackRig, fresh_id
from tests.slack.slack_doubles import PuppetModel
from tests.support.slack_api import (
    BOT_TOKEN,
    SIGNING_SECRET,
    MockSlackApi,
    SlackSender,
    mention,
)
from tests.support.tiny_model import build_tiny_model


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def has_buttons(api: MockSlackApi, channel: str, thread_ts: str) -> bool:
    return any(ACTION_HELPFUL in json.dumps(m.blocks) for m in api.thread(channel, thread_ts))


async def test_healthz_reports_index_model_and_queue(rig: SlackRig) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{rig.port}/healthz") as response:
            body = await response.json()
    assert response.status == 200
    status = rig.services.knowledge.status()
    assert body["status"] == "ok"
    assert body["index"]["documents"] == status.documents > 0
    assert body["index"]["chunks"] == status.chunks
    assert body["index"]["last_refresh_at"] == status.last_refresh_at.isoformat()
    model = rig.services.model
    assert body["model"] == {"loaded": model.loaded, "name": model.name, "adapter": None, "writes": False}
    assert body["queue_depth"] == 0


async def test_queue_depth_counts_answers_in_flight(
    start_rig: Callable[..., Awaitable[SlackRig]],
    puppet_stack: Services,
    puppet: PuppetModel,
) -> None:
    rig = await start_rig(services=puppet_stack)
    puppet.delay = 0.05
    channel = fresh_id("C")
    events = [mention("When is the Beacon on-call handoff?", fresh_id("U"), channel) for _ in range(3)]
    await asyncio.gather(*(rig.sender.event(event) for event in events))

    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{rig.port}/healthz") as response:
            body = await response.json()

    assert body["queue_depth"] == rig.app[WORKLOAD].depth > 0
    puppet.reset()  # let the rest finish quickly


async def test_stopping_finishes_answers_in_flight_and_refuses_new_connections(
    puppet_stack: Services,
    puppet: PuppetModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dataclasses import replace

    from bot.settings import SlackSettings

    caplog.set_level(logging.INFO, logger="bot.server")
    api = await MockSlackApi().start()
    slack = SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=api.base_url)
    services = replace(puppet_stack, settings=puppet_stack.settings.model_copy(update={"slack": slack}))
    app = create_web_app(services, [slack_routes(services, PROGRESS_INTERVAL)])
    port, stop = free_port(), asyncio.Event()
    server = asyncio.create_task(run_server(app, "127.0.0.1", port, stop))
    sender = SlackSender(f"http://127.0.0.1:{port}/slack/events", api)
    try:
        await api.wait_until(lambda: _listening(port), timeout=10)
        puppet.delay = 0.05
        channel = fresh_id("C")
        event = mention("How many days of paid time off do employees get per year?", fresh_id("U"), channel)
        assert (await sender.event(event)).status == 200
        await api.wait_until(lambda: api.calls_to("chat.postMessage"))  # placeholder is up

        stop.set()
        await api.wait_until(lambda: not _listening(port), timeout=10)
        assert not server.done(), "the server waits for the answer in flight"
        await asyncio.wait_for(server, timeout=120)

        assert has_buttons(api, channel, event["ts"]), "the accepted answer was delivered"
        assert "waiting for 1 answer(s) in flight" in caplog.text
    finally:
        stop.set()
        await sender.close()
        await api.stop()
    api.assert_clean()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_lore_serve_exits_cleanly_on_sigterm_after_finishing_answers(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "time-off.md").write_text(
        "# Time off\n\nFull-time employees get 27 days of paid time off per year.\n"
        "Request time off in the Anchor HR system at least two weeks ahead.\n",
        encoding="utf-8",
    )
    (docs / "on-call.md").write_text(
        "# On call\n\nThe Beacon on-call handoff is every Monday at 10:00 CET in #beacon.\n",
        encoding="utf-8",
    )
    api = await MockSlackApi().start()
    port = free_port()
    env = {
        **os.environ,
        "LORE_HOME": str(tmp_path / "home"),
        "LORE_CONFIG": str(tmp_path / "absent.toml"),
        "LORE_SOURCES": json.dumps([{"name": "docs", "path": str(docs), "permissions": "file-modes"}]),
        "LORE_MODEL__BASE_MODEL": str(build_tiny_model(tmp_path / "tiny")),
        "LORE_MODEL__MAX_NEW_TOKENS": "12",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": api.base_url,
    }
    for variable in ("SLACK_APP_TOKEN", "LORE_DATABASE_URL", "MICROSOFT_APP_ID"):
        env.pop(variable, None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from bot.cli.main import cli; cli()",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sender = SlackSender(f"http://127.0.0.1:{port}/slack/events", api)
    try:
        health = await _wait_for_index(port, process)
        # A model never measured does not write, and nothing loads its weights.
        assert health["model"]["writes"] is False and health["model"]["loaded"] is False
        assert health["index"]["documents"] == 2

        channel = fresh_id("C")
        event = mention("How many days of paid time off do I get?", fresh_id("U"), channel)
        api.slow_down("chat.update", 1.5)  # keep the answer in flight when SIGTERM arrives
        assert (await sender.event(event)).status == 200
        await api.wait_until(lambda: api.calls_to("chat.postMessage"), timeout=60)
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 120)
        output = process.stdout.read() if process.stdout else ""

        assert code == 0, output
        assert has_buttons(api, channel, event["ts"]), output
        answer_lines = [line for line in output.splitlines() if "slack answer id=" in line]
        assert len(answer_lines) == 1 and "27 days" not in answer_lines[0], "ids, not text"
        assert "stopped" in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        await sender.close()
        await api.stop()
    api.assert_clean()


async def _wait_for_index(port: int, process: subprocess.Popen[str]) -> dict:
    """/healthz once the first refresh has indexed the docs (the process starts cold)."""
    deadline = time.monotonic() + 240
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"lore serve exited: {process.stdout.read()}")
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    body = await response.json()
                    if body.get("index", {}).get("documents"):
                        return body
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise AssertionError("lore serve did not become healthy in time")
