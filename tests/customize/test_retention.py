"""Retention: feedback, datasets, training runs and adapters past their retention are deleted by
the housekeeping that purges the answer log (at start-up, and daily under `lore serve`); the
active adapter and the one a rollback returns to always stay."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.app import build_knowledge, build_services
from bot.customize.promotion import promote
from bot.model.adapters import AdapterRegistry
from bot.settings import AgentSettings, CustomizeSettings, LoreSettings
from bot.store.database import Database
from bot.store.feedback import Feedback, FeedbackStore

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=400)


def write_dataset(root: Path, name: str, created: datetime) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text('{"question": "When is payday?"}\n', encoding="utf-8")
    (folder / "card.json").write_text(json.dumps({"created": created.isoformat()}), encoding="utf-8")


def write_adapter(registry: AdapterRegistry, name: str, created: datetime) -> None:
    folder = registry.directory / name
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    (folder / "lore.json").write_text(json.dumps({"created": created.isoformat()}), encoding="utf-8")


def make_old(path: Path) -> None:
    os.utime(path, (OLD.timestamp(), OLD.timestamp()))


def test_start_up_purges_old_feedback_datasets_runs_and_adapters_but_never_the_active_one(tmp_path: Path) -> None:
    settings = LoreSettings(
        home=tmp_path / "home",
        agent=AgentSettings(feedback_retention_days=30),
        customize=CustomizeSettings(dataset_retention_days=30, adapter_retention_days=60),
    )
    database = Database(settings.database)
    feedback = FeedbackStore(database)
    feedback.record(
        Feedback("a-old", "slack", "U1", "not_helpful", correction="Old news", created_at=NOW - timedelta(days=31))
    )
    kept_feedback = feedback.record(Feedback("a-new", "slack", "U1", "helpful", created_at=NOW - timedelta(days=29)))
    database.close()
    datasets = settings.home / "datasets"
    write_dataset(datasets, "20250101T000000Z", NOW - timedelta(days=31))
    write_dataset(datasets, "20261201T000000Z", NOW - timedelta(days=29))
    (datasets / ".20250101T000000Z.half").mkdir()  # a dataset whose writing was interrupted
    make_old(datasets / ".20250101T000000Z.half")
    runs = settings.home / "customize" / "runs"
    (runs / "old-run" / "checkpoint").mkdir(parents=True)
    make_old(runs / "old-run")
    registry = AdapterRegistry(settings.adapters_dir)
    for name in ("stale", "previous", "active"):
        write_adapter(registry, name, OLD)
    write_adapter(registry, "fresh", NOW - timedelta(days=59))
    promote(registry, "previous", force=True)
    promote(registry, "active", force=True)

    services = build_services(settings)
    services.close()

    database = Database(settings.database)
    assert [entry.id for entry in FeedbackStore(database).list()] == [kept_feedback]
    database.close()
    assert sorted(path.name for path in datasets.iterdir()) == ["20261201T000000Z"]
    assert not runs.exists() or list(runs.iterdir()) == []
    assert sorted(registry.list()) == ["active", "fresh", "previous"]
    assert registry.active() == "active"


def test_lore_home_created_by_lore_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    settings = LoreSettings(home=tmp_path / "fresh" / "home")

    build_knowledge(settings).close()

    assert settings.home.stat().st_mode & 0o777 == 0o700  # it will hold the answer log and datasets
