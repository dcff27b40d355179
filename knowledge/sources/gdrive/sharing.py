"""Drive permissions as Lore principals. Only what surely grants reading maps to a principal:
a user or a group by e-mail address, a domain share when it is discoverable and the domain is
one the admin listed; "anyone with the link" and everything unknown grant nothing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from knowledge.errors import ConfigurationError
from knowledge.permissions.principals import group, user
from knowledge.types import EVERYONE


def principal(permission: Mapping[str, Any], everyone_domains: Iterable[str]) -> str | None:
    """The principal a permission grants, or None when it grants no one Lore can name."""
    if permission.get("deleted"):  # an account that no longer exists
        return None
    kind = permission.get("type")
    try:
        if kind == "user" and permission.get("emailAddress"):
            return user(str(permission["emailAddress"]))
        if kind == "group" and permission.get("emailAddress"):
            return group(str(permission["emailAddress"]))
    except ConfigurationError:  # a malformed address from the drive: grants nothing
        return None
    if kind == "domain" and permission.get("allowFileDiscovery") is True:
        domain = str(permission.get("domain", "")).casefold()
        if domain and domain in {name.casefold() for name in everyone_domains}:
            return EVERYONE
    return None  # "anyone", non-discoverable domain shares, other domains, unknown types


def is_inherited(permission: Mapping[str, Any]) -> bool:
    """True when Drive says the permission comes from a folder above or the shared drive's
    membership (permissionDetails, on shared-drive items), not from the item itself."""
    details = permission.get("permissionDetails") or []
    return bool(details) and all(detail.get("inherited") is True for detail in details)


def own_principals(permissions: Iterable[Mapping[str, Any]], everyone_domains: Iterable[str]) -> frozenset[str]:
    """The principals granted on the item itself. Inherited permissions are left to the
    mirror's parent chain, so a change on a folder (or to the drive's members) reaches
    every item below it without asking Drive about each."""
    domains = list(everyone_domains)
    found = (principal(permission, domains) for permission in permissions if not is_inherited(permission))
    return frozenset(name for name in found if name is not None)
