"""The deployment's moving parts run for real (#18): nginx with deploy/nginx/lore.conf (its
upstream pointed at loopback) in front of two real `lore serve --no-jobs` replicas, each
talking to its own loopback Slack Web API; signed Slack events sent through the proxy are
accepted (signature headers and body arrive untouched) and spread over both replicas. The
Dockerfile's HEALTHCHECK command runs against a real `lore serve`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.deployment_files import NGINX_CONF, NginxConfig, dockerfile_instructions
from tests.support.lore_processes import LoreProcess, free_port
from tests.support.slack_api import BOT_TOKEN, SIGNING_SECRET, MockSlackApi, SlackSender, mention

pytestmark = pytest.mark.slow


@dataclass
class Replica:
    lore: LoreProcess
    slack_port: int  # where its SLACK_API_URL points (the mock Slack is started per test)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Replica]]:
    """Two `lore serve --no-jobs` replicas (no index: they answer with the fallback text)."""
    root = tmp_path_factory.mktemp("replicas")
    started = []
    for n in range(2):
        slack_port = free_port()
        environment = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": f"http://127.0.0.1:{slack_port}/api/",
            "LORE_AGENT__GENERATE": "never",
        }
        lore = LoreProcess.serve(root / f"replica-{n}", root / "absent.toml", environment, "--no-jobs")
        started.append(Replica(lore, slack_port))
    try:
        for replica in started:
            replica.lore.wait_healthy()
        yield started
    finally:
        for replica in started:
            replica.lore.stop()


def nginx_config(listen: int, upstreams: list[int], folder: Path) -> Path:
    """deploy/nginx/lore.conf with its upstream servers and listen port moved to loopback,
    inside the minimal main context nginx needs to run unprivileged."""
    text = NGINX_CONF.read_text()
    servers = re.findall(r"^\s*server\s+(\S+:\d+)", text, flags=re.MULTILINE)
    assert len(servers) == len(upstreams), servers
    for server, port in zip(servers, upstreams, strict=True):
        text = text.replace(f"server {server}", f"server 127.0.0.1:{port}", 1)
    (listen_directive,) = NginxConfig.parse(text).all("listen")
    text = text.replace(f"listen {listen_directive.args[0]};", f"listen 127.0.0.1:{listen};")
    temp = {name: folder / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    main = (
        f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} info;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"  access_log {folder / 'access.log'};\n"
        f"  client_body_temp_path {temp['client_body']};\n  proxy_temp_path {temp['proxy']};\n"
        f"  fastcgi_temp_path {temp['fastcgi']};\n  uwsgi_temp_path {temp['uwsgi']};\n"
        f"  scgi_temp_path {temp['scgi']};\n"
        f"{text}\n}}\n"
    )
    path = folder / "nginx.conf"
    path.write_text(main)
    return path


@dataclass
class Proxy:
    port: int
    process: subprocess.Popen[bytes]
    folder: Path


@pytest.fixture
def proxy(replicas: list[Replica], tmp_path: Path) -> Iterator[Proxy]:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed here (apt-get install nginx-light)")
    port = free_port()
    config = nginx_config(port, [replica.lore.port or 0 for replica in replicas], tmp_path)
    check = subprocess.run([nginx, "-t", "-c", str(config), "-p", str(tmp_path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [nginx, "-c", str(config), "-p", str(tmp_path), "-g", "daemon off;"], stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "error.log").read_text()
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        yield Proxy(port, process, tmp_path)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def slack_apis(replicas: list[Replica]) -> AsyncIterator[list[MockSlackApi]]:
    """Each replica's Slack, on the port its SLACK_API_URL names."""
    apis = [await MockSlackApi().start(port=replica.slack_port) for replica in replicas]
    yield apis
    for api in apis:
        await api.stop()


async def test_signed_slack_events_pass_the_proxy_untouched_and_reach_both_replicas(
    proxy: Proxy, slack_apis: list[MockSlackApi]
) -> None:
    sender = SlackSender(f"http://127.0.0.1:{proxy.port}/slack/events", slack_apis[0])
    try:
        channel = "CPROXY01"
        events = [mention(f"How many days of paid time off? ({n})", f"UPROXY{n:04d}", channel) for n in range(4)]
        replies = [await sender.event(event) for event in events]
        assert [reply.status for reply in replies] == [200] * 4, [r.body for r in replies]

        def answered(api: MockSlackApi) -> set[str]:
            return {m.thread_ts for m in api.messages.values() if m.channel == channel and m.thread_ts}

        deadline = time.monotonic() + 60
        while sum(len(answered(api)) for api in slack_apis) < 4:
            assert time.monotonic() < deadline, [api.summary() for api in slack_apis]
            await asyncio.sleep(0.1)
        # Round-robin: each replica answered two of the four questions.
        assert sorted(len(answered(api)) for api in slack_apis) == [2, 2]
        assert set().union(*(answered(api) for api in slack_apis)) == {event["ts"] for event in events}

        # A forged signature is refused through the proxy as it would be directly.
        forged = await sender.post(b'{"type":"event_callback"}', "application/json", signature="v0=" + "0" * 64)
        assert forged.status == 401
    finally:
        await sender.close()


def test_healthz_through_the_proxy_shows_only_the_status(proxy: Proxy, replicas: list[Replica]) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{proxy.port}/healthz", timeout=10) as response:
        assert json.loads(response.read()) == {"status": "ok"}
    with urllib.request.urlopen(f"{replicas[0].lore.url}/healthz", timeout=10) as response:
        assert "index" in json.loads(response.read()), "a loopback caller not relayed sees the details"


def health_check_command(port: int) -> list[str]:
    """The Dockerfile's HEALTHCHECK command, aimed at `port` instead of the image's."""
    instructions = dockerfile_instructions()
    command = next(i for i in instructions if i.keyword == "HEALTHCHECK").exec_form()
    served = next(i for i in reversed(instructions) if i.keyword == "CMD").exec_form()
    image_port = served[served.index("--port") + 1]
    assert f"127.0.0.1:{image_port}/" in command[-1]
    return [
        sys.executable if command[0] == "python" else command[0],
        *command[1:-1],
        command[-1].replace(f"127.0.0.1:{image_port}/", f"127.0.0.1:{port}/"),
    ]


def test_the_image_health_check_passes_on_a_running_server_and_fails_without_one(
    replicas: list[Replica],
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
    ok = subprocess.run(health_check_command(replicas[0].lore.port or 0), env=env, capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    nobody = subprocess.run(health_check_command(free_port()), env=env, capture_output=True, timeout=30)
    assert nobody.returncode != 0
