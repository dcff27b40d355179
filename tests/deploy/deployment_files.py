"""The deployment files read the way their tools read them: the Dockerfile's instructions,
docker-compose.yml with its `${...}` interpolated from .env.example, the Kubernetes
manifests, nginx's configuration as nested directives, and the `lore` commands they run."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
NGINX_CONF = ROOT / "deploy" / "nginx" / "lore.conf"
KUBERNETES = ROOT / "deploy" / "kubernetes"
CI_RUN = ROOT / ".ci" / "run"


# --- Dockerfile -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ...
    arguments: str  # the rest, continuation lines joined

    def exec_form(self) -> list[str]:
        """The JSON array of CMD/ENTRYPOINT (after HEALTHCHECK's options and CMD)."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = text[text.index(" CMD ") + len(" CMD ") :]
        value = json.loads(text)
        assert isinstance(value, list), f"{self.keyword} is not in exec form: {self.arguments}"
        return [str(part) for part in value]


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions in order; comments dropped, `\\` continuations joined (as BuildKit does)."""
    instructions: list[Instruction] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split())))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile_env(instructions: list[Instruction]) -> dict[str, str]:
    """Every ENV the image sets (KEY=value form)."""
    env: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


# --- docker-compose.yml ----------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


def env_example(path: Path = ENV_EXAMPLE, *, commented: bool = False) -> dict[str, str]:
    """The variables .env.example sets; with `commented`, also those shown commented out."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        text = line.strip()
        if commented and re.match(r"#\s*[A-Z][A-Z0-9_]*=", text):
            text = text.lstrip("#").strip()
        if not text or text.startswith("#"):
            continue
        key, _, value = text.partition("=")
        values[key.strip()] = value.strip()
    return values


def interpolate(value: Any, variables: Mapping[str, str]) -> Any:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}` over a loaded document."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if variables.get(name):
            return variables[name]
        if op == ":-":
            return str(arg)
        raise AssertionError(f"${{{name}}} is not set by .env.example: {arg or 'no default'}")

    return _INTERPOLATION.sub(substitute, value)


def compose(variables: Mapping[str, str] | None = None) -> dict[str, Any]:
    """docker-compose.yml as Compose sees it with .env.example as its .env."""
    document = yaml.safe_load(COMPOSE.read_text())  # YAML merge keys (<<: *lore) resolved
    return dict(interpolate(document, env_example() if variables is None else variables))


def compose_environment(service: Mapping[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {str(key): str(value) for key, value in environment.items()}


def compose_command(service: Mapping[str, Any]) -> list[str]:
    """The full command line of a service of the Lore image (entrypoint + command)."""
    entrypoint = service.get("entrypoint", ["lore"])
    command = service.get("command", ["serve", "--host", "0.0.0.0", "--port", "3978"])
    as_list = [shlex.split(part) if isinstance(part, str) else part for part in (entrypoint, command)]
    return [*as_list[0], *as_list[1]]


# --- Kubernetes -----------------------------------------------------------------------------


def kubernetes_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object of deploy/kubernetes (kustomization.yaml is kustomize's, not the API's)."""
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") != "Kustomization":
                yield path, document


def kubernetes_objects(kind: str) -> list[dict[str, Any]]:
    return [document for _, document in kubernetes_documents() if document["kind"] == kind]


def pod_containers(workload: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(workload["spec"]["template"]["spec"]["containers"])


# --- nginx ----------------------------------------------------------------------------------


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None

    def all(self, name: str) -> list[Directive]:
        """Directives called `name` anywhere below this one."""
        found: list[Directive] = []
        for child in self.block or []:
            if child.name == name:
                found.append(child)
            found += child.all(name)
        return found


@dataclass
class NginxConfig:
    root: Directive = field(default_factory=lambda: Directive("main", [], []))

    @classmethod
    def parse(cls, text: str) -> NginxConfig:
        tokens = _nginx_tokens(text)
        config = cls()
        stack = [config.root]
        words: list[str] = []
        for token in tokens:
            if token == ";":
                stack[-1].block.append(Directive(words[0], words[1:]))  # type: ignore[union-attr]
                words = []
            elif token == "{":
                block = Directive(words[0], words[1:], [])
                stack[-1].block.append(block)  # type: ignore[union-attr]
                stack.append(block)
                words = []
            elif token == "}":
                assert not words, f"unterminated directive {words}"
                stack.pop()
            else:
                words.append(token)
        assert len(stack) == 1 and not words, "unbalanced braces in the nginx configuration"
        return config

    def all(self, name: str) -> list[Directive]:
        return self.root.all(name)


def _nginx_tokens(text: str) -> list[str]:
    tokens: list[str] = []
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";{}")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens += list(lexer)
    # shlex groups runs of punctuation ("};" -> one token): split them again.
    split: list[str] = []
    for token in tokens:
        if token and set(token) <= set(";{}"):
            split += list(token)
        else:
            split.append(token)
    return split
