"""Which OAuth scope each event and Web API method the adapter uses needs (from Slack's
reference pages). The manifest test checks the manifest asks for exactly these."""

from __future__ import annotations

from collections.abc import Iterable

EVENT_SCOPES: dict[str, str] = {
    "app_mention": "app_mentions:read",
    "message.im": "im:history",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.mpim": "mpim:history",
}

# Empty: the method needs no bot scope (it uses the app token, or any token).
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "apps.connections.open": (),  # app-level token with connections:write
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "views.open": (),
    # The asker's e-mail decides which documents they may read (bot.identity.SlackEmails).
    "users.info": ("users:read", "users:read.email"),
    # Whether a channel is shared with other organisations (bot.platforms.slack.membership);
    # each scope covers one kind of conversation (public, private, group DM).
    "conversations.info": ("channels:read", "groups:read", "mpim:read"),
}

COMMAND_SCOPE = "commands"


def required_scopes(events: Iterable[str], methods: Iterable[str], has_commands: bool) -> set[str]:
    """The bot scopes that subscribing to `events` and calling `methods` takes."""
    scopes = {EVENT_SCOPES[event] for event in events}
    scopes |= {scope for method in methods for scope in METHOD_SCOPES[method]}
    if has_commands:
        scopes.add(COMMAND_SCOPE)
    return scopes
