"""Microsoft Teams adapter: Bot Framework activities in, Adaptive Cards out.

`teams_routes(services)` adds `POST /api/messages` to the web app. It is imported lazily
because the answer-log database imports this package's table module, and every `Database`
open should not pay for importing botbuilder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.adapters.teams.routes import teams_routes

__all__ = ["teams_routes"]


def __getattr__(name: str) -> Any:
    if name == "teams_routes":
        from bot.adapters.teams.routes import teams_routes

        return teams_routes
    raise AttributeError(name)
