"""Renders an `Answer` as Teams messages: Adaptive Cards (schema 1.5) with the answer text in
the Markdown subset Teams renders, quoted evidence, linked sources and feedback buttons.

Teams rejects a message over about 28 KB, so every message is measured as serialized JSON and
a long answer is spread over several cards; the last one carries sources and feedback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from botbuilder.schema import Activity, ActivityTypes, Attachment

from bot.types import Answer, Citation, Evidence

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.5"
# Teams' limit is ~28 KB for the whole activity; the SDK adds the envelope (conversation,
# from, recipient, serviceUrl, replyToId: well under 1 KB), so cards get the rest minus margin.
MAX_MESSAGE_BYTES = 26_000
MAX_BLOCK_CHARS = 3_000
MAX_EVIDENCE = 3
SUMMARY_CHARS = 200
TRIMMED_NOTE = "\n\n_(shortened to fit in one Teams message)_"
FEEDBACK_ACTION = "lore.feedback"  # marks our Action.Submit payloads among other card submits

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_STAR_BULLET = re.compile(r"^([ \t]*)[*+][ \t]+", re.MULTILINE)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_MARKDOWN_MARKS = re.compile(r"[*_`#>]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# What a TextBlock's Markdown would read as syntax in quoted text: emphasis, links and images
# ([ ] !), code, strike, and `<at>`-style tags; at a line start, also lists, headings, quotes.
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>~!|])")
_MARKDOWN_LINE_START = re.compile(r"^([ \t]*)([-+#>]|\d+(?=[.)]))", re.MULTILINE)


def answer_activities(answer: Answer) -> list[Activity]:
    """One or more message activities for an answer, each under Teams' size limit. The last
    enables Teams' built-in feedback buttons and carries the fallback 👍/👎 actions."""
    answer_blocks = list(_answer_blocks(answer.text))
    tail = _tail_blocks(answer)
    actions = _feedback_actions(answer.id)
    summary = _summary(answer.text)

    messages: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for block in answer_blocks:
        if current and _card_bytes(current + [block], []) > MAX_MESSAGE_BYTES:
            messages.append(current)
            current = []
        current.append(block)
    if current and _card_bytes(current + tail, actions) > MAX_MESSAGE_BYTES:
        messages.append(current)
        current = []
    final_body = current + tail
    while _card_bytes(final_body, actions) > MAX_MESSAGE_BYTES and len(final_body) > 1:
        final_body.pop()  # only a pathological number of sources gets here; drop the last ones

    activities = [_message(_card(body, []), summary) for body in messages]
    final = _message(_card(final_body, actions), summary)
    # Teams shows its own 👍/👎 under the message and sends a `message/submitAction` invoke.
    final.channel_data = {"feedbackLoopEnabled": True}
    activities.append(final)
    return activities


def streamed_final_activity(answer: Answer) -> Activity:
    """The message that ends a streamed reply: the answer as Markdown text (what was streamed,
    now final) and a card below it with evidence, sources and the feedback buttons. Trimmed,
    with a note, in the rare case it would not fit in one Teams message."""
    body = _tail_blocks(answer)
    actions = _feedback_actions(answer.id)
    while _card_bytes(body, actions) > MAX_MESSAGE_BYTES // 2 and body:
        body.pop()
    activity = _message(_card(body, actions), _summary(answer.text))
    activity.text_format = "markdown"
    activity.channel_data = {"feedbackLoopEnabled": True}
    text = teams_markdown(answer.text)
    activity.text = text
    while (excess := activity_bytes(activity) - MAX_MESSAGE_BYTES) > 0:
        text = text[: max(0, len(text) - excess - len(TRIMMED_NOTE))].rstrip()
        activity.text = f"{text}…{TRIMMED_NOTE}"
    return activity


def text_activity(markdown: str) -> Activity:
    """A plain Markdown message (help, welcome, acknowledgements, apologies)."""
    return Activity(type=ActivityTypes.message, text=markdown, text_format="markdown")


def activity_bytes(activity: Activity) -> int:
    """Size of an activity as it goes over the wire (UTF-8 JSON)."""
    return len(json.dumps(activity.serialize(), ensure_ascii=False).encode("utf-8"))


def teams_markdown(text: str) -> str:
    """Map Markdown to the subset a Teams TextBlock renders: headings become bold lines,
    `*` bullets become `-` bullets, inline code loses its backticks (Teams shows them raw)."""
    text = _HEADING.sub(r"**\1**", text)
    text = _STAR_BULLET.sub(r"\1- ", text)
    return _INLINE_CODE.sub(r"\1", text)


def _answer_blocks(text: str) -> Iterator[dict[str, Any]]:
    position = 0
    for fence in _FENCE.finditer(text):
        yield from _prose_blocks(text[position : fence.start()])
        for piece in _pieces(fence.group(1).rstrip("\n"), MAX_BLOCK_CHARS):
            yield _text_block(piece, fontType="Monospace")
        position = fence.end()
    yield from _prose_blocks(text[position:])


def _prose_blocks(text: str) -> Iterator[dict[str, Any]]:
    text = text.strip()
    if text:
        for piece in _pieces(teams_markdown(text), MAX_BLOCK_CHARS):
            yield _text_block(piece)


def _pieces(text: str, limit: int) -> Iterator[str]:
    """Split text at paragraph, then sentence, then hard boundaries into pieces ≤ limit."""
    if len(text) <= limit:
        yield text
        return
    for separator in ("\n\n", "\n", None):
        parts = text.split(separator) if separator else _SENTENCE_END.split(text)
        if len(parts) > 1 and max(len(part) for part in parts) < len(text):
            joiner = separator or " "
            buffer = ""
            for part in parts:
                candidate = f"{buffer}{joiner}{part}" if buffer else part
                if len(candidate) <= limit:
                    buffer = candidate
                    continue
                if buffer:
                    yield buffer
                if len(part) <= limit:
                    buffer = part
                else:
                    yield from _pieces(part, limit)
                    buffer = ""
            if buffer:
                yield buffer
            return
    for start in range(0, len(text), limit):
        yield text[start : start + limit]


def _tail_blocks(answer: Answer) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for item in answer.evidence[:MAX_EVIDENCE]:
        blocks.append(_evidence_block(item))
    if answer.citations:
        blocks.append(_text_block("**Sources**", separator=True, spacing="Medium"))
        blocks.extend(_text_block(_source_line(c), spacing="None") for c in answer.citations)
    return blocks


def _evidence_block(item: Evidence) -> dict[str, Any]:
    quote = item.quote if len(item.quote) <= MAX_BLOCK_CHARS else item.quote[:MAX_BLOCK_CHARS] + "…"
    origin = item.title or item.source
    return {
        "type": "Container",
        "style": "emphasis",
        "items": [
            _text_block(f"“{escape_markdown(quote)}”", isSubtle=True),
            _text_block(f"— {escape_markdown(origin)}", size="Small", isSubtle=True, spacing="None"),
        ],
    }


def escape_markdown(text: str) -> str:
    """`text` shown as written in a Markdown TextBlock: a passage quoted as evidence is the
    document's words, not formatting, so it can make no link, image, mention or list."""
    text = _MARKDOWN_INLINE.sub(r"\\\1", text)
    # "- x" and "# x" lose their meaning with a backslash before the mark; "1. x" after the number.
    return _MARKDOWN_LINE_START.sub(
        lambda m: f"{m.group(1)}{m.group(2)}\\" if m.group(2)[0].isdigit() else f"{m.group(1)}\\{m.group(2)}",
        text,
    )


def _source_line(citation: Citation) -> str:
    label = citation.title or citation.source
    if citation.heading and citation.heading != label:
        label = f"{label} — {citation.heading}"
    label = _plain(label).replace("[", "(").replace("]", ")")
    if citation.url.startswith(("https://", "http://")):
        return f"[{citation.number}] [{label}]({citation.url})"
    # Teams cannot open file paths; show where the document lives instead of a dead link.
    return f"[{citation.number}] {label} ({citation.source})"


def _feedback_actions(answer_id: str) -> list[dict[str, Any]]:
    def data(rating: str) -> dict[str, Any]:
        return {"action": FEEDBACK_ACTION, "answerId": answer_id, "rating": rating}

    details = {
        "type": "AdaptiveCard",
        "body": [
            {
                "type": "Input.Text",
                "id": "whatWasWrong",
                "label": "What was wrong? (optional)",
                "isMultiline": True,
                "maxLength": 2000,
            },
            {
                "type": "Input.Text",
                "id": "correction",
                "label": "What is the right answer? (optional)",
                "isMultiline": True,
                "maxLength": 2000,
            },
        ],
        "actions": [{"type": "Action.Submit", "title": "Send feedback", "data": data("not_helpful")}],
    }
    return [
        {"type": "Action.Submit", "title": "👍 Helpful", "data": data("helpful")},
        {"type": "Action.ShowCard", "title": "👎 Not helpful", "card": details},
    ]


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if actions:
        card["actions"] = actions
    return card


def _card_bytes(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> int:
    return activity_bytes(_message(_card(body, actions), ""))


def _message(card: dict[str, Any], summary: str) -> Activity:
    # `summary` is what Teams shows in notifications and the activity feed for a card; `text`
    # would be rendered above the card and repeat the answer.
    return Activity(
        type=ActivityTypes.message,
        summary=summary,
        attachments=[Attachment(content_type=CARD_CONTENT_TYPE, content=card)],
    )


def _text_block(text: str, **properties: object) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **properties}


def _summary(text: str) -> str:
    plain = " ".join(_plain(text).split())
    return plain if len(plain) <= SUMMARY_CHARS else plain[: SUMMARY_CHARS - 1].rstrip() + "…"


def _plain(text: str) -> str:
    return _MARKDOWN_MARKS.sub("", text)
