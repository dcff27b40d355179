"""The promoted adapter in the database, for replicas that share no folder (an `ActiveMarker`
of `bot.model.adapters`): every replica's `ActiveAdapterWatcher` reads the name here before it
answers (one indexed primary-key read), and a replica on another machine fetches the folder
from the copy kept beside the name, so that promoting on one machine is the only step."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from bot.errors import ModelNotFoundError
from bot.store.database import Database
from bot.store.tables import active_adapter
from bot.store.upsert import insert_or_update

ROW = 1


class DatabaseMarker:
    """The promoted adapter's name (and a copy of its folder) in the `active_adapter` row."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine

    def read(self) -> str | None:
        with self._engine.connect() as connection:
            name = connection.execute(select(active_adapter.c.name).where(active_adapter.c.id == ROW)).scalar()
        return str(name) if name else None

    def write(self, name: str | None, folder: Path | None) -> None:
        values = {
            "name": name,
            "archive": _archive(folder) if folder is not None else None,
            "promoted_at": datetime.now(UTC),
        }
        with self._engine.begin() as connection:
            insert_or_update(connection, active_adapter, {"id": ROW, **values}, values, where=None)

    def fetch(self, name: str, into: Path) -> bool:
        with self._engine.connect() as connection:
            archive = connection.execute(
                select(active_adapter.c.archive).where(active_adapter.c.id == ROW, active_adapter.c.name == name)
            ).scalar()
        if archive is None:
            return False
        # Unpacked beside its place and renamed: a concurrent reader never sees half a folder,
        # and two threads fetching at once leave one complete copy.
        partial = Path(tempfile.mkdtemp(prefix=f".{into.name}.", dir=into.parent))
        try:
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
                tar.extractall(partial, filter="data")  # names inside stay inside `partial`
            os.rename(partial, into)
        except (OSError, tarfile.TarError) as error:
            if not into.is_dir():  # else another thread fetched it meanwhile: its copy serves
                raise ModelNotFoundError(
                    f"cannot unpack the promoted adapter {name!r} from the database into {into}: {error}; "
                    "free the disk or fix the folder's permissions, or promote the adapter again"
                ) from error
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return True


def _archive(folder: Path) -> bytes:
    """The adapter folder's files as an uncompressed tar (the weights do not compress)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()
