"""Brings the mirror of a Google Drive source up to date: a full listing the first time (and
whenever Drive refuses the saved page token), the changes feed after that."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from knowledge.config import GoogleDriveSourceSettings
from knowledge.errors import SourceError
from knowledge.sources.gdrive.client import DriveClient, PageTokenInvalid
from knowledge.sources.gdrive.sharing import own_principals
from knowledge.sources.mirror import ListingMirror, MirrorItem

logger = logging.getLogger(__name__)

FOLDER = "application/vnd.google-apps.folder"
# Google Docs Editors files have no bytes of their own: exported to a format the loaders read.
EXPORTS = {
    "application/vnd.google-apps.document": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ".docx",
    ),
    "application/vnd.google-apps.spreadsheet": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ".xlsx",
    ),
    "application/vnd.google-apps.presentation": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ".pptx",
    ),
}
GOOGLE_APPS = "application/vnd.google-apps."
# The mirror's key for the folders of `folders = [...]`: one changes feed (the account's own
# corpus) covers them all, so they share one cursor.
FOLDERS_KEY = "folders"


@dataclass(frozen=True)
class Scope:
    """One part of a source with its own changes feed: a shared drive, or the folders."""

    key: str  # the mirror's drive id
    drive: str | None  # the shared drive's id; None for the folders (the account's corpus)


def scopes(settings: GoogleDriveSourceSettings) -> list[Scope]:
    found = [Scope(drive, drive) for drive in settings.drives]
    if settings.folders:
        found.append(Scope(FOLDERS_KEY, None))
    return found


def export_of(mime_type: str) -> tuple[str, str] | None:
    """(export mime type, extension) for a Docs Editors file; None for other files."""
    return EXPORTS.get(mime_type)


class Updater:
    """Applies one scope's changes (or a full listing) to the mirror."""

    def __init__(self, settings: GoogleDriveSourceSettings, client: DriveClient, mirror: ListingMirror) -> None:
        self.settings = settings
        self.client = client
        self.mirror = mirror
        self.members_check_seconds = settings.members_check_minutes * 60

    def update(self, scope: Scope) -> None:
        """Bring the scope up to date; SourceError / AccessDeniedError from the client."""
        token = self.mirror.cursor(scope.key)
        if token is None:
            self.relist(scope)
            return
        try:
            changed = False
            for changes, new_token in self.client.changes(token, scope.drive):
                upserts, removals, relist = self._interpret(scope, changes)
                if relist:
                    # A folder moved into the folders from outside: what is below it never
                    # appears in the feed, so the folders are listed again.
                    logger.info("source %s: a folder moved in; listing the folders again", self.settings.name)
                    self.relist(scope)
                    return
                changed = changed or bool(upserts or removals)
                if new_token is not None and scope.drive and (changed or self._members_due(scope.drive)):
                    upserts = [*upserts, self._drive_root(scope.drive)]
                self.mirror.apply(scope.key, upserts, removals, cursor=new_token)
        except PageTokenInvalid:
            logger.info(
                "source %s: Drive refused the saved page token; listing %s again", self.settings.name, scope.key
            )
            self.relist(scope)

    def relist(self, scope: Scope) -> None:
        """A complete listing; it replaces what the mirror had only once it is complete. The
        page token is taken first, so a change made while listing comes in the next poll."""
        token = self.client.start_page_token(scope.drive)
        items: dict[str, MirrorItem] = {}
        if scope.drive is not None:
            items[scope.drive] = self._drive_root(scope.drive)
            listed: Iterable[dict[str, Any]] = _flatten(self.client.files(scope.drive))
        else:
            roots = [self.client.file(folder) for folder in self.settings.folders]
            for root in roots:
                folder = self._item(root, scope, parent=None)
                if folder is None or not folder.is_folder:
                    raise SourceError(f"Source {self.settings.name!r}: {root['id']} in `folders` is not a folder.")
                items[folder.item_id] = folder
            listed = _below({root["id"] for root in roots}, list(_flatten(self.client.files(None))))
        for resource in listed:  # a page repeated gives the same id twice: the last wins
            item = self._item(resource, scope)
            if item is not None and resource["id"] not in self.settings.folders:
                items[item.item_id] = item
        self.mirror.replace_drive(scope.key, items.values(), token)

    # -- changes ----------------------------------------------------------------------------

    def _interpret(self, scope: Scope, changes: list[dict[str, Any]]) -> tuple[list[MirrorItem], list[str], bool]:
        upserts: list[MirrorItem] = []
        removals: list[str] = []
        for change in changes:
            item_id = str(change["fileId"])
            resource = change.get("file")
            if change.get("removed") or resource is None or resource.get("trashed"):
                removals.append(item_id)
                continue
            outside = (
                not self._in_folders(resource, upserts)
                if scope.drive is None
                else resource.get("driveId") != scope.drive
            )
            if outside:  # moved out of what this source reads
                removals.append(item_id)
                continue
            known = self.mirror.item(item_id)
            # A configured folder stays a root (its own parent lies outside the source).
            item = self._item(resource, scope, parent=None if item_id in self.settings.folders else False)
            if item is None:
                removals.append(item_id)
                continue
            upserts.append(item)
            if item.is_folder and known is None and scope.drive is None:
                return [], [], True
            if item.is_folder and known is None:
                upserts.extend(self._subtree(item.item_id, scope))
        return upserts, removals, False

    def _subtree(self, folder: str, scope: Scope) -> Iterator[MirrorItem]:
        """Everything below a folder new to the mirror (moved in from another drive)."""
        for resource in _flatten(self.client.files(scope.drive, parent=folder)):
            item = self._item(resource, scope)
            if item is not None:
                yield item
                if item.is_folder:
                    yield from self._subtree(item.item_id, scope)

    def _in_folders(self, resource: dict[str, Any], pending: list[MirrorItem]) -> bool:
        """Whether an item of the account's corpus lies in one of the configured folders: its
        parent is one of them or is in the mirror (or was just added)."""
        if resource["id"] in self.settings.folders:
            return True
        parent = (resource.get("parents") or [None])[0]
        if parent is None:
            return False
        return (
            parent in self.settings.folders
            or self.mirror.item(parent) is not None
            or any(item.item_id == parent for item in pending)
        )

    def _members_due(self, drive: str) -> bool:
        root = self.mirror.item(drive)
        checked = json.loads(root.extra).get("members_checked", 0) if root and root.extra else 0
        return bool(time.time() - float(checked) >= self.members_check_seconds)

    # -- items --------------------------------------------------------------------------------

    def _drive_root(self, drive: str) -> MirrorItem:
        """A shared drive's root: its name starts every path, its members read everything in
        it. Members are asked each time (a membership change shows in no file's change); the
        name only when not known yet."""
        members = self.client.permissions(drive, drive)
        known = self.mirror.item(drive)
        return MirrorItem(
            item_id=drive,
            drive_id=drive,
            parent_id=None,
            name=known.name if known is not None else self.client.drive_name(drive),
            is_folder=True,
            own_principals=own_principals(members, self.settings.everyone_domains),
            inherits=False,
            extra=json.dumps({"members_checked": time.time()}),
        )

    def _item(self, resource: dict[str, Any], scope: Scope, parent: str | None | bool = False) -> MirrorItem | None:
        """The mirror's record of a Drive file resource; None for Docs Editors files that do
        not export to a format Lore reads (forms, drawings, shortcuts...)."""
        mime = str(resource.get("mimeType", ""))
        is_folder = mime == FOLDER
        name = str(resource.get("name", ""))
        export = export_of(mime)
        if mime.startswith(GOOGLE_APPS) and not is_folder:
            if export is None:
                return None
            name += export[1]
        if parent is False:
            parent = (resource.get("parents") or [None])[0]
        return MirrorItem(
            item_id=str(resource["id"]),
            drive_id=scope.key,
            parent_id=parent if isinstance(parent, str) else None,
            name=name,
            is_folder=is_folder,
            # Docs Editors files have no size: 0, and the sync's sha256 of the export tells
            # whether the content changed when modifiedTime did.
            size=int(resource.get("size", 0)),
            modified=_epoch(resource.get("modifiedTime")),
            url=str(resource.get("webViewLink", "")),
            version=str(resource.get("md5Checksum") or resource.get("version", "")),
            own_principals=self._own(resource),
            inherits=parent is not None and not resource.get("inheritedPermissionsDisabled", False),
            extra=json.dumps({"mime": mime}),
        )

    def _own(self, resource: dict[str, Any]) -> frozenset[str] | None:
        """Principals granted on the item itself. A shared-drive item without augmented
        permissions has none of its own (no request); otherwise Drive is asked. None (readable
        by nobody, below it too) when Drive will not tell: Lore never guesses who may read."""
        if resource.get("driveId") and resource.get("hasAugmentedPermissions") is False:
            return frozenset()
        try:
            permissions = self.client.permissions(str(resource["id"]), None)
        except SourceError as error:  # refused (a reader may not list sharing) or just deleted
            logger.warning(
                "source %s: sharing of item %s unknown, readable by nobody: %s",
                self.settings.name,
                resource["id"],
                error,
            )
            return None
        return own_principals(permissions, self.settings.everyone_domains)


def _flatten(pages: Iterable[list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    for page in pages:
        yield from page


def _below(roots: set[str], resources: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The resources under one of `roots`, by their parent chains within the listing."""
    parents = {resource["id"]: (resource.get("parents") or [None])[0] for resource in resources}
    inside: dict[str, bool] = {root: True for root in roots}

    def under(item_id: str | None, seen: set[str]) -> bool:
        if item_id is None or item_id in seen or item_id not in parents:
            return inside.get(item_id or "", False)
        if item_id not in inside:
            inside[item_id] = under(parents[item_id], seen | {item_id})
        return inside[item_id]

    for resource in resources:
        if under(parents.get(resource["id"]), {resource["id"]}):
            yield resource


def _epoch(text: Any) -> float:
    if not text:
        return 0.0
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC).timestamp()
