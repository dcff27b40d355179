"""Google shared drives and folders as a document source: the listing comes from a local
mirror brought up to date through Drive's changes feed, so a poll with nothing changed is one
request per shared drive (and one for all the folders)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from knowledge.config import GoogleDriveSourceSettings
from knowledge.errors import AccessDeniedError, SourceError
from knowledge.sources.base import SourceProblem, SyncState
from knowledge.sources.gdrive.client import DriveClient, Sleep
from knowledge.sources.gdrive.listing import FOLDERS_KEY, Scope, Updater, export_of, scopes
from knowledge.sources.globs import PathFilter
from knowledge.sources.mirror import ListingMirror, MirroredFile
from knowledge.types import SourceFile

logger = logging.getLogger(__name__)


class GoogleDriveSource:
    """Lists and reads the files of the configured shared drives and folders.

    Credentials are read and the mirror opened on first use, so `lore sources list` asks
    nothing of Google and `check` writes nothing."""

    def __init__(self, settings: GoogleDriveSourceSettings, state_dir: Path, sleep: Sleep = time.sleep) -> None:
        if not settings.drives and not settings.folders:
            raise SourceError(f"Source {settings.name!r}: set `drives` (shared drive ids) or `folders` (folder ids).")
        self.settings = settings
        self.name = settings.name
        self.max_file_bytes = settings.max_file_bytes
        self.root = f"gdrive://{settings.name}"
        self.problems: list[SourceProblem] = []
        self._state_path = Path(state_dir) / f"{settings.name}.sqlite3"
        self._filter = PathFilter(settings.include, settings.exclude)
        self._sleep = sleep
        self._client: DriveClient | None = None
        self._mirror: ListingMirror | None = None
        self._by_path: dict[str, MirroredFile] = {}

    def __repr__(self) -> str:
        return (
            f"GoogleDriveSource(name={self.name!r}, drives={self.settings.drives!r}, folders={self.settings.folders!r})"
        )

    # -- the Source protocol -------------------------------------------------------------------

    def list_files(self) -> Iterator[SourceFile]:
        """Bring the mirror up to date with each drive's changes (a full listing the first
        time), then yield every selected file from it. SourceError when a drive cannot be
        read (nothing is then deleted); a drive that refuses Lore's account is reported as a
        denied problem and its files leave the listing."""
        mirror = self._mirror_db()
        # Drives or folders removed from lore.toml leave the listing (and then the index).
        mirror.keep_drives([scope.key for scope in scopes(self.settings)])
        updater = Updater(self.settings, self._drive(), mirror)
        self.problems = []
        for scope in scopes(self.settings):
            try:
                updater.update(scope)
            except AccessDeniedError as error:
                self._withdraw(scope, str(error))
        mirror.mark_synced(datetime.now(UTC))
        listing = mirror.listing()
        for item_id in listing.detached:
            logger.warning("source %s: item %s is cut off from its drive; not listed", self.name, item_id)
        self._by_path = {}
        for mirrored in listing.files:
            if self._filter.selects(mirrored.path):
                self._by_path[mirrored.path] = mirrored
                yield mirrored.source_file(self.name, self.root)

    def read_bytes(self, file: SourceFile) -> bytes:
        """The file's bytes (a Docs Editors file: its export). SourceError when it is gone,
        AccessDeniedError when Drive refuses, FileTooLargeError over max_file_bytes (checked
        while downloading: never more than the limit and one chunk is fetched)."""
        if file.source != self.name:
            raise SourceError(f"{file.relative_path} belongs to source {file.source!r}, not {self.name!r}")
        mirrored = self._by_path.get(file.relative_path) or self._mirror_db().file_at(file.relative_path)
        if mirrored is None:
            raise SourceError(f"Source {self.name!r}: {file.relative_path} is no longer on the drive.")
        export = export_of(json.loads(mirrored.item.extra or "{}").get("mime", ""))
        client = self._drive()
        if export is not None:
            return client.export(mirrored.item.item_id, export[0], self.max_file_bytes)
        return client.download(mirrored.item.item_id, self.max_file_bytes)

    def file(self, relative_path: str) -> SourceFile:
        """One file as the last listing recorded it (no request to Drive)."""
        mirrored = self._mirror_db().file_at(relative_path)
        if mirrored is None or not self._filter.selects(relative_path):
            raise SourceError(
                f"Source {self.name!r} has no file {relative_path!r} in its last listing; paths start with "
                "the shared drive's (or folder's) name (see `lore sources test`)."
            )
        return mirrored.source_file(self.name, self.root)

    def sync_state(self) -> SyncState | None:
        if self._mirror is None and not self._state_path.exists():
            return SyncState(last_sync_at=None, cursor_saved_at=None)
        return self._mirror_db().sync_state()

    def check(self, limit: int) -> list[SourceFile]:
        """Authenticate, take each feed's page token and list one page of files; nothing is
        saved. Paths here start with the drive's or folder's id."""
        client = self._drive()
        files: list[SourceFile] = []
        for scope in scopes(self.settings):
            client.start_page_token(scope.drive)
            parents = [scope.drive] if scope.drive else list(self.settings.folders)
            for parent in parents:
                page = next(iter(client.files(scope.drive, page_size=max(limit, 1), parent=parent)), [])
                for resource in page[: max(0, limit - len(files))]:
                    files.append(
                        SourceFile(
                            source=self.name,
                            root=self.root,
                            relative_path=f"{parent}/{resource.get('name', '')}",
                            url=str(resource.get("webViewLink", "")),
                            size=int(resource.get("size", 0)),
                            mtime=0.0,
                        )
                    )
        return files

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._mirror is not None:
            self._mirror.close()
            self._mirror = None

    # -- helpers -----------------------------------------------------------------------------------

    def _drive(self) -> DriveClient:
        if self._client is None:
            self._client = DriveClient(self.settings, sleep=self._sleep)
        return self._client

    def _mirror_db(self) -> ListingMirror:
        if self._mirror is None:
            self._mirror = ListingMirror(self._state_path)
        return self._mirror

    def _withdraw(self, scope: Scope, reason: str) -> None:
        """Drive refused Lore's account on a whole drive: its files leave the listing (and the
        index) until access is given back; the next poll lists it in full again."""
        mirror = self._mirror_db()
        root = mirror.item(scope.key) if scope.key != FOLDERS_KEY else None
        path = root.name if root is not None else scope.key
        mirror.keep_drives([other.key for other in scopes(self.settings) if other.key != scope.key])
        self.problems.append(SourceProblem(path, reason, denied=True))
        logger.warning("source %s: %s", self.name, reason)
