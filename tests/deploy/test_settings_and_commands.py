"""What the deployment files tell Lore (#18): every LORE_* and platform variable they set is
one LoreSettings reads, with the value arriving where meant; every `lore` command line they
run parses; compose and Kubernetes have the same shape."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from pydantic import SecretStr

from bot.cli.main import cli
from bot.settings import _PLATFORM_ENV, LoreSettings
from tests.deploy.deployment_files import (
    ROOT,
    compose,
    compose_command,
    compose_environment,
    dockerfile_env,
    dockerfile_instructions,
    env_example,
    kubernetes_objects,
    pod_containers,
)
from tests.deploy.test_compose import lore_services
from tests.deploy.test_kubernetes import lore_args, workloads

# Variables the files set for something other than Lore's settings.
NOT_LORE = {
    "POSTGRES_PASSWORD",  # compose: PostgreSQL's own, and part of LORE_DATABASE_URL
    "DOCUMENTS_FOLDER",  # compose: the host folder mounted into the worker
    "LORE_CONFIG",  # where lore.toml is (read before the settings; checked below)
}
PLATFORM = {variable: path for path, variable in _PLATFORM_ENV.items()}


def variable_sets() -> Iterator[tuple[str, dict[str, str]]]:
    """Each environment a Lore process gets from the files: (where, variables)."""
    instructions = dockerfile_instructions()
    image = {k: v for k, v in dockerfile_env(instructions).items() if k.startswith("LORE_")}
    yield "Dockerfile", image
    for name, service in {**lore_services("serve"), **lore_services("worker")}.items():
        yield f"compose {name} + .env.example", {**image, **env_example(commented=True), **compose_environment(service)}
    (secret,) = kubernetes_objects("Secret")
    for workload in [*workloads("serve"), *workloads("worker")]:
        (container,) = pod_containers(workload)
        env = {item["name"]: item["value"] for item in container.get("env", [])}
        yield f"kubernetes {workload['metadata']['name']}", {**image, **secret["stringData"], **env}


def setting(settings: LoreSettings, variable: str) -> Any:
    """The value `variable` should have set."""
    path = PLATFORM.get(variable) or tuple(variable.removeprefix("LORE_").lower().split("__"))
    value: Any = settings
    for part in path:
        assert hasattr(value, part), f"{variable}: LoreSettings has no {'.'.join(path)}"
        value = getattr(value, part)
    return value


def as_text(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("LORE_", "SLACK_", "MICROSOFT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LORE_CONFIG", str(tmp_path / "absent.toml"))
    return monkeypatch


@pytest.mark.parametrize("where, variables", [pytest.param(w, v, id=w) for w, v in variable_sets()])
def test_every_variable_reaches_the_setting_it_names(
    where: str, variables: dict[str, str], clean_environment: pytest.MonkeyPatch
) -> None:
    lore_variables = {k: v for k, v in variables.items() if k not in NOT_LORE}
    unknown = [k for k in lore_variables if not k.startswith("LORE_") and k not in PLATFORM]
    assert not unknown, f"{where} sets {unknown}, which Lore does not read"
    for name, value in lore_variables.items():
        clean_environment.setenv(name, value)
    settings = LoreSettings()
    for name, value in lore_variables.items():
        assert as_text(setting(settings, name)) == value, f"{where}: {name}"


def test_lore_config_points_at_the_mounted_lore_toml(clean_environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = Path(dockerfile_env(dockerfile_instructions())["LORE_CONFIG"])
    mounted = {
        volume.split(":")[1]
        for service in {**lore_services("serve"), **lore_services("worker")}.values()
        for volume in service["volumes"]
    }
    assert str(config) in mounted
    for workload in [*workloads("serve"), *workloads("worker")]:
        (container,) = pod_containers(workload)
        folders = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert str(config.parent) in folders
    # deploy/lore.toml and the ConfigMap's copy are valid settings.
    (configmap,) = kubernetes_objects("ConfigMap")
    for text in ((ROOT / "deploy" / "lore.toml").read_text(), configmap["data"][config.name]):
        file = tmp_path / config.name
        file.write_text(text)
        clean_environment.setenv("LORE_CONFIG", str(file))
        assert [source.name for source in LoreSettings().sources] == ["documents"]


def command_lines() -> dict[str, list[str]]:
    """Every command line the files run, by where."""
    instructions = dockerfile_instructions()
    entrypoint = next(i for i in reversed(instructions) if i.keyword == "ENTRYPOINT").exec_form()
    command = next(i for i in reversed(instructions) if i.keyword == "CMD").exec_form()
    lines = {"Dockerfile": [*entrypoint, *command]}
    for name, service in compose()["services"].items():
        if str(service.get("image", "")).startswith("lore"):
            lines[f"compose {name}"] = compose_command(service)
    for kind in ("Deployment", "StatefulSet"):
        for workload in kubernetes_objects(kind):
            lines[f"kubernetes {workload['metadata']['name']}"] = lore_args(workload)
    return lines


@pytest.mark.parametrize("where, line", list(command_lines().items()))
def test_every_command_line_parses(where: str, line: list[str]) -> None:
    program, subcommand, *args = line
    if program == "chroma":
        if shutil.which("chroma") is None:
            pytest.skip("chroma is not installed here")
        result = subprocess.run(["chroma", subcommand, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return
    assert program == "lore", where
    command = cli.commands.get(subcommand)
    assert isinstance(command, click.Command), f"{where}: `lore {subcommand}` does not exist"
    command.make_context(subcommand, list(args))  # unknown options or bad values raise


@pytest.mark.parametrize("subcommand", sorted({line[1] for line in command_lines().values() if line[0] == "lore"}))
def test_lore_help_exits_zero_for_each_command_they_run(subcommand: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from bot.cli.main import cli; cli()", subcommand, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "LORE_HOME": str(tmp_path), "LORE_CONFIG": str(tmp_path / "absent.toml")},
    )
    assert result.returncode == 0, result.stderr


def test_compose_and_kubernetes_have_the_same_shape() -> None:
    def role(line: list[str]) -> str:
        return "serve --no-jobs" if line[:2] == ["lore", "serve"] and "--no-jobs" in line else " ".join(line[:2])

    in_compose: dict[str, int] = {}
    for service in compose()["services"].values():
        if str(service.get("image", "")).startswith("lore"):
            key = role(compose_command(service))
            in_compose[key] = in_compose.get(key, 0) + 1
    in_kubernetes: dict[str, int] = {}
    for kind in ("Deployment", "StatefulSet"):
        for workload in kubernetes_objects(kind):
            key = role(lore_args(workload))
            in_kubernetes[key] = in_kubernetes.get(key, 0) + workload["spec"]["replicas"]
    assert in_compose == in_kubernetes == {"serve --no-jobs": 2, "lore worker": 1, "chroma run": 1}
