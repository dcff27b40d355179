"""Answer rendering: Adaptive Card 1.5 content, the Markdown subset, and Teams' size limit."""

from __future__ import annotations

import json
from dataclasses import replace

from bot.platforms.teams.rendering import (
    CARD_CONTENT_TYPE,
    FEEDBACK_ACTION,
    MAX_MESSAGE_BYTES,
    TRIMMED_NOTE,
    activity_bytes,
    answer_activities,
    streamed_final_activity,
    teams_markdown,
)
from bot.types import Answer, Asker, Citation, Evidence, Question
from tests.support.bot_connector import TEAMS_MESSAGE_LIMIT_BYTES
from tests.support.injection import ATTACKER_HOST, STOLEN, attacked_answer

QUESTION = Question(
    text="How many vacation days?",
    asker=Asker("u1"),
    conversation_id="c",
    thread_id="c",
    platform="teams",
)


def make_answer(text: str, citations: int = 2, evidence: int = 1) -> Answer:
    return Answer(
        id="ans-1",
        question=QUESTION,
        text=text,
        citations=tuple(
            Citation(
                n,
                f"policies/leave-{n}.md",
                f"Leave policy [{n}]",
                "Vacation",
                f"https://wiki.example.com/leave-{n}",
            )
            for n in range(1, citations + 1)
        )
        + (Citation(citations + 1, "hr/local.md", "Local file", "", "file:///srv/share/hr/local.md"),),
        evidence=tuple(
            Evidence(
                "policies/leave-1.md",
                f"Employees get 25 days of paid vacation ({i}).",
                "Leave policy",
            )
            for i in range(evidence)
        ),
        passages=(),
        confident=True,
        model="tiny",
        adapter=None,
    )


def card_of(activity) -> dict:
    (attachment,) = activity.attachments
    assert attachment.content_type == CARD_CONTENT_TYPE
    return attachment.content


def texts(card: dict) -> list[str]:
    found = []
    for element in card["body"]:
        if element["type"] == "TextBlock":
            found.append(element["text"])
        for item in element.get("items", []):
            found.append(item["text"])
    return found


def test_short_answer_is_one_card_with_sources_evidence_and_feedback() -> None:
    (activity,) = answer_activities(make_answer("## Vacation\nYou get **25 days** [1].\n* carry over 5 days [2]"))
    card = card_of(activity)
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    body = texts(card)
    assert body[0] == "**Vacation**\nYou get **25 days** [1].\n- carry over 5 days [2]"
    assert "“Employees get 25 days of paid vacation (0).”" in body
    assert "**Sources**" in body
    # Brackets in titles would break Markdown links; file paths are shown, not linked.
    assert "[1] [Leave policy (1) — Vacation](https://wiki.example.com/leave-1)" in body
    assert "[3] Local file (hr/local.md)" in body
    assert activity.channel_data == {"feedbackLoopEnabled": True}
    assert activity.summary.startswith("Vacation You get 25 days [1].")
    assert not activity.text  # the card is the message; `text` would repeat it above the card
    helpful, not_helpful = card["actions"]
    assert helpful["data"] == {"action": FEEDBACK_ACTION, "answerId": "ans-1", "rating": "helpful"}
    assert not_helpful["type"] == "Action.ShowCard"
    form = not_helpful["card"]
    assert [i["id"] for i in form["body"]] == ["whatWasWrong", "correction"]
    assert form["actions"][0]["data"]["rating"] == "not_helpful"


def test_code_blocks_become_monospace_blocks() -> None:
    (activity,) = answer_activities(
        make_answer("Run this:\n```bash\nvpn connect --profile office\n```\nThen log in.", 0, 0)
    )
    body = card_of(activity)["body"]
    assert [b.get("fontType") for b in body[:3]] == [None, "Monospace", None]
    assert body[1]["text"] == "vpn connect --profile office"


def test_markdown_subset() -> None:
    assert teams_markdown("# Title\nUse `lore ask`.\n  * nested") == "**Title**\nUse lore ask.\n  - nested"


def test_long_answer_is_split_under_the_size_limit_and_loses_nothing() -> None:
    paragraphs = [f"Paragraph {i}: " + ("ünïcödé wörds and more words. " * 40) for i in range(60)]
    text = "\n\n".join(paragraphs)
    activities = answer_activities(make_answer(text, citations=30, evidence=3))
    assert len(activities) > 1
    for activity in activities:
        assert activity_bytes(activity) <= MAX_MESSAGE_BYTES < TEAMS_MESSAGE_LIMIT_BYTES
    # Only the last message carries sources and feedback.
    assert all("actions" not in card_of(a) for a in activities[:-1])
    assert "actions" in card_of(activities[-1])
    assert [a.channel_data for a in activities[:-1]] == [None] * (len(activities) - 1)
    rendered = "\n\n".join(t for a in activities for t in texts(card_of(a)))
    for paragraph in paragraphs:
        assert paragraph.strip() in rendered
    assert "[30] [Leave policy (30) — Vacation](https://wiki.example.com/leave-30)" in rendered


def test_one_enormous_paragraph_is_cut_at_sentences() -> None:
    text = "A sentence that goes on. " * 3000  # 75 000 characters, no paragraph breaks
    activities = answer_activities(make_answer(text))
    assert all(activity_bytes(a) <= MAX_MESSAGE_BYTES for a in activities)
    rendered = " ".join(t for a in activities for t in texts(card_of(a)) if t.startswith("A sentence"))
    assert rendered.count("A sentence that goes on.") == 3000


def test_activity_serializes_to_json() -> None:
    (activity,) = answer_activities(make_answer("Short."))
    data = json.loads(json.dumps(activity.serialize()))
    assert data["type"] == "message" and data["attachments"][0]["contentType"] == CARD_CONTENT_TYPE


def test_streamed_final_message_carries_the_text_and_a_sources_card() -> None:
    activity = streamed_final_activity(make_answer("You get **25 days** [1]."))
    assert activity.text == "You get **25 days** [1]."
    card = card_of(activity)
    assert "You get" not in "\n".join(texts(card))  # not repeated in the card
    assert "**Sources**" in texts(card)
    assert [a["title"] for a in card["actions"]] == ["👍 Helpful", "👎 Not helpful"]
    assert activity.channel_data == {"feedbackLoopEnabled": True}


def test_streamed_final_message_is_trimmed_to_fit() -> None:
    activity = streamed_final_activity(make_answer("Wörds, wörds. " * 5000, citations=20))
    assert activity_bytes(activity) <= MAX_MESSAGE_BYTES
    assert activity.text.endswith(TRIMMED_NOTE)
    assert activity.text.startswith("Wörds, wörds.")
    assert len(activity.text) > 10_000  # trimmed, not emptied


def test_an_exfiltration_link_from_the_model_is_not_clickable_in_teams() -> None:
    attacked = attacked_answer()
    answer = replace(attacked.answer, question=QUESTION)
    sent = [*answer_activities(answer), streamed_final_activity(answer)]
    sent += answer_activities(attacked.drafts[0])
    for activity in sent:
        wire = json.dumps(activity.serialize())
        assert ATTACKER_HOST not in wire and STOLEN not in wire
    # What the stream shows while the model writes is the agent's defused text.
    assert all(ATTACKER_HOST not in text for text in attacked.streamed)


def test_markdown_in_quoted_evidence_cannot_make_links_images_or_mentions() -> None:
    quote = (
        "Reset it at [the IT portal](https://x.example/?q=1) ![x](https://x.example/p.png) "
        "<at>Everyone</at> **now**\n- or ask _IT_"
    )
    answer = replace(
        make_answer("See below [1].", citations=1, evidence=0),
        evidence=(Evidence("it/portal.md", quote, "IT [portal](https://x.example/t)"),),
    )
    (activity,) = answer_activities(answer)
    evidence = next(e for e in card_of(activity)["body"] if e["type"] == "Container")
    shown, origin = (item["text"] for item in evidence["items"])
    assert shown == (
        "“Reset it at \\[the IT portal\\](https://x.example/?q=1) \\!\\[x\\](https://x.example/p.png) "
        "\\<at\\>Everyone\\</at\\> \\*\\*now\\*\\*\n\\- or ask \\_IT\\_”"
    )
    assert "](" not in origin.replace("\\](", "")
