"""The adapter registry every command and process uses: the adapters under LORE_HOME/adapters,
with the promoted one recorded where every process that answers reads it. On SQLite (one
machine) that is the ACTIVE file in that folder; on PostgreSQL (replicas on several machines)
it is a row of the shared database, which also carries the promoted folder to replicas that
lack it (`bot.store.active_adapter`)."""

from __future__ import annotations

from bot.model.adapters import AdapterRegistry
from bot.settings import LoreSettings
from bot.store.active_adapter import DatabaseMarker
from bot.store.database import Database


def adapter_registry(settings: LoreSettings, database: Database | None = None) -> AdapterRegistry:
    """The registry for `settings`; on PostgreSQL its marker uses `database` (default: a
    connection pool of its own, open for the rest of the process)."""
    shared = settings.shared_database_url
    if shared is None:  # one machine: the ACTIVE file
        return AdapterRegistry(settings.adapters_dir)
    return AdapterRegistry(settings.adapters_dir, DatabaseMarker(database or Database(shared)))
