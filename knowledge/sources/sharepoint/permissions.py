"""An item's sharing in Graph (`GET /drives/{d}/items/{id}/permissions`) as Lore principals.

Each item keeps its *own* permissions and whether it also inherits its parent's: Graph lists
an item's effective permissions, marking those that come from an ancestor with
`inheritedFrom`. Storing the item's own ones and following the parent chain at listing time
means a sharing change on a folder is one permissions request (the folder, which delta
reports with `Prefer: hierarchicalsharing`), and the files below it follow at once, instead
of waiting for delta to report every descendant. The drive's root item keeps everything it
lists, inherited or not: nothing above it is mirrored.

Never wider than Graph says: anonymous links grant nothing; links to anyone in the
organisation and grants to "Everyone (except external users)" grant `everyone` only when the
source's `organisation_links_grant_everyone` allows; identities without an e-mail address
or name Lore can match (applications, devices) grant nothing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from knowledge.errors import ConfigurationError
from knowledge.permissions.principals import group, user
from knowledge.types import EVERYONE

# Roles that let a grantee open the file. "sp.limited access" (traversal only) is absent:
# an unknown role grants nothing.
READ_ROLES = frozenset(
    {"read", "write", "owner", "sp.full control", "sp.design", "sp.edit", "sp.contribute", "sp.read", "sp.view only"}
)
# SharePoint's claims for the whole organisation (Everyone, Everyone except external users).
ORGANISATION_CLAIMS = ("c:0(.s|true", "spo-grid-all-users")


@dataclass(frozen=True)
class ItemSharing:
    """Who an item is shared with by itself, and whether its parent's sharing applies too."""

    own: frozenset[str]
    inherits: bool


def item_sharing(
    permissions: Iterable[Mapping[str, Any]], is_root: bool, organisation_grants_everyone: bool
) -> ItemSharing:
    """The principals of one item's permission resources."""
    own: set[str] = set()
    inherits = False
    for permission in permissions:
        if permission.get("inheritedFrom") and not is_root:
            inherits = True
            continue
        own |= _principals(permission, organisation_grants_everyone)
    return ItemSharing(frozenset(own), inherits)


def _principals(permission: Mapping[str, Any], organisation_grants_everyone: bool) -> set[str]:
    roles = permission.get("roles")
    if not isinstance(roles, list) or not READ_ROLES.intersection(str(role).casefold() for role in roles):
        return set()
    link = permission.get("link")
    if isinstance(link, Mapping):
        scope = str(link.get("scope") or "").casefold()
        if scope == "organization":
            return {EVERYONE} if organisation_grants_everyone else set()
        if scope != "users":  # anonymous, existingAccess (adds no reader), anything unknown
            return set()
    identities: list[Any] = []
    granted = permission.get("grantedToV2")
    if isinstance(granted, Mapping):
        identities.append(granted)
    many = permission.get("grantedToIdentitiesV2")
    if isinstance(many, list):
        identities.extend(many)
    principals: set[str] = set()
    for identity_set in identities:
        if isinstance(identity_set, Mapping):
            principals |= _identity_set(identity_set, organisation_grants_everyone)
    return principals


def _identity_set(identities: Mapping[str, Any], organisation_grants_everyone: bool) -> set[str]:
    principals: set[str] = set()
    for kind in ("user", "siteUser", "group", "siteGroup"):
        identity = identities.get(kind)
        if not isinstance(identity, Mapping):
            continue
        login = str(identity.get("loginName") or "").casefold()
        if any(claim in login for claim in ORGANISATION_CLAIMS):
            if organisation_grants_everyone:
                principals.add(EVERYONE)
            continue
        principal = _user(identity) if kind in ("user", "siteUser") else _group(identity)
        if principal is not None:
            principals.add(principal)
    return principals


def _user(identity: Mapping[str, Any]) -> str | None:
    for key in ("email", "userPrincipalName"):
        value = identity.get(key)
        if isinstance(value, str) and value:
            try:
                return user(value)
            except ConfigurationError:
                continue
    return None


def _group(identity: Mapping[str, Any]) -> str | None:
    for key in ("email", "displayName"):
        value = identity.get(key)
        if isinstance(value, str) and value.strip():
            try:
                principal = group(value)
            except ConfigurationError:
                continue
            # A group *named* "Everyone" is a group like any other, not the whole company:
            # `group()` would turn its name into the `everyone` principal.
            return None if principal == EVERYONE else principal
    return None
