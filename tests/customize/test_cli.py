"""`lore customize ...` end to end on a fresh LORE_HOME: index, dataset, train, eval, promote,
list, rollback, with the tiny model as the base model."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from bot.cli.main import cli
from bot.model.adapters import AdapterRegistry
from tests.customize.conftest import write_share
from tests.support.tiny_model import build_tiny_model


def test_the_whole_recipe_from_the_command_line(tmp_path: Path) -> None:
    docs = write_share(tmp_path / "docs")
    home = tmp_path / "home"
    env = {
        "LORE_CONFIG": str(tmp_path / "absent.toml"),
        "LORE_HOME": str(home),
        "LORE_SOURCES": json.dumps([{"name": "handbook", "path": str(docs)}]),
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
        "customize", "train", "--max-steps", "2", "--gradient-accumulation", "1", "--checkpoint-every", "2",
        "--rank", "4", "--learning-rate", "0.05", "--name", "v1",
    )
    registry = AdapterRegistry(home / "adapters")
    assert registry.list() == ["v1"]
    assert registry.info("v1").metadata["dataset"]["hash"] == card["hash"]

    scores = lore_json("customize", "eval", "--json")
    assert set(scores) == {"base", "adapter"}
    for side in scores.values():
        assert set(side) == {"answer_accuracy", "citation_accuracy", "abstention", "latency_p50"}
    assert registry.info("v1").metadata["evaluation"]["adapter"] == scores["adapter"]

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
