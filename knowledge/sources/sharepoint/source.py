"""SharePoint document libraries and OneDrive accounts as a Lore source (`kind = "sharepoint"`).

The source keeps a mirror of its drives' listings (`<state_dir>/<name>.sqlite3`), brings it
up to date with Graph's delta at each `list_files` (one request per drive when nothing
changed) and lists every file from it, with the drive's own sharing as principals. Paths
are "<drive name>/<folders>/<file name>"; links are the items' webUrl."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from knowledge.config import SharePointSourceSettings
from knowledge.errors import AccessDeniedError, ConfigurationError, SourceError
from knowledge.sources.base import SourceProblem, SyncState
from knowledge.sources.globs import PathFilter
from knowledge.sources.mirror import ListingMirror, MirroredFile
from knowledge.sources.sharepoint.auth import GraphTokens
from knowledge.sources.sharepoint.delta import Drive, DriveDelta
from knowledge.sources.sharepoint.graph import GraphClient, NotFound
from knowledge.types import SourceFile

logger = logging.getLogger(__name__)

# The drives behind configured sites are looked up again this often (a site may gain a
# document library); configured drive ids are looked up once.
SITE_LOOKUP_INTERVAL = timedelta(hours=24)
DRIVES_KEY = "sharepoint.drives"


class SharePointSource:
    """Microsoft Graph drives (SharePoint libraries, OneDrive accounts) of one app registration."""

    def __init__(
        self,
        settings: SharePointSourceSettings,
        state_dir: Path,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not settings.drives and not settings.sites:
            raise ConfigurationError(
                f"Source {settings.name!r} (sharepoint) names no drives and no sites; add drives = "
                '["b!..."] or sites = ["https://<tenant>.sharepoint.com/sites/<site>"] to its table.'
            )
        self.settings = settings
        self.name = settings.name
        self.max_file_bytes = settings.max_file_bytes
        self.root = f"sharepoint://{settings.name}"
        self.problems: list[SourceProblem] = []
        self._http = httpx.Client(timeout=settings.request_timeout_seconds)
        self._tokens = GraphTokens(settings, self._http)
        self.graph = GraphClient(settings.name, settings.graph_url, self._tokens, self._http, sleep)
        self._mirror = ListingMirror(Path(state_dir) / f"{settings.name}.sqlite3")
        resync = timedelta(hours=settings.full_resync_hours) if settings.full_resync_hours else None
        self._delta = DriveDelta(self.graph, self._mirror, settings.organisation_links_grant_everyone, resync)
        self._filter = PathFilter(settings.include, settings.exclude)
        self._listed: dict[str, MirroredFile] = {}  # path → file, from the last listing

    def __repr__(self) -> str:
        return f"SharePointSource(name={self.name!r}, graph_url={self.settings.graph_url!r})"

    def list_files(self) -> Iterator[SourceFile]:
        """Poll every drive, then yield every selected file of the mirror. A drive that
        refuses Lore's app is a `denied` problem (its files leave the index); one that fails
        otherwise is a problem too, and its files stay as last listed."""
        self.problems = []
        now = datetime.now(UTC)
        self._tokens.token()  # a refused sign-in stops here, before any drive is judged
        drives = self._drives(now, save=True)
        denied: set[str] = set()
        for drive in drives:
            try:
                self._delta.poll(drive, now)
            except AccessDeniedError as error:
                denied.add(drive.drive_id)
                self._problem(drive, str(error), denied=True)
            except SourceError as error:
                self._problem(drive, str(error), denied=False)
        # Drives no longer configured, or refused, are forgotten: a refused one starts again
        # from a full enumeration when access comes back.
        self._mirror.keep_drives(drive.drive_id for drive in drives if drive.drive_id not in denied)
        if not self.problems:
            self._mirror.mark_synced(now)
        listing = self._mirror.listing()
        if listing.detached:
            logger.warning("source %s: %d item(s) without a known folder not listed", self.name, len(listing.detached))
        self._listed = {file.path: file for file in listing.files if self._filter.selects(file.path)}
        for file in self._listed.values():
            yield file.source_file(self.name, self.root)

    def read_bytes(self, file: SourceFile) -> bytes:
        """The file's content, downloaded through its item's /content link, at most
        `max_file_bytes` + 1 bytes of it."""
        if file.source != self.name:
            raise SourceError(f"{file.relative_path} belongs to source {file.source!r}, not {self.name!r}")
        listed = self._listed.get(file.relative_path) or self._mirror.file_at(file.relative_path)
        if listed is None:
            raise SourceError(f"Source {self.name!r} has no file {file.relative_path} any more")
        item = listed.item
        return self.graph.download(
            f"/drives/{quote(item.drive_id)}/items/{quote(item.item_id)}/content", self.max_file_bytes
        )

    def file(self, relative_path: str) -> SourceFile:
        """The file as the mirror last listed it (no request to Graph)."""
        listed = self._mirror.file_at(relative_path)
        if listed is None:
            raise SourceError(
                f"Source {self.name!r} has no file {relative_path} in its last listing; paths start "
                "with the drive's name (`lore sources test` lists a few)."
            )
        return listed.source_file(self.name, self.root)

    def sync_state(self) -> SyncState | None:
        return self._mirror.sync_state()

    def check(self, limit: int) -> list[SourceFile]:
        """Sign in and read the first delta page of the first drive; nothing is saved.
        Paths are built from that page alone (folders not on it are left out)."""
        self._tokens.token()
        drives = self._drives(datetime.now(UTC), save=False)
        if not drives:
            raise SourceError(f"Source {self.name!r}: its sites hold no document library")
        drive = drives[0]
        page = self._delta.first_page(drive)
        by_id = {str(item["id"]): item for item in page if isinstance(item.get("id"), str)}
        files: list[SourceFile] = []
        for item in page:
            if "file" not in item or len(files) >= limit:
                continue
            files.append(
                SourceFile(
                    source=self.name,
                    root=self.root,
                    relative_path=_page_path(item, by_id, drive.label),
                    url=str(item.get("webUrl") or ""),
                    size=int(item.get("size") or 0),
                    mtime=0.0,
                    principals=None,
                )
            )
        return files

    def close(self) -> None:
        self._mirror.close()
        self._http.close()

    # -- drives ----------------------------------------------------------------------------

    def _drives(self, now: datetime, save: bool) -> list[Drive]:
        """The configured drives and those of the configured sites, with distinct labels;
        looked up in Graph only when the configuration changed or the sites' lookup is old."""
        config = {"drives": sorted(self.settings.drives), "sites": sorted(self.settings.sites)}
        stored = _loads(self._mirror.meta(DRIVES_KEY))
        if stored.get("config") == config and (not self.settings.sites or now - _time(stored) < SITE_LOOKUP_INTERVAL):
            return [Drive(*entry) for entry in stored.get("drives", [])]
        found: list[tuple[str, str, str]] = []
        for drive_id in self.settings.drives:
            try:
                info = self.graph.get_json(f"/drives/{quote(drive_id)}?$select=id,name,webUrl")
            except NotFound:
                raise SourceError(
                    f"Source {self.name!r}: Graph knows no drive {drive_id!r}; check `drives` in lore.toml "
                    "(a document library's id starts with b!)"
                ) from None
            found.append((drive_id, str(info.get("name") or drive_id), str(info.get("webUrl") or "")))
        for site in self.settings.sites:
            site_id = self._site_id(site)
            for info in self.graph.values(f"/sites/{quote(site_id)}/drives?$select=id,name,webUrl"):
                found.append((str(info["id"]), str(info.get("name") or info["id"]), str(info.get("webUrl") or "")))
        drives = _labelled(found)
        if save:
            entries = [[drive.drive_id, drive.label, drive.url] for drive in drives]
            self._mirror.set_meta(
                DRIVES_KEY, json.dumps({"config": config, "resolved_at": now.isoformat(), "drives": entries})
            )
        return drives

    def _site_id(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ConfigurationError(
                f"Source {self.name!r}: {url!r} is not a site address; write "
                "https://<tenant>.sharepoint.com/sites/<site>."
            )
        path = parts.path.strip("/")
        target = f"/sites/{parts.hostname}:/{quote(path)}" if path else f"/sites/{parts.hostname}"
        try:
            return str(self.graph.get_json(target + "?$select=id")["id"])
        except (NotFound, KeyError):
            raise SourceError(
                f"Source {self.name!r}: Graph knows no site at {url}; check `sites` in lore.toml "
                "(the address a browser shows for the site's home page)"
            ) from None

    def _problem(self, drive: Drive, reason: str, denied: bool) -> None:
        self.problems.append(SourceProblem(drive.label, reason, denied=denied))
        logger.warning("source %s: drive %s: %s", self.name, drive.label, reason)


def _labelled(found: list[tuple[str, str, str]]) -> list[Drive]:
    """Drives by id (each once), labelled by name; a name two drives share (every site has
    "Documents") gets the end of the drive id."""
    unique = list({drive_id: (drive_id, name, url) for drive_id, name, url in found}.values())
    names = [name.casefold() for _, name, _ in unique]
    return [
        Drive(drive_id, f"{name} ({drive_id[-6:]})" if names.count(name.casefold()) > 1 else name, url)
        for drive_id, name, url in unique
    ]


def _page_path(item: dict[str, Any], by_id: dict[str, dict[str, Any]], label: str) -> str:
    names: list[str] = []
    current: dict[str, Any] | None = item
    while current is not None and "root" not in current and len(names) < 64:
        names.append(str(current.get("name") or ""))
        current = by_id.get(str((current.get("parentReference") or {}).get("id")))
    return "/".join([label, *reversed(names)])


def _time(stored: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(stored.get("resolved_at")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def _loads(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
