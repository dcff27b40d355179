"""docker-compose.yml (#18), read as Compose would with .env.example as its .env (there is no
Docker here): PostgreSQL and a Chroma server with volumes and health checks, two `lore serve
--no-jobs` replicas behind nginx, one `lore worker` that alone sees the documents."""

from __future__ import annotations

import re
import tomllib
from typing import Any

from sqlalchemy.engine import make_url

from bot.settings import ServerSettings
from tests.deploy.deployment_files import (
    NGINX_CONF,
    ROOT,
    NginxConfig,
    compose,
    compose_command,
    compose_environment,
)


def services() -> dict[str, Any]:
    return dict(compose()["services"])


def lore_services(role: str) -> dict[str, dict[str, Any]]:
    """The services running `lore <role>`."""
    return {
        name: service
        for name, service in services().items()
        if service.get("image", "").startswith("lore") and compose_command(service)[:2] == ["lore", role]
    }


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Container path -> (source, read-only)."""
    result = {}
    for volume in service.get("volumes", []):
        source, target, *options = volume.split(":")
        result[target] = (source, "ro" in options)
    return result


def test_postgresql_and_chroma_have_volumes_and_health_checks() -> None:
    postgres = services()["postgres"]
    assert postgres["image"].split(":")[1].startswith("15")
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert "/var/lib/postgresql/data" in mounts(postgres)
    chroma = services()["chroma"]
    assert compose_command(chroma)[:2] == ["chroma", "run"]
    path = compose_command(chroma)[compose_command(chroma).index("--path") + 1]
    assert path in mounts(chroma), "the Chroma data must be on a volume"
    assert "/api/v2/heartbeat" in " ".join(chroma["healthcheck"]["test"])
    named = set(compose()["volumes"])
    for service in (postgres, chroma):
        assert all(source in named for source, _ in mounts(service).values())


def test_two_answering_replicas_without_jobs_and_one_worker() -> None:
    replicas = lore_services("serve")
    assert len(replicas) == 2
    for service in replicas.values():
        command = compose_command(service)
        assert "--no-jobs" in command
        assert command[command.index("--host") + 1] == "0.0.0.0"
    assert len(lore_services("worker")) == 1


def test_every_lore_process_shares_postgresql_and_the_chroma_server_once_both_are_healthy() -> None:
    every = services()
    chroma_command = compose_command(every["chroma"])
    chroma_port = chroma_command[chroma_command.index("--port") + 1]
    for name, service in {**lore_services("serve"), **lore_services("worker")}.items():
        environment = compose_environment(service)
        url = make_url(environment["LORE_DATABASE_URL"])
        assert url.drivername == "postgresql+psycopg", name
        assert url.host == "postgres" and url.username == every["postgres"]["environment"]["POSTGRES_USER"]
        assert url.password == every["postgres"]["environment"]["POSTGRES_PASSWORD"]
        assert url.database == every["postgres"]["environment"]["POSTGRES_DB"]
        assert environment["LORE_INDEX__CHROMA_HOST"] == "chroma"
        assert environment["LORE_INDEX__CHROMA_PORT"] == chroma_port
        assert service["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "chroma": {"condition": "service_healthy"},
        }
        assert service["env_file"] == ".env"


def test_only_the_worker_sees_the_documents_folder_read_only() -> None:
    config = tomllib.loads((ROOT / "deploy" / "lore.toml").read_text())
    folders = [source["path"] for source in config["sources"]]
    (worker,) = lore_services("worker").values()
    for folder in folders:
        source, read_only = mounts(worker)[folder]
        assert read_only, f"the worker must mount {folder} read-only"
        assert (ROOT / source).is_dir(), f"the default documents folder {source} does not exist"
        for name, replica in lore_services("serve").items():
            assert folder not in mounts(replica), f"{name} mounts the documents: only the worker refreshes"
    for service in (*lore_services("serve").values(), worker):
        source, read_only = mounts(service)["/etc/lore/lore.toml"]
        assert read_only and (ROOT / source).is_file()
    assert "healthcheck" in worker and worker["healthcheck"].get("disable") is True, (
        "the worker serves no /healthz: the image's health check would mark it unhealthy"
    )


def test_the_proxy_sends_to_both_replicas_once_they_are_healthy() -> None:
    every = services()
    (proxy,) = [service for service in every.values() if str(service.get("image", "")).startswith("nginx")]
    replicas = lore_services("serve")
    assert proxy["depends_on"] == {name: {"condition": "service_healthy"} for name in replicas}
    source, read_only = next(
        (source, read_only) for target, (source, read_only) in mounts(proxy).items() if target.startswith("/etc/nginx")
    )
    assert read_only and (ROOT / source).resolve() == NGINX_CONF.resolve()
    nginx = NginxConfig.parse(NGINX_CONF.read_text())
    (upstream,) = nginx.all("upstream")
    servers = sorted(server.args[0] for server in upstream.all("server"))
    ports = {compose_command(s)[compose_command(s).index("--port") + 1] for s in replicas.values()}
    assert servers == sorted(f"{name}:{port}" for name in replicas for port in ports)
    (listen,) = nginx.all("listen")
    published = [port.split(":") for port in proxy["ports"]]
    assert [container for _, container in published] == listen.args


def test_secrets_stay_out_of_git() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored
    assert (ROOT / ".env.example").is_file()
    environment = {key for s in services().values() for key in compose_environment(s)}
    assert not environment & {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "MICROSOFT_APP_PASSWORD"}, (
        "platform secrets belong in .env, not in docker-compose.yml"
    )


def seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)?", value).groups()  # type: ignore[union-attr]
    return int(number) * units[unit or "s"]


def test_the_proxy_passes_slacks_headers_and_body_untouched() -> None:
    nginx = NginxConfig.parse(NGINX_CONF.read_text())
    assert all(d.args != ["off"] for d in nginx.all("proxy_pass_request_headers")), "request headers are dropped"
    assert all(d.args != ["off"] for d in nginx.all("proxy_pass_request_body")), "request bodies are dropped"
    assert not nginx.all("proxy_set_body"), "the body Slack signed must arrive as sent"
    for header in ("X-Slack-Signature", "X-Slack-Request-Timestamp", "X-Slack-Retry-Num", "X-Slack-Retry-Reason"):
        for directive in nginx.all("proxy_set_header"):
            if directive.args[0].lower() == header.lower():
                assert directive.args[1:] == ["$http_" + header.lower().replace("-", "_")], directive
    (location,) = nginx.all("location")
    assert location.all("proxy_pass")[0].args == ["http://" + nginx.all("upstream")[0].args[0]]
    (body,) = nginx.all("client_max_body_size")
    assert int(body.args[0].removesuffix("m")) * 1024 * 1024 >= ServerSettings().max_body_bytes
    for timeout in ("proxy_read_timeout", "proxy_send_timeout"):
        (directive,) = nginx.all(timeout)
        assert seconds(directive.args[0]) >= 30, f"{timeout} too short for the console and a busy replica"
