"""Bringing the mirror of one drive up to date with Graph's driveItem delta.

The first poll enumerates the drive from scratch (`GET /drives/{id}/root/delta`, every page)
and replaces the drive's items in the mirror in one transaction with the deltaLink of the
last page. Later polls follow the saved deltaLink: each page is applied with the ids it
names (the last occurrence of an item wins; `deleted` items leave at once), and the new
deltaLink is saved with the last page, so a poll that fails half way is redone from the old
one. `410 Gone` means the link expired: a fresh enumeration starts (from the Location Graph
gives) and replaces the drive only once it is complete; until then the mirror, and so the
index, keeps what it had.

Delta never sends `parentReference.path`, so items are kept by id with their parent id, and
paths come from the mirror. Every item delta reports (a file, its folders, the root) has its
permissions read again: `Prefer: deltashowsharingchanges` makes Graph report items whose
sharing changed, but it annotates (`@microsoft.graph.sharedChanged`) files only, not folders,
and a stale permission is a leak, so an item's being reported is reason enough."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from knowledge.errors import AccessDeniedError, SourceError
from knowledge.loaders import is_supported
from knowledge.sources.mirror import ListingMirror, MirrorItem
from knowledge.sources.sharepoint.graph import GraphClient, NotFound, ResyncRequired
from knowledge.sources.sharepoint.permissions import item_sharing

logger = logging.getLogger(__name__)

# Graph reports items whose sharing changed, and sharing only where it is set (the root of
# each permission hierarchy), as the delta documentation describes.
PREFER = {
    "Prefer": "deltashowremovedasdeleted, deltatraversepermissiongaps, deltashowsharingchanges, hierarchicalsharing"
}
_ENUMERATED = "sharepoint.enumerated."  # + drive id: when it was last enumerated in full
# Permission reads run side by side: a first enumeration reads one per item.
PERMISSION_WORKERS = 8


@dataclass(frozen=True)
class Drive:
    """A document library or OneDrive: its id, the name that starts its files' paths, and
    its web address."""

    drive_id: str
    label: str
    url: str = ""


class DriveDelta:
    """Polls drives of one source into its mirror."""

    def __init__(
        self,
        graph: GraphClient,
        mirror: ListingMirror,
        organisation_grants_everyone: bool,
        full_resync: timedelta | None = None,
    ) -> None:
        self.graph = graph
        self.mirror = mirror
        self.organisation_grants_everyone = organisation_grants_everyone
        self.full_resync = full_resync  # None: only when Graph asks (410)

    def poll(self, drive: Drive, now: datetime) -> None:
        """Bring `drive` up to date in the mirror. Raises AccessDeniedError when Graph
        refuses the app, SourceError for anything else (the mirror keeps what it had)."""
        cursor = self.mirror.cursor(drive.drive_id)
        if cursor is None or self._resync_due(drive, now):
            self._enumerate(drive, _start(drive), now)
            return
        try:
            self._follow(drive, cursor, now)
        except ResyncRequired as gone:
            logger.info("source %s: drive %s needs a fresh enumeration (410)", self.graph.source, drive.label)
            self._enumerate(drive, gone.location or _start(drive), now)

    def first_page(self, drive: Drive) -> list[dict[str, Any]]:
        """The first page of a fresh enumeration, for `lore sources test`; nothing is saved."""
        return [
            item for item in self.graph.get_json(_start(drive), PREFER).get("value") or [] if isinstance(item, dict)
        ]

    def _follow(self, drive: Drive, cursor: str, now: datetime) -> None:
        url: str | None = cursor
        while url is not None:
            page = self.graph.get_json(url, PREFER)
            changes = _last_wins(page.get("value") or [])
            removals = [item_id for item_id, item in changes.items() if "deleted" in item]
            upserts = self._mirror_items(drive, [item for item in changes.values() if "deleted" not in item])
            url, delta_link = _links(page, self.graph.source, drive)
            self.mirror.apply(drive.drive_id, upserts, removals, cursor=delta_link, now=now)

    def _enumerate(self, drive: Drive, start: str, now: datetime) -> None:
        items: dict[str, dict[str, Any]] = {}
        url: str | None = start
        delta_link: str | None = None
        while url is not None:
            page = self.graph.get_json(url, PREFER)
            for item_id, item in _last_wins(page.get("value") or []).items():
                items.pop(item_id, None)  # the last occurrence decides, and where it stands
                if "deleted" not in item:
                    items[item_id] = item
            url, delta_link = _links(page, self.graph.source, drive)
        assert delta_link is not None  # _links raises when a last page has none
        self.mirror.replace_drive(drive.drive_id, self._mirror_items(drive, list(items.values())), delta_link, now)
        self.mirror.set_meta(_ENUMERATED + drive.drive_id, now.isoformat())

    def _resync_due(self, drive: Drive, now: datetime) -> bool:
        if self.full_resync is None:
            return False
        last = self.mirror.meta(_ENUMERATED + drive.drive_id)
        try:
            return last is None or now - datetime.fromisoformat(last) >= self.full_resync
        except ValueError:
            return True

    def _mirror_items(self, drive: Drive, items: list[dict[str, Any]]) -> list[MirrorItem]:
        placed = [item for item in items if _placeable(item, self.graph.source)]
        with ThreadPoolExecutor(PERMISSION_WORKERS) as pool:
            return [entry for entry in pool.map(lambda item: self._mirror_item(drive, item), placed) if entry]

    def _mirror_item(self, drive: Drive, item: Mapping[str, Any]) -> MirrorItem | None:
        item_id = str(item["id"])
        is_root = "root" in item
        is_file = "file" in item and not is_root
        name = str(item.get("name") or "")
        own: frozenset[str] | None = None
        inherits = False
        # Unsupported files are never read: their sharing is not worth a request.
        if not is_file or is_supported(Path(name)):
            try:
                sharing = item_sharing(
                    self.graph.values(f"/drives/{quote(drive.drive_id)}/items/{quote(item_id)}/permissions"),
                    is_root,
                    self.organisation_grants_everyone,
                )
            except NotFound:
                return None  # gone since delta reported it: the next poll says so
            except AccessDeniedError as error:
                # Lore may list the item but not its sharing: readable by nobody.
                logger.warning("source %s: %s is readable by nobody: %s", self.graph.source, name, error)
            else:
                own, inherits = sharing.own, sharing.inherits
        parent = item.get("parentReference") or {}
        return MirrorItem(
            item_id=item_id,
            drive_id=drive.drive_id,
            parent_id=None if is_root else str(parent.get("id")),
            name=drive.label if is_root else name,
            is_folder=not is_file,
            size=_int(item.get("size")) if is_file else 0,
            modified=_epoch(item.get("lastModifiedDateTime")),
            url=str(item.get("webUrl") or (drive.url if is_root else "")),
            version=str(item.get("cTag") or item.get("eTag") or ""),
            own_principals=own,
            inherits=inherits,
        )


def _start(drive: Drive) -> str:
    return f"/drives/{quote(drive.drive_id)}/root/delta"


def _last_wins(values: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """The page's items by id, each as its last occurrence says."""
    changes: dict[str, dict[str, Any]] = {}
    for value in values:
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            changes.pop(value["id"], None)
            changes[value["id"]] = value
    return changes


def _links(page: Mapping[str, Any], source: str, drive: Drive) -> tuple[str | None, str | None]:
    """(nextLink, deltaLink) of a page: one of them, or Graph's answer is broken."""
    next_link, delta_link = page.get("@odata.nextLink"), page.get("@odata.deltaLink")
    if isinstance(next_link, str):
        return next_link, None
    if isinstance(delta_link, str):
        return None, delta_link
    raise SourceError(f"Source {source!r}: a delta page of drive {drive.label} has neither nextLink nor deltaLink")


def _placeable(item: Mapping[str, Any], source: str) -> bool:
    """A root, or an item whose parent Graph names (delta never gives paths)."""
    if "root" in item:
        return True
    parent = item.get("parentReference")
    if isinstance(parent, Mapping) and isinstance(parent.get("id"), str):
        return True
    logger.warning("source %s: item %s has no parent id; skipped", source, item.get("id"))
    return False


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _epoch(value: Any) -> float:
    """lastModifiedDateTime (ISO 8601, "Z") in epoch seconds; 0 when absent or unreadable."""
    if not isinstance(value, str):
        return 0.0
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
