"""An `Answer` as Slack messages: Block Kit within Slack's limits, plus a plain `text` fallback.

Slack rejects a whole message when one limit is exceeded (`invalid_blocks`, `msg_too_long`),
so every builder here cuts or splits to fit rather than hoping the answer is short.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bot.platforms.slack.mrkdwn import escape, link, plain_text, to_mrkdwn
from bot.types import Answer, Citation, Evidence

# Slack's documented limits (https://api.slack.com/reference/block-kit/blocks).
SECTION_TEXT_LIMIT = 3000
BLOCKS_PER_MESSAGE = 50
MESSAGE_TEXT_LIMIT = 40_000
CONTEXT_ELEMENTS_LIMIT = 10
# The notification fallback is shown in previews; a few hundred characters is plenty.
FALLBACK_TEXT_LIMIT = 3000
QUOTE_LIMIT = 500

ACTION_HELPFUL = "lore_helpful"
ACTION_NOT_HELPFUL = "lore_not_helpful"
ACTION_SHARE = "lore_share"
FEEDBACK_MODAL = "lore_feedback_modal"
WRONG_BLOCK = "wrong"
RIGHT_BLOCK = "right"
INPUT_ACTION = "value"

PLACEHOLDER_TEXT = "Looking through the docs…"


@dataclass(frozen=True)
class SlackMessage:
    """What goes into chat.postMessage / chat.update / chat.postEphemeral besides the channel."""

    text: str
    blocks: tuple[dict[str, Any], ...]

    def payload(self) -> dict[str, Any]:
        # No link previews: Slack's servers would fetch every URL in the message at once, a
        # request that needs no click (an answer's links are checked, but a preview of even
        # an allowed link is not something an answer needs).
        return {
            "text": self.text,
            "blocks": list(self.blocks),
            "unfurl_links": False,
            "unfurl_media": False,
        }


@dataclass(frozen=True)
class AnswerContent:
    """The parts of an answer a message shows; built from a fresh `Answer` or a stored one."""

    answer_id: str
    text: str
    citations: tuple[Citation, ...]
    evidence: tuple[Evidence, ...] = ()

    @classmethod
    def of(cls, answer: Answer) -> AnswerContent:
        return cls(answer.id, answer.text, answer.citations, answer.evidence)


def render_answer(
    content: AnswerContent,
    *,
    shareable: bool = False,
    shared_by: str | None = None,
    question: str = "",
) -> list[SlackMessage]:
    """The answer as one message, or several when it does not fit in one (body first,
    sources and buttons on the last). `shareable` adds "Share in channel" (ephemeral answers);
    `shared_by` (a user id) heads a shared answer with who asked what."""
    head: list[dict[str, Any]] = []
    if shared_by is not None:
        asked = f"<@{shared_by}> asked: {escape(_clip(question, 2800))}"
        head.append(_context([asked]))
    body = [_section(chunk) for chunk in split_text(to_mrkdwn(content.text) or "…")]
    # When the answer is made of the quotes themselves, quoting them again adds nothing.
    evidence = [item for item in content.evidence if item.quote not in content.text]
    body += [_section(chunk) for chunk in split_text(_evidence_text(evidence))]
    footer: list[dict[str, Any]] = []
    if content.citations:
        footer.append(_sources(content.citations))
    footer.append(_buttons(content.answer_id, shareable))
    fallback = _fallback(content.text)
    return [SlackMessage(fallback, tuple(blocks)) for blocks in _pack(head + body, footer)]


def render_progress(text: str, draft: SlackMessage | None = None) -> SlackMessage:
    """The answer so far while the model is still writing, above the `draft` already shown
    (the excerpts that answer meanwhile), so nothing the asker was reading disappears."""
    if not text.strip() and draft is not None:
        return draft
    tail = to_mrkdwn(text)
    if len(tail) > SECTION_TEXT_LIMIT - 10:
        # Show the newest part; the final message carries all of it.
        tail = "…" + tail[-(SECTION_TEXT_LIMIT - 10) :]
    blocks: tuple[dict[str, Any], ...] = (_section(tail or "…"), _context(["_Writing…_"]))
    if draft is not None:
        blocks += (_divider(), *draft.blocks[: BLOCKS_PER_MESSAGE - len(blocks) - 1])
    return SlackMessage(_fallback(text) or PLACEHOLDER_TEXT, blocks)


def render_placeholder() -> SlackMessage:
    return SlackMessage(PLACEHOLDER_TEXT, (_context([f"_{PLACEHOLDER_TEXT}_"]),))


def render_notice(text: str) -> SlackMessage:
    """A short plain notice (apology, rate limit, confirmation); `text` is not mrkdwn."""
    escaped = escape(_clip(text, SECTION_TEXT_LIMIT))
    return SlackMessage(escaped, (_section(escaped),))


def render_help(command: str) -> SlackMessage:
    lines = [
        "*Lore answers questions from the company's documents.*",
        f"• `{command} {escape('<question>')}`: answer privately, with a button to share it",
        "• Mention me in a channel: I answer in a thread; reply in that thread to follow up",
        "• Send me a direct message: every message is a question",
        f"• `{command} feedback {escape('<text>')}`: tell us about my latest answer here",
        f"• `{command} help`: this message",
        "Every answer lists its sources; 👍 / 👎 tell us whether it helped.",
    ]
    text = "\n".join(lines)
    return SlackMessage(plain_text(text), (_section(text),))


def feedback_modal(answer_id: str, feedback_id: int) -> dict[str, Any]:
    """The 👎 modal: what was wrong and what the right answer is, both optional."""
    metadata = json.dumps({"answer_id": answer_id, "feedback_id": feedback_id})
    return {
        "type": "modal",
        "callback_id": FEEDBACK_MODAL,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Not helpful"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Skip"},
        "blocks": [
            _context(["Thanks for telling us. Both fields are optional."]),
            _input(WRONG_BLOCK, "What was wrong?", "Missing, outdated or wrong information…"),
            _input(RIGHT_BLOCK, "What is the right answer?", "The answer, or where to find it"),
        ],
    }


def split_text(text: str, limit: int = SECTION_TEXT_LIMIT) -> list[str]:
    """Cut mrkdwn into pieces of at most `limit` characters, at paragraph, line or word
    boundaries, never inside a `<link|label>`, closing and reopening code fences."""
    if not text:
        return []
    budget = limit - 8  # room to close and reopen a code fence
    pieces: list[str] = []
    current = ""
    in_code = False
    for token in _tokens(text, budget):
        if len(current) + len(token) > budget:
            if current.strip():
                pieces.append(current + ("\n```" if in_code else ""))
                current = "```\n" if in_code else ""
                token = token.lstrip(" ") if not in_code else token
            elif not in_code:
                current = ""  # white space alone before a piece-long token: it would overflow
        current += token
        in_code ^= token.count("```") % 2 == 1
    if current.strip() and current != "```\n":
        pieces.append(current + ("\n```" if in_code else ""))
    return [piece.strip("\n") for piece in pieces if piece.strip()]


_TOKEN = re.compile(r"<[^<>\n]*>|\n+|[ \t]+|[^\s<]+|<")


def _tokens(text: str, budget: int) -> Iterator[str]:
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        # A single word or link longer than a whole piece has to be cut somewhere.
        for start in range(0, len(token), budget):
            yield token[start : start + budget]


def _pack(body: Sequence[dict[str, Any]], footer: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Group blocks into messages within the block-count and total-text limits."""
    message: list[dict[str, Any]] = []
    size = 0
    for block in body:
        block_size = len(json.dumps(block))
        if message and (len(message) >= BLOCKS_PER_MESSAGE or size + block_size > MESSAGE_TEXT_LIMIT):
            yield message
            message, size = [], 0
        message.append(block)
        size += block_size
    if len(message) + len(footer) > BLOCKS_PER_MESSAGE:
        yield message
        message = []
    yield message + list(footer)


def _evidence_text(evidence: Sequence[Evidence]) -> str:
    lines = []
    for item in evidence:
        quote = escape(_clip(" ".join(item.quote.split()), QUOTE_LIMIT))
        source = link(item.url, item.title or item.source) if item.url else escape(item.title or item.source)
        lines.append(f">“{quote}” — _{source}_")
    return "\n".join(lines)


def _sources(citations: Sequence[Citation]) -> dict[str, Any]:
    entries = []
    for citation in citations:
        label = citation.title or citation.source
        if citation.heading and citation.heading != label:
            label = f"{label} › {citation.heading}"
        entries.append(f"[{citation.number}] {link(citation.url, _clip(label, 300))}")
    elements = ["*Sources*"] + entries[: CONTEXT_ELEMENTS_LIMIT - 2]
    rest = entries[CONTEXT_ELEMENTS_LIMIT - 2 :]
    if rest:
        elements.append(_clip_mrkdwn("  ".join(rest), SECTION_TEXT_LIMIT))
    return _context(elements)


def _buttons(answer_id: str, shareable: bool) -> dict[str, Any]:
    elements = [
        _button("👍 Helpful", ACTION_HELPFUL, answer_id),
        _button("👎 Not helpful", ACTION_NOT_HELPFUL, answer_id),
    ]
    if shareable:
        elements.append(_button("Share in channel", ACTION_SHARE, answer_id, style="primary"))
    return {"type": "actions", "block_id": f"lore_answer_{answer_id}"[:255], "elements": elements}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _input(block_id: str, label: str, placeholder: str) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": True,
        "label": {"type": "plain_text", "text": label},
        "element": {
            "type": "plain_text_input",
            "action_id": INPUT_ACTION,
            "multiline": True,
            "max_length": 2900,
            "placeholder": {"type": "plain_text", "text": placeholder},
        },
    }


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _divider() -> dict[str, Any]:
    return {"type": "divider"}


def _context(texts: Sequence[str]) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(t) for t in texts]}


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack makes no link of URL-looking plain text; only the `<url|label>` links
    # rendered here (to allowed hosts, see bot.core.links) are links.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _fallback(markdown: str) -> str:
    return escape(_clip(plain_text(markdown), FALLBACK_TEXT_LIMIT))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip_mrkdwn(text: str, limit: int) -> str:
    # Cut at a boundary so no `<link|label>` is left open.
    return text if len(text) <= limit else split_text(text, limit)[0] + "…"
