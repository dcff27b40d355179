"""`lore index --source PATH` through the real CLI, a real lore.toml and a real index: a folder
inside a configured source refreshes that source under its own name and ACL section; an
unknown folder is refused when the ACL file has per-source sections; the other configured
sources are never dropped."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli.main import cli

FINANCE, HANDBOOK = "budget/plan.md", "leave.md"
PHRASES = {FINANCE: "the budget codename is copperlynx", HANDBOOK: "parental leave lasts sixteen weeks"}
ACL = """\
default: everyone
sources:
  finance:
    default: [group:finance]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    finance = tmp_path / "finance-drive"  # the folder's name is not the source's name
    handbook = tmp_path / "handbook"
    for path, phrase in ((finance / FINANCE, PHRASES[FINANCE]), (handbook / HANDBOOK, PHRASES[HANDBOOK])):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {path.stem}\n\n{phrase}.\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "notes.md").write_text("# Notes\n\nthe notes codename is amberkoala.\n")
    (tmp_path / "acl.yaml").write_text(ACL)
    (tmp_path / "lore.toml").write_text(
        f"""
home = "{tmp_path / "home"}"
acl_file = "{tmp_path / "acl.yaml"}"
[[sources]]
name = "finance"
path = "{finance}"
[[sources]]
name = "handbook"
path = "{handbook}"
"""
    )
    for name in list(os.environ):
        if name.startswith("LORE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LORE_CONFIG", str(tmp_path / "lore.toml"))
    monkeypatch.chdir(tmp_path)
    code, output = lore("index", "--json")
    assert code == 0, output
    return tmp_path


def lore(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def readable(email: str, query: str) -> set[str]:
    """Documents `query` finds for `email` (every chunk, keyword and dense fused)."""
    code, output = lore("search", query, "--as", email, "--json", "--chunks", "-k", "20")
    assert code == 0, output
    return {result["source"] for result in json.loads(output)["results"]}


def test_indexing_a_folder_of_a_configured_source_keeps_its_per_source_acl_and_name(project: Path) -> None:
    (project / "finance-drive" / FINANCE).write_text(f"# plan\n\n{PHRASES[FINANCE]}, revised.\n")

    code, output = lore("index", "--source", str(project / "finance-drive" / "budget"), "--json")

    assert code == 0, output
    report = json.loads(output)
    assert (report["updated"], report["deleted"]) == (1, 0)
    assert FINANCE not in readable("stranger@example.com", "budget codename copperlynx")
    assert report["readable_by_everyone"] == {"finance": 0, "handbook": 1}


def test_indexing_one_folder_never_drops_the_other_configured_sources(project: Path) -> None:
    code, output = lore("index", "--source", str(project / "finance-drive"), "--json")

    assert code == 0, output
    assert json.loads(output)["deleted"] == 0
    assert HANDBOOK in readable("stranger@example.com", "parental leave weeks")


def test_an_unknown_folder_is_refused_when_the_acl_has_per_source_sections(project: Path) -> None:
    code, output = lore("index", "--source", str(project / "elsewhere"))

    assert code == 1
    assert "lies in no configured source" in output and "rules per source (finance)" in output
    assert "notes.md" not in readable("stranger@example.com", "notes codename amberkoala")
    assert HANDBOOK in readable("stranger@example.com", "parental leave weeks")


def test_a_folder_holding_configured_sources_is_refused(project: Path) -> None:
    (project / "acl.yaml").write_text("default: everyone\n")  # no per-source sections

    code, output = lore("index", "--source", str(project), "--permissions", "public")

    assert code == 1 and "holds the configured source(s) finance, handbook" in output


def test_an_unknown_folder_without_per_source_sections_joins_the_configured_sources(project: Path) -> None:
    (project / "acl.yaml").write_text("default: [group:staff]\n")

    code, output = lore("index", "--source", str(project / "elsewhere"), "--json")

    assert code == 0, output
    assert json.loads(output)["deleted"] == 0
    assert "notes.md" not in readable("stranger@example.com", "notes codename amberkoala")
    assert HANDBOOK in readable("stranger@example.com", "parental leave weeks")  # not refreshed yet
    code, output = lore("index", "--json")  # configured sources again: staff default for all
    assert code == 0, output
    assert json.loads(output)["readable_by_everyone"] == {"finance": 0, "handbook": 0}


def test_permissions_cannot_override_a_configured_sources_choice(project: Path) -> None:
    code, output = lore("index", "--source", str(project / "finance-drive"), "--permissions", "public")

    assert code == 2 and "--permissions applies only to --source folders outside" in output
    assert FINANCE not in readable("stranger@example.com", "budget codename copperlynx")
