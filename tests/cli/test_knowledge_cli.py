"""`lore index` and `lore search` through the real CLI, with LORE_HOME in a temporary folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli.main import cli
from tests.support.files import PHRASES, write_broken_files, write_document

REPORT_KEYS = {
    "added",
    "updated",
    "deleted",
    "unchanged",
    "skipped",
    "failed",
    "seconds",
    "documents",
    "readable_by_everyone",
    "failing",
    "warnings",
}
RESULT_KEYS = {"source", "title", "heading", "url", "score", "text"}


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli-docs") / "handbook"
    write_document(folder / "finance/closing.md")  # a Finance page with a Travel section
    write_document(folder / "office/notes.txt")
    write_document(folder / "benefits/overview.docx")
    write_broken_files(folder / "broken")
    return folder


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, docs: Path) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("cli-home")
    yield {"LORE_CONFIG": str(root / "no-lore.toml"), "LORE_HOME": str(root / "home")}


@pytest.fixture(scope="module")
def first_index(env: dict[str, str], docs: Path) -> dict[str, object]:
    result = run(env, "index", "--source", str(docs), "--permissions", "public", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_index_json_report(first_index: dict[str, object], docs: Path) -> None:
    assert set(first_index) == REPORT_KEYS
    assert (first_index["added"], first_index["skipped"], first_index["deleted"]) == (3, 2, 0)
    failed = first_index["failed"]
    assert isinstance(failed, list) and {Path(f["path"]).name for f in failed} == {
        "corrupt.pdf",
        "encrypted.pdf",
        "truncated.docx",
    }
    assert all(set(f) == {"path", "reason"} and f["reason"] for f in failed)
    assert isinstance(first_index["seconds"], float)


def test_second_index_is_unchanged_and_human_output_summarises(
    first_index: dict[str, object], env: dict[str, str], docs: Path
) -> None:
    result = run(env, "index", "--source", str(docs), "--permissions", "public")
    assert result.exit_code == 0, result.output
    assert "refresh: added=0 updated=0 deleted=0 unchanged=3 skipped=2 failed=3 in" in result.stdout
    assert "failed: " in result.stdout and "encrypted.pdf" in result.stdout


def configured(env: dict[str, str], **retrieval: int) -> dict[str, str]:
    """`env` with retrieval settings set the way an operator sets them (LORE_RETRIEVAL__*)."""
    return {**env, **{f"LORE_RETRIEVAL__{name.upper()}": str(value) for name, value in retrieval.items()}}


def test_search_json_one_result_per_document(first_index: dict[str, object], env: dict[str, str]) -> None:
    result = run(configured(env, max_per_document=1), "search", "when do we close the books", "-k", "5", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["query"] == "when do we close the books"
    results = payload["results"]
    assert results and all(set(r) == RESULT_KEYS for r in results)
    assert results[0]["source"] == "finance/closing.md"
    assert PHRASES[".md"] in results[0]["text"]
    assert results[0]["url"].startswith("file://") and results[0]["heading"] == "Finance > Closing the books"
    sources = [r["source"] for r in results]
    assert len(sources) == len(set(sources))
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)


def test_search_chunks_shows_several_chunks_of_a_document(first_index: dict[str, object], env: dict[str, str]) -> None:
    query = "finance closing the books and travel trains"
    per_document = json.loads(run(configured(env, max_per_document=1), "search", query, "--json").stdout)["results"]
    chunks = json.loads(run(env, "search", query, "--json", "--chunks", "-k", "10").stdout)["results"]
    assert [r["source"] for r in per_document].count("finance/closing.md") == 1
    assert [r["source"] for r in chunks].count("finance/closing.md") >= 2


def test_search_returns_the_configured_number_of_passages_and_per_document_cap(
    first_index: dict[str, object], env: dict[str, str]
) -> None:
    query = "finance closing the books and travel trains"
    results = json.loads(run(configured(env, k=3, max_per_document=2), "search", query, "--json").stdout)["results"]
    sources = [r["source"] for r in results]
    assert len(results) == 3
    assert sources.count("finance/closing.md") == 2  # the configured cap, not one per document
    assert max(sources.count(source) for source in sources) <= 2


def test_search_k_option_wins_over_the_configured_k(first_index: dict[str, object], env: dict[str, str]) -> None:
    query = "finance closing the books and travel trains"
    results = json.loads(run(configured(env, k=3), "search", query, "--json", "-k", "1").stdout)["results"]
    assert len(results) == 1


@pytest.mark.parametrize("mode", ["dense", "keyword"])
def test_search_modes(first_index: dict[str, object], env: dict[str, str], mode: str) -> None:
    results = json.loads(run(env, "search", "dental cleanings", "--json", "--mode", mode).stdout)["results"]
    assert results[0]["source"] == "benefits/overview.docx"


def test_search_human_output(first_index: dict[str, object], env: dict[str, str]) -> None:
    result = run(env, "search", "dental cleanings", "-k", "1")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("1. Benefits overview > Benefits > Dental")
    assert lines[1].strip().startswith("file://") and PHRASES[".docx"] in lines[2]


def test_search_on_an_empty_index_says_how_to_build_it(tmp_path: Path) -> None:
    env = {"LORE_CONFIG": str(tmp_path / "none.toml"), "LORE_HOME": str(tmp_path / "home")}
    result = run(env, "search", "anything")
    assert result.exit_code == 0 and "lore index" in result.stdout


def test_index_of_the_configured_sample_folder(tmp_path: Path) -> None:
    env = {"LORE_CONFIG": str(tmp_path / "none.toml"), "LORE_HOME": str(tmp_path / "home")}
    report = json.loads(run(env, "index", "--json").stdout)
    assert report["added"] >= 10 and report["failed"] == []
