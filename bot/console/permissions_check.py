"""The Sources page's two checks: `acl explain` for a path (who may read it, and which rule
decided), and "who can see this" (may the person with this e-mail read it)."""

from __future__ import annotations

from typing import Any

from bot.app import Services
from bot.console.lookups import SourceLookups
from bot.policies import build_permission_policy
from bot.types import Asker
from knowledge.errors import LoreError
from knowledge.permissions.policy import PermissionExplanation
from knowledge.types import EVERYONE


def explain(services: Services, lookups: SourceLookups, path: str, source_name: str | None) -> dict[str, Any]:
    """Who may read the document at `path` (relative to its source, or absolute), and why;
    {"error": ...} when the path is in no source."""
    try:
        explanation, note = _explanation(services, lookups, path, source_name)
    except LoreError as error:
        return {"path": path, "error": str(error)}
    return {**explanation.to_dict(), "indexed": note is None, "note": note or ""}


def who_can_see(
    services: Services, lookups: SourceLookups, path: str, source_name: str | None, email: str
) -> dict[str, Any]:
    """Whether the person with `email` may read the document at `path`, with the principals
    on both sides."""
    try:
        explanation, _ = _explanation(services, lookups, path, source_name)
        held = services.access.principals(Asker(user_id=email, email=email))
    except LoreError as error:
        return {"path": path, "email": email, "error": str(error)}
    shared = explanation.principals & held
    return {
        "path": explanation.path,
        "source": explanation.source,
        "email": email,
        "may_read": bool(shared),
        "because": sorted(shared),
        "readers": sorted(explanation.principals),
        "holds": sorted(held),
        "everyone": EVERYONE in explanation.principals,
    }


def _explanation(
    services: Services, lookups: SourceLookups, path: str, source_name: str | None
) -> tuple[PermissionExplanation, str | None]:
    file, note = lookups.document(services.settings, path, source_name)
    return build_permission_policy(services.settings).explain(file), note
