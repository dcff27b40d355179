"""The promoted adapter across processes and machines (#18): `lore customize promote` and
`rollback`, run as processes of their own, are followed by a serving model elsewhere. On
SQLite (one machine) both share LORE_HOME and its ACTIVE file; on PostgreSQL each has its own
LORE_HOME, as replicas on other machines do: the name comes from the shared database, and the
promoted adapter's folder with it."""

from __future__ import annotations

import contextlib
import filecmp
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, update
from sqlalchemy.pool import NullPool

from bot.adapter_registry import adapter_registry
from bot.customize.promotion import store_evaluation
from bot.model import Model, lazy_model
from bot.model.active_adapter import FollowActiveAdapter, follow_promotions
from bot.model.adapters import ACTIVE_FILE, AdapterRegistry
from bot.settings import LoreSettings, ModelSettings
from bot.store.database import Database
from bot.store.tables import active_adapter
from tests.support.postgres import fresh_database, postgres_url  # noqa: F401  (fixture)
from tests.support.tiny_model import build_tiny_adapter, build_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@dataclass(frozen=True)
class Machines:
    """Where adapters are trained and promoted, and a replica that serves them."""

    trainer: LoreSettings
    replica: LoreSettings
    shared_home: bool


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def machines(request: pytest.FixtureRequest, tmp_path: Path, tiny: Path) -> Iterator[Machines]:
    """One machine on SQLite; a worker and a replica on other machines on PostgreSQL."""
    if request.param == "sqlite":
        settings = LoreSettings(home=tmp_path / "home", sources=[], model=ModelSettings(base_model=tiny))
        yield Machines(settings, settings, shared_home=True)
        return
    yield request.getfixturevalue("two_machines")


@pytest.fixture
def two_machines(postgres_url: str, tmp_path: Path, tiny: Path) -> Iterator[Machines]:  # noqa: F811
    with fresh_database(postgres_url) as url:
        yield Machines(
            *(
                LoreSettings(home=tmp_path / name, sources=[], model=ModelSettings(base_model=tiny), database_url=url)
                for name in ("worker", "replica")
            ),
            shared_home=False,
        )


def trained(settings: LoreSettings, tiny: Path, *names: str) -> None:
    """Adapters in the trainer's LORE_HOME, evaluated (v2 beats v1 beats the base model)."""
    registry = AdapterRegistry(settings.adapters_dir)  # the files only: no promotion here
    for number, name in enumerate(names, start=1):
        build_tiny_adapter(tiny, registry.directory / name, seed=number, metadata={"base_model": str(tiny)})
        store_evaluation(
            registry, name, {"base": {"answer_accuracy": 0.1}, "adapter": {"answer_accuracy": 0.1 + number / 10}}
        )


def lore(settings: LoreSettings, *args: str) -> str:
    """Run `lore ARGS` as its own process on `settings`' home and database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LORE_", "SLACK_", "MICROSOFT_"))}
    config = settings.home / "lore.toml"
    config.write_text("sources = []\n")
    env.update({"LORE_HOME": str(settings.home), "LORE_CONFIG": str(config)})
    if settings.database_url is not None:
        env["LORE_DATABASE_URL"] = settings.database_url
    result = subprocess.run(
        [sys.executable, "-c", "from bot.cli.main import cli; cli()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@contextlib.contextmanager
def serving_model(settings: LoreSettings) -> Iterator[Model]:
    """The replica's model as `lore serve` builds it: following promotions."""
    database = Database(settings.database)
    registry = adapter_registry(settings, database)
    model = follow_promotions(lazy_model(settings.model, settings.home, registry), settings.model, registry)
    assert isinstance(model, FollowActiveAdapter)
    try:
        yield model
    finally:
        model.close()
        database.close()


def test_a_promotion_in_another_process_is_followed_by_a_replica(machines: Machines, tiny: Path) -> None:
    trained(machines.trainer, tiny, "v1", "v2")
    with serving_model(machines.replica) as replica:
        assert replica.adapter is None

        lore(machines.trainer, "customize", "promote", "v1")
        assert replica.adapter == "v1"  # the next answer's adapter: the promoted one, applied
        lore(machines.trainer, "customize", "promote", "v2")
        assert replica.adapter == "v2"
        lore(machines.trainer, "customize", "rollback")
        assert replica.adapter == "v1"

        replica_adapters = machines.replica.adapters_dir
        if machines.shared_home:
            assert (replica_adapters / ACTIVE_FILE).read_text().strip() == "v1"
        else:  # another machine: no ACTIVE file, and the promoted folders came from the database
            assert not (machines.trainer.adapters_dir / ACTIVE_FILE).exists()
            for name in ("v1", "v2"):
                mine, theirs = replica_adapters / name, machines.trainer.adapters_dir / name
                files = sorted(path.name for path in theirs.iterdir())
                assert sorted(path.name for path in mine.iterdir()) == files
                assert filecmp.cmpfiles(mine, theirs, files, shallow=False)[0] == files
        assert "v1" in lore(machines.replica, "customize", "list").split("*", 1)[1].split()[0]


@pytest.mark.postgres
def test_a_promoted_adapter_a_replica_cannot_fetch_keeps_it_answering(
    two_machines: Machines, tiny: Path, caplog: pytest.LogCaptureFixture
) -> None:
    machines = two_machines
    trained(machines.trainer, tiny, "v1")
    with serving_model(machines.replica) as replica:
        lore(machines.trainer, "customize", "promote", "v1")
        assert replica.adapter == "v1"
        engine = create_engine(str(machines.replica.database_url), poolclass=NullPool)
        with engine.begin() as connection:  # a promotion whose copy is damaged
            connection.execute(update(active_adapter).values(name="v9", archive=b"not a tar archive"))
        engine.dispose()
        caplog.set_level(logging.ERROR, logger="bot.model.active_adapter")
        assert replica.adapter == "v1"
        assert replica.adapter == "v1"
        errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
        assert len(errors) == 1 and "still answering with v1" in errors[0], errors
        assert not (machines.replica.adapters_dir / "v9").exists()
