"""Where a Teams message sits (personal chat, group chat, channel thread), who asked it, and
what the user typed once the bot's @mention is taken out. Turns an incoming activity into the
core's `Question`; nothing here knows about retrieval or models."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Literal

from botbuilder.schema import Activity, Entity

from bot.types import Asker, Place, Question

Scope = Literal["personal", "groupChat", "channel"]
Command = Literal["ask", "help", "feedback"]
_COMMANDS: dict[str, Command] = {"ask": "ask", "help": "help", "feedback": "feedback"}
_PLACES: dict[Scope, Place] = {"personal": "private", "groupChat": "group", "channel": "channel"}

_THREAD_MARKER = ";messageid="
_SPACES = re.compile(r"[ \t\u00a0]+")
_AT_TAG = re.compile(r"</?at[^>]*>", re.IGNORECASE)
_COMMAND = re.compile(r"^\s*(ask|help|feedback)\b[\s:]*(.*)$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Where:
    """The conversation a Teams activity belongs to, in the core's terms."""

    scope: Scope
    conversation_id: str  # the chat or channel (without the reply chain)
    thread_id: str  # the reply chain; follow-ups in it share the agent's thread memory
    in_reply_chain: bool = False  # a reply under an earlier channel post (Slack: in a thread)

    @property
    def place(self) -> Place:
        if self.in_reply_chain:
            return "thread"
        return _PLACES[self.scope]


@dataclass(frozen=True)
class Request:
    """What the user asked for: a question, help, or free-text feedback."""

    command: Command
    text: str  # the question, or the feedback text; empty for help


def where(activity: Activity) -> Where:
    """Locate an activity: personal chats and group chats are one running conversation each;
    a channel message lives in the reply chain named by `;messageid=` in its conversation id."""
    conversation = activity.conversation
    raw_id = conversation.id
    kind = (conversation.conversation_type or "").lower()
    if kind == "channel":
        base, _, root = raw_id.partition(_THREAD_MARKER)
        # A new channel post starts its own chain; Teams names the chain after the post's id.
        root = root or activity.id
        return Where("channel", base, f"{base}{_THREAD_MARKER}{root}", in_reply_chain=root != activity.id)
    if kind == "groupchat" or conversation.is_group:
        return Where("groupChat", raw_id, raw_id)
    return Where("personal", raw_id, raw_id)


def asker(activity: Activity, email: str | None = None) -> Asker:
    """The person behind an activity. The Azure AD object id is stable across bots and is what
    a directory knows, so it is preferred over the bot-scoped Teams user id. `email` (from the
    roster) decides which documents they may read; None holds only `everyone`."""
    account = activity.from_property
    return Asker(user_id=account.aad_object_id or account.id, display_name=account.name or "", email=email)


def mentions_bot(activity: Activity) -> bool:
    """True when one of the activity's mention entities names the bot (the recipient)."""
    return any(_mentioned_id(entity) == activity.recipient.id for entity in _mentions(activity))


def text_without_bot_mention(activity: Activity) -> str:
    """The message text with the bot's `<at>…</at>` mention removed and other users' mention
    tags reduced to their names. Matching is literal: names may hold regex characters."""
    text = activity.text or ""
    for entity in _mentions(activity):
        if _mentioned_id(entity) != activity.recipient.id:
            continue
        mention_text = entity.additional_properties.get("text") or ""
        if mention_text:
            text = text.replace(mention_text, " ")
            # Clients sometimes send the tag HTML-escaped in one place and raw in the other.
            text = text.replace(html.unescape(mention_text), " ")
    text = html.unescape(_AT_TAG.sub("", text))
    return _SPACES.sub(" ", text).strip()


def parse_request(text: str) -> Request:
    """Read a command from the start of the text ("help", "feedback …", "ask …");
    anything else is a question."""
    match = _COMMAND.match(text)
    if match is None:
        return Request("ask", text.strip())
    command = _COMMANDS[match.group(1).lower()]
    rest = match.group(2).strip()
    if command == "help" and rest.strip("!?. "):
        # "help me find the VPN guide" is a question, not the help command.
        return Request("ask", text.strip())
    return Request(command, "" if command == "help" else rest)


def question_for(activity: Activity, text: str, email: str | None = None) -> Question:
    """The core `Question` for a Teams message whose text has been cleaned and parsed."""
    place = where(activity)
    return Question(
        text=text,
        asker=asker(activity, email),
        conversation_id=place.conversation_id,
        thread_id=place.thread_id,
        platform="teams",
        place=place.place,
    )


def _mentions(activity: Activity) -> list[Entity]:
    return [e for e in activity.entities or [] if (e.type or "").lower() == "mention"]


def _mentioned_id(entity: object) -> str | None:
    mentioned = getattr(entity, "additional_properties", {}).get("mentioned") or {}
    return mentioned.get("id") if isinstance(mentioned, dict) else None
