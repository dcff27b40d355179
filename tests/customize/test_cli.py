"""`lore customize ...` end to end on a fresh LORE_HOME: index, dataset, train, eval, promote,
list, rollback, with the tiny model as the base model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.app import build_knowledge
from bot.cli.main import cli
from bot.core.agent import MAX_PROMPT_TOKENS
from bot.core.prompt import prompt_budget
from bot.model.adapters import AdapterRegistry
from bot.model.local import LocalModel
from bot.model.writing import measured_writing
from bot.settings import LoreSettings
from tests.customize.conftest import write_share
from tests.customize.test_chart import TRAIN_BLUE, VALIDATION_ORANGE, pixels_like
from tests.customize.test_teacher import API_KEY, teacher_reply
from tests.support.openai_server import OpenAIServer
from tests.support.tiny_model import build_tiny_model


def test_the_whole_recipe_from_the_command_line(tmp_path: Path) -> None:
    docs = write_share(tmp_path / "docs")
    home = tmp_path / "home"
    env = {
        "LORE_CONFIG": str(tmp_path / "absent.toml"),
        "LORE_HOME": str(home),
        "LORE_SOURCES": json.dumps([{"name": "handbook", "path": str(docs), "permissions": "file-modes"}]),
        "LORE_MODEL__BASE_MODEL": str(build_tiny_model(tmp_path / "tiny")),
        "LORE_MODEL__MAX_NEW_TOKENS": "8",
    }
    runner = CliRunner(env=env)

    def lore(*args: str, ok: bool = True) -> str:
        """stdout and stderr together (errors are on stderr)."""
        return run(*args, ok=ok).output

    def lore_json(*args: str) -> object:
        return json.loads(run(*args).stdout)

    def run(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert (result.exit_code == 0) is ok, result.output
        return result

    lore("index")
    card = lore_json("customize", "dataset", "--max-prompt-tokens", "200", "--json")
    assert Path(card["folder"]).parent == home / "datasets" and card["redactions"]["slack_token"] >= 1

    lore(
        "customize",
        "train",
        "--max-steps",
        "2",
        "--gradient-accumulation",
        "1",
        "--checkpoint-every",
        "2",
        "--rank",
        "4",
        "--learning-rate",
        "0.05",
        "--name",
        "v1",
    )
    registry = AdapterRegistry(home / "adapters")
    assert registry.list() == ["v1"]
    assert registry.info("v1").metadata["dataset"]["hash"] == card["hash"]

    evaluated = run("customize", "eval", "--json")
    scores = json.loads(evaluated.stdout)
    assert set(scores) == {"base", "adapter"}
    # The chart beside the adapter, drawn from its real lore.json; its path on stderr.
    chart = home / "adapters" / "v1" / "evaluation.png"
    assert f"Chart: {chart}" in evaluated.stderr
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
    assert pixels_like(chart, TRAIN_BLUE, "left") > 0 and pixels_like(chart, VALIDATION_ORANGE, "left") > 0
    for side in scores.values():
        assert set(side) == {
            "answer_accuracy",
            "citation_accuracy",
            "abstention",
            "latency_p50",  # as shown
            "model_answer_accuracy",
            "model_citation_accuracy",
            "generated_shown",  # the model's own text
        }
    assert registry.info("v1").metadata["evaluation"]["adapter"] == scores["adapter"]
    # Both models wrote every answer, and how often their text was shown decides whether they
    # write for users (agent.generate = "auto").
    measured = measured_writing(home)
    for side, adapter in (("base", None), ("adapter", "v1")):
        kept = measured.get("tiny", adapter)
        assert kept is not None and kept.generated_shown == scores[side]["generated_shown"]

    better = (scores["adapter"]["answer_accuracy"] or 0) > (scores["base"]["answer_accuracy"] or 0)
    output = lore("customize", "promote", ok=better)
    if not better:
        assert "does not beat the base model" in output and registry.active() is None
        lore("customize", "promote", "--force")
    assert registry.active() == "v1"

    listed = lore_json("customize", "list", "--json")
    assert [(a["name"], a["active"]) for a in listed] == [("v1", True)]
    assert listed[0]["metrics"]["steps"] == 2 and listed[0]["created"]

    assert "base model answers now" in lore("customize", "rollback")
    assert registry.active() is None
    assert "Nothing to roll back" in lore("customize", "rollback", ok=False)


@pytest.fixture(scope="module")
def restricted_share(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The tiny share with an ACL file that gives hr/ to the HR group, indexed through
    `build_knowledge` (what the customize commands use): the environment to run `lore` in."""
    root = tmp_path_factory.mktemp("acl")
    docs = write_share(root / "docs")
    (root / "acl.yaml").write_text('rules: [{path: "hr/", allow: [group:hr]}]\n', encoding="utf-8")
    env = {
        "LORE_CONFIG": str(root / "absent.toml"),
        "LORE_HOME": str(root / "home"),
        "LORE_SOURCES": json.dumps([{"name": "handbook", "path": str(docs)}]),
        "LORE_ACL_FILE": str(root / "acl.yaml"),
        "LORE_MODEL__BASE_MODEL": str(build_tiny_model(root / "tiny")),
        "LORE_MODEL__MAX_NEW_TOKENS": "8",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        knowledge = build_knowledge(LoreSettings())
    try:
        knowledge.refresh()
    finally:
        knowledge.close()
    return env


def dataset_card(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = CliRunner(env=env).invoke(cli, ["customize", "dataset", "--json", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_dataset_command_leaves_out_what_the_acl_file_restricts(restricted_share: dict[str, str]) -> None:
    card = dataset_card(restricted_share)
    assert card["documents"] == {"used": 6, "excluded_restricted": 1}
    folder = Path(str(card["folder"]))
    text = "".join((folder / f"{split}.jsonl").read_text(encoding="utf-8") for split in ("train", "validation", "test"))
    assert "hr/salaries.md" not in text and "98,000" not in text
    assert "people/time-off.md" in text


def test_the_dataset_prompt_budget_is_the_agents(restricted_share: dict[str, str]) -> None:
    # A long answer leaves less room for the prompt in the tiny model's 8192-token context.
    card = dataset_card(restricted_share | {"LORE_MODEL__MAX_NEW_TOKENS": "7500"})
    with LocalModel(Path(restricted_share["LORE_MODEL__BASE_MODEL"])) as model:
        expected = prompt_budget(MAX_PROMPT_TOKENS, model.context_window, 7500)
    assert card["options"]["max_prompt_tokens"] == expected == 692
    assert dataset_card(restricted_share)["options"]["max_prompt_tokens"] == MAX_PROMPT_TOKENS
    assert dataset_card(restricted_share, "--max-prompt-tokens", "300")["options"]["max_prompt_tokens"] == 300

    # The openai backend: the endpoint's context window, as the agent's model reports it.
    with OpenAIServer(models=("lore",), context_window=900) as server:
        served = restricted_share | {"LORE_MODEL__BACKEND": "openai", "LORE_MODEL__OPENAI_BASE_URL": server.url}
        assert dataset_card(served)["options"]["max_prompt_tokens"] == 900 - 8


def test_the_dataset_command_asks_the_configured_teacher(restricted_share: dict[str, str]) -> None:
    with OpenAIServer(reply=teacher_reply, models=("big-teacher",), api_key=API_KEY) as server:
        env = restricted_share | {
            "LORE_CUSTOMIZE__TEACHER_BASE_URL": server.url,
            "LORE_CUSTOMIZE__TEACHER_MODEL": "big-teacher",
            "LORE_CUSTOMIZE__TEACHER_API_KEY": API_KEY,
            "LORE_CUSTOMIZE__TEACHER_QUESTIONS_PER_CHUNK": "1",
        }
        result = CliRunner(env=env).invoke(cli, ["customize", "dataset"], catch_exceptions=False)
        asked = server.chat_requests
    assert result.exit_code == 0, result.output
    assert asked and not any("Salary" in body["messages"][-1]["content"] for body in asked)
    assert "Write 1 different questions" in asked[0]["messages"][0]["content"]
    assert "teacher big-teacher: chunks" in result.output and "malformed_replies 1" in result.output
    assert "teacher" in result.output.split("by kind:", 1)[1].split(";", 1)[0]
    assert API_KEY not in result.output
