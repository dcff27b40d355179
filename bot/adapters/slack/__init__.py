"""The Slack adapter: Slack events in, `Question`s to the agent, Block Kit answers out.

`slack_routes(services)` (in `routes.py`) mounts it on `lore serve`'s web app: over HTTP on
`/slack/events`, or over Socket Mode when `SLACK_APP_TOKEN` is set. Imported lazily: the
answer-log database imports this package's table module (`threads.py`), and opening a
`Database` should not pay for importing slack-bolt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.adapters.slack.app import build_slack_bot
    from bot.adapters.slack.routes import slack_routes

__all__ = ["build_slack_bot", "slack_routes"]


def __getattr__(name: str) -> Any:
    if name == "slack_routes":
        from bot.adapters.slack.routes import slack_routes

        return slack_routes
    if name == "build_slack_bot":
        from bot.adapters.slack.app import build_slack_bot

        return build_slack_bot
    raise AttributeError(name)
