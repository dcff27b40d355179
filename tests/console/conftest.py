"""Fixtures for the console tests: the real services (indexed sample handbook, tiny model,
SQLite) with a directory file, the local identity provider, and `lore serve`'s web app with
the console mounted, on loopback ports; plus a helper that signs a browser-like client in."""

from __future__ import annotations

import dataclasses
import hashlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.app import Services
from bot.cli.serve_command import console_lookups
from bot.console.routes import console_routes
from bot.server import create_web_app
from bot.settings import ConsoleSettings
from tests.console.identity_provider import CLIENT_ID, CLIENT_SECRET, IdentityProvider
from tests.console.seed import Seeded, seed
from tests.support.stack import build_test_services

ADMIN_TOKEN = "console-admin-token-for-tests"
DIRECTORY = """\
users:
  helpdesk@example.com: [it]
  bob@example.com: [engineering]
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def base_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    folder = tmp_path_factory.mktemp("console-stack")
    directory = folder / "directory.yaml"
    directory.write_text(DIRECTORY, encoding="utf-8")
    services = build_test_services(folder, directory_file=directory)
    yield services
    services.close()


@pytest.fixture(scope="session")
def seeded(base_services: Services) -> Seeded:
    return seed(base_services.database)


@dataclass
class ConsoleRig:
    """The bot with its console at `url`, and the identity provider it trusts."""

    url: str
    idp: IdentityProvider
    services: Services


def console_settings(idp: IdentityProvider, public_url: str, **changes: object) -> ConsoleSettings:
    values: dict[str, object] = {
        "admins": ["it@example.com", "group:it"],
        "private_answers_viewers": ["it@example.com"],
        "token_sha256": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(),
        "issuer": idp.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "public_url": public_url,
        **changes,
    }
    return ConsoleSettings.model_validate(values)


@pytest.fixture
async def idp() -> AsyncIterator[IdentityProvider]:
    provider = IdentityProvider()
    server = TestServer(provider.app(), host="127.0.0.1", port=free_port())
    await server.start_server()
    provider.issuer = str(server.make_url("")).rstrip("/")
    yield provider
    await server.close()


async def serve_console(services: Services) -> TestServer:
    """`lore serve`'s web app with only the console mounted, on the port of its public URL."""
    port = int(services.settings.console.public_url.rsplit(":", 1)[1])
    app = create_web_app(services, [console_routes(services, console_lookups())])
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    return server


def with_console(services: Services, settings: ConsoleSettings) -> Services:
    return dataclasses.replace(services, settings=services.settings.model_copy(update={"console": settings}))


@pytest.fixture
async def rig(base_services: Services, seeded: Seeded, idp: IdentityProvider) -> AsyncIterator[ConsoleRig]:
    url = f"http://127.0.0.1:{free_port()}"
    services = with_console(base_services, console_settings(idp, url))
    server = await serve_console(services)
    yield ConsoleRig(url, idp, services)
    await server.close()


def browser() -> aiohttp.ClientSession:
    """A client that keeps cookies like a browser (loopback addresses included) and lets
    the tests look at each redirect."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def sign_in(session: aiohttp.ClientSession, rig: ConsoleRig, user: str, then: str = "/admin/overview") -> int:
    """Walk the sign-in as a browser does (console → provider → callback) as `user`; the
    status of the callback's answer (302 when signed in)."""
    rig.idp.user = user
    async with session.get(rig.url + then, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        login = response.headers["Location"]
    async with session.get(rig.url + login, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        authorize = response.headers["Location"]
    async with session.get(authorize, allow_redirects=False) as response:
        assert response.status == 302
        callback = response.headers["Location"]
    async with session.get(callback, allow_redirects=False) as response:
        return response.status
