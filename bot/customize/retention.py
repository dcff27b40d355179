"""Retention for what customization writes under LORE_HOME: datasets (their examples quote
documents and people's corrections), adapters (their weights can repeat them) and training runs
(checkpoints). Run by the same housekeeping that purges the answer log; the active adapter and
the one `lore customize rollback` would return to are never deleted."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.customize.dataset import CARD_FILE
from bot.customize.promotion import rollback_target
from bot.model.adapters import AdapterRegistry
from bot.settings import LoreSettings
from knowledge.errors import LoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CustomizationRetention:
    """Where customization keeps its files, and for how many days."""

    datasets_dir: Path
    runs_dir: Path
    registry: AdapterRegistry
    dataset_days: float
    adapter_days: float

    @classmethod
    def of(cls, settings: LoreSettings, registry: AdapterRegistry) -> CustomizationRetention:
        """Retention as `settings` set it, over the adapters of `registry` (`bot.adapter_registry`)."""
        return cls(
            datasets_dir=settings.home / "datasets",
            runs_dir=settings.home / "customize" / "runs",
            registry=registry,
            dataset_days=settings.customize.dataset_retention_days,
            adapter_days=settings.customize.adapter_retention_days,
        )

    def purge(self, now: datetime | None = None) -> int:
        """Delete datasets, training runs and adapters past their retention; returns how many
        folders went."""
        now = now or datetime.now(UTC)
        return (
            purge_datasets(self.datasets_dir, now - timedelta(days=self.dataset_days))
            + _purge_folders(_children(self.runs_dir), now - timedelta(days=self.adapter_days))
            + purge_adapters(self.registry, now - timedelta(days=self.adapter_days))
        )


def purge_datasets(datasets_dir: Path, cutoff: datetime) -> int:
    """Delete the datasets (and half-written ones) created before `cutoff`."""
    return _purge_folders(_children(datasets_dir), cutoff, _dataset_created)


def purge_adapters(registry: AdapterRegistry, cutoff: datetime) -> int:
    """Delete the adapters created before `cutoff`, except the active one and the one a
    rollback returns to."""
    kept = {registry.active(), rollback_target(registry)}
    candidates = [registry.path(name) for name in registry.list() if name not in kept]
    return _purge_folders(candidates, cutoff, lambda folder: _adapter_created(registry, folder))


def _purge_folders(
    folders: Iterable[Path], cutoff: datetime, created: Callable[[Path], datetime | None] | None = None
) -> int:
    purged = 0
    for folder in folders:
        when = (created(folder) if created is not None else None) or _modified(folder)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if when < cutoff:
            shutil.rmtree(folder)
            log.info("Deleted %s (created %s, past its retention)", folder, when.isoformat())
            purged += 1
    return purged


def _children(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [path for path in folder.iterdir() if path.is_dir() and not path.is_symlink()]


def _dataset_created(folder: Path) -> datetime | None:
    try:
        return datetime.fromisoformat(json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))["created"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # half-written or damaged: its folder's time decides


def _adapter_created(registry: AdapterRegistry, folder: Path) -> datetime | None:
    try:
        return registry.info(folder.name).created
    except LoreError:
        return None  # damaged metadata: its folder's time decides


def _modified(folder: Path) -> datetime:
    return datetime.fromtimestamp(folder.stat().st_mtime, UTC)
