"""Slack message text and context to the core's `Question`."""

from __future__ import annotations

import html
import re

from bot.types import Asker, Place, Question

_USER = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#[A-Z0-9]+\|([^>]*)>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(\w+)(?:\^[^|>]*)?(?:\|([^>]*))?>")


def mentions(text: str, user_id: str | None) -> bool:
    """Whether the Slack-formatted `text` mentions `user_id`."""
    return user_id is not None and any(m.group(1) == user_id for m in _USER.finditer(text))


def clean_text(text: str, bot_user_id: str | None) -> str:
    """Slack's wire format to what a person typed: the bot's mention removed, other mentions,
    channels and links as readable text, entities unescaped."""

    def user(match: re.Match[str]) -> str:
        return "" if match.group(1) == bot_user_id else f"@{match.group(1)}"

    text = _USER.sub(user, text)
    text = _CHANNEL.sub(lambda m: f"#{m.group(1)}", text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    text = _SPECIAL.sub(lambda m: f"@{m.group(2) or m.group(1)}", text)
    return " ".join(html.unescape(text).split())


def place_of(channel_id: str, in_thread: bool) -> Place:
    """Who can read the reply: a DM is private; a reply inside an existing thread is a thread;
    otherwise a channel (C…) or a private group / group DM (G…)."""
    if channel_id.startswith("D"):
        return "private"
    if in_thread:
        return "thread"
    return "group" if channel_id.startswith("G") else "channel"


def slack_question(
    text: str,
    user_id: str,
    channel_id: str,
    thread_id: str,
    place: Place,
    email: str | None = None,
    groups: tuple[str, ...] = (),
) -> Question:
    """The core `Question`; `email` (from `users.info`) decides which documents the asker may
    read — None holds only `everyone`; `groups` are granted by configuration (guests)."""
    return Question(
        text=text,
        asker=Asker(user_id=user_id, email=email, groups=groups),
        conversation_id=channel_id,
        thread_id=thread_id,
        platform="slack",
        place=place,
    )
