"""With `database_url` on PostgreSQL, `lore index` on one machine (its own LORE_HOME) fills the
catalog that `lore search` on another reads, vectors in one `chroma run` server; retraining
runs never overlap across machines either."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.app import build_knowledge
from bot.cli.main import cli
from bot.customize.retrain import LOCK_FILE, RetrainBusyError, retrain_lock
from bot.settings import LoreSettings
from knowledge.index.postgres_catalog import PostgresCatalog
from knowledge.index.sqlite_catalog import SqliteCatalog
from tests.support.files import write_document
from tests.support.knowledge_index import chroma_server
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.postgres


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    with fresh_database(postgres_url) as url:
        yield url


def machine(root: Path, database: str, chroma_port: int) -> dict[str, str]:
    return {
        "LORE_CONFIG": str(root / "no-lore.toml"),
        "LORE_HOME": str(root / "home"),
        "LORE_DATABASE_URL": database,
        "LORE_INDEX__CHROMA_HOST": "127.0.0.1",
        "LORE_INDEX__CHROMA_PORT": str(chroma_port),
    }


def test_what_one_machine_indexes_another_searches(tmp_path: Path, database: str) -> None:
    docs = tmp_path / "handbook"
    write_document(docs / "benefits/overview.docx")
    write_document(docs / "office/notes.txt")
    with chroma_server(tmp_path / "chroma") as port:
        first, second = machine(tmp_path / "a", database, port), machine(tmp_path / "b", database, port)
        indexed = run(first, "index", "--source", str(docs), "--permissions", "public", "--json")
        assert indexed.exit_code == 0, indexed.output
        assert json.loads(indexed.stdout)["added"] == 2
        for mode in ("keyword", "dense", "hybrid"):
            found = run(second, "search", "dental cleanings", "--json", "--mode", mode)
            assert json.loads(found.stdout)["results"][0]["source"] == "benefits/overview.docx", mode
    assert not (tmp_path / "a/home/index/catalog.sqlite3").exists()


def test_retraining_runs_never_overlap_across_machines(tmp_path: Path, database: str) -> None:
    with retrain_lock(tmp_path / "a" / LOCK_FILE, database):
        with pytest.raises(RetrainBusyError, match=re.escape("another retraining is running (pid ")):
            retrain_lock(tmp_path / "b" / LOCK_FILE, database).__enter__()
    with retrain_lock(tmp_path / "b" / LOCK_FILE, database):
        pass  # freed on release


def test_the_bot_keeps_its_catalog_in_the_database_when_it_is_postgresql(tmp_path: Path, database: str) -> None:
    shared = build_knowledge(LoreSettings(home=tmp_path / "a", database_url=database, sources=[]))
    alone = build_knowledge(LoreSettings(home=tmp_path / "b", sources=[]))
    try:
        assert isinstance(shared.catalog, PostgresCatalog) and isinstance(alone.catalog, SqliteCatalog)
    finally:
        shared.close()
        alone.close()
