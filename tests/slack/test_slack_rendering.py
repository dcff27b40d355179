"""Markdown → mrkdwn and Answer → Block Kit, checked against Slack's limits by the same
validator the mock Web API uses."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.platforms.slack.mrkdwn import escape, to_mrkdwn
from bot.platforms.slack.rendering import (
    ACTION_HELPFUL,
    ACTION_NOT_HELPFUL,
    ACTION_SHARE,
    SECTION_TEXT_LIMIT,
    AnswerContent,
    feedback_modal,
    render_answer,
    render_help,
    render_progress,
    split_text,
)
from bot.types import Citation, Evidence
from tests.support.injection import ATTACKER_HOST, STOLEN, attacked_answer
from tests.support.slack_api import mrkdwn_problems, payload_problems


def post_problems(message) -> list[str]:
    return payload_problems("chat.postMessage", {"channel": "C1", **message.payload()})


def test_markdown_becomes_mrkdwn() -> None:
    markdown = "\n".join(
        [
            "## Paid time off",
            "You get **27 days** of *paid* leave & __more__ ~~or less~~.",
            "See [the policy](https://wiki.example.com/pto?a=1&b=2) or https://example.com/x.",
            "- Request in `Anchor <HR>`",
            "  * nested item",
            "1. numbered stays",
            "> quoted **text**",
            "```python",
            "if a < b and c > d: print('**no**')",
            "```",
        ]
    )
    assert to_mrkdwn(markdown).split("\n") == [
        "*Paid time off*",
        "You get *27 days* of _paid_ leave &amp; *more* ~or less~.",
        "See <https://wiki.example.com/pto?a=1&amp;b=2|the policy> or <https://example.com/x>.",
        "• Request in `Anchor &lt;HR&gt;`",
        "    • nested item",
        "1. numbered stays",
        "> quoted *text*",
        "```",
        "if a &lt; b and c &gt; d: print('**no**')",
        "```",
    ]


def test_unclosed_code_fence_is_closed() -> None:
    assert to_mrkdwn("```\ncode").split("\n") == ["```", "code", "```"]


def test_link_labels_cannot_break_out_of_the_link() -> None:
    assert to_mrkdwn("[a|b>c](https://x.example)") == "<https://x.example|a¦b&gt;c>"


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(
        st.sampled_from(list("ab <>&*_~`[]()#-|:/.\n") + ["https://x.io", "**", "```"]),
        max_size=120,
    ).map("".join)
)
def test_any_markdown_gives_valid_mrkdwn(markdown: str) -> None:
    assert mrkdwn_problems(to_mrkdwn(markdown), "text") == []


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(min_size=1, max_size=200))
def test_plain_text_is_only_escaped(text: str) -> None:
    # A line starting with ">" is a Markdown quote, so the text starts with a letter.
    plain = "x" + "".join(c for c in text if c.isalnum() or c in " &<>,.?")
    assert to_mrkdwn(plain) == escape(plain)


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.lists(
        st.sampled_from(["word", "<https://a.io/x|a link>", "\n", "\n\n", "```", "x" * 700, " ", "&amp;"]),
        max_size=60,
    ),
    st.integers(min_value=40, max_value=500),
)
def test_split_text_fits_and_keeps_every_word(tokens: list[str], limit: int) -> None:
    text = " ".join(tokens)
    pieces = split_text(text, limit)
    assert all(len(piece) <= limit for piece in pieces)
    words = [w for w in text.replace("```", " ").split() if w]
    assert "".join(words) == "".join("".join(p.replace("```", " ").split()) for p in pieces)
    # A link is never cut in two (unless it alone is longer than a piece).
    assert all(piece.count("<") == piece.count(">") for piece in pieces if limit > 40)


def _content(text: str, citations: int = 2, evidence: int = 1) -> AnswerContent:
    return AnswerContent(
        answer_id="a" * 32,
        text=text,
        citations=tuple(
            Citation(
                n,
                f"people/doc-{n}.md",
                f"Doc {n} & co",
                f"Section {n}",
                f"https://docs.example.com/{n}" if n % 2 else "",
            )
            for n in range(1, citations + 1)
        ),
        evidence=tuple(
            Evidence(
                f"people/doc-{n}.md",
                f"Quote {n} with <angle> brackets.",
                f"Doc {n}",
                f"https://docs.example.com/{n}",
            )
            for n in range(1, evidence + 1)
        ),
    )


def test_answer_has_text_evidence_sources_and_buttons() -> None:
    (message,) = render_answer(_content("You get **27 days** [1]."))
    kinds = [block["type"] for block in message.blocks]
    assert kinds == ["section", "section", "context", "actions"]
    assert message.blocks[0]["text"]["text"] == "You get *27 days* [1]."
    assert message.blocks[1]["text"]["text"] == (
        ">“Quote 1 with &lt;angle&gt; brackets.” — _<https://docs.example.com/1|Doc 1>_"
    )
    sources = [element["text"] for element in message.blocks[2]["elements"]]
    assert sources == [
        "*Sources*",
        "[1] <https://docs.example.com/1|Doc 1 &amp; co › Section 1>",
        "[2] Doc 2 &amp; co › Section 2",
    ]
    actions = {e["action_id"]: e["value"] for e in message.blocks[3]["elements"]}
    assert actions == {ACTION_HELPFUL: "a" * 32, ACTION_NOT_HELPFUL: "a" * 32}
    assert message.text == "You get 27 days [1]."
    assert post_problems(message) == []


def test_quotes_already_in_the_answer_are_not_repeated() -> None:
    content = _content('"Quote 1 with <angle> brackets." [1]')
    (message,) = render_answer(content)
    assert [block["type"] for block in message.blocks] == ["section", "context", "actions"]


def test_shareable_and_shared_answers() -> None:
    (private,) = render_answer(_content("Text"), shareable=True)
    assert ACTION_SHARE in json.dumps(private.blocks)
    (shared,) = render_answer(_content("Text"), shared_by="U1", question="Why <so>?")
    assert shared.blocks[0]["elements"][0]["text"] == "<@U1> asked: Why &lt;so&gt;?"
    assert ACTION_SHARE not in json.dumps(shared.blocks)


def test_long_answers_are_split_into_valid_messages() -> None:
    paragraph = "Lorem ipsum dolor sit amet, **consectetur** [adipiscing](https://e.io/x) elit. " * 40
    content = _content("\n\n".join([paragraph] * 60), citations=14, evidence=12)

    messages = render_answer(content)

    assert len(messages) > 1
    for message in messages:
        assert post_problems(message) == []
    assert all(b["type"] == "section" for m in messages[:-1] for b in m.blocks)
    assert [b["type"] for b in messages[-1].blocks][-2:] == ["context", "actions"]
    assert len(messages[-1].blocks[-2]["elements"]) == 10  # Slack's context limit, rest folded in
    shown = "".join(b["text"]["text"] for m in messages for b in m.blocks if b["type"] == "section")
    assert shown.count("elit.") == 40 * 60


def test_one_enormous_word_still_fits() -> None:
    messages = render_answer(_content("x" * 100_000, citations=0, evidence=0))
    assert all(post_problems(m) == [] for m in messages)
    assert sum(len(b["text"]["text"]) for m in messages for b in m.blocks if b["type"] == "section") == 100_000


def test_progress_shows_the_newest_text_within_limits() -> None:
    message = render_progress("start " + "word " * 2000 + "**end**")
    assert post_problems(message) == []
    assert message.blocks[0]["text"]["text"].endswith("*end*")
    assert len(message.blocks[0]["text"]["text"]) <= SECTION_TEXT_LIMIT


def test_help_and_modal_are_valid() -> None:
    assert post_problems(render_help("/lore")) == []
    view = feedback_modal("a" * 32, 7)
    assert payload_problems("views.open", {"trigger_id": "t", "view": view}) == []
    assert json.loads(view["private_metadata"]) == {"answer_id": "a" * 32, "feedback_id": 7}
    assert all(block.get("optional") for block in view["blocks"] if block["type"] == "input")


def mrkdwn_objects(blocks) -> list[dict]:
    found = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            found.append(block["text"])
        found += [e for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return found


def test_an_exfiltration_link_from_the_model_is_not_clickable_in_slack() -> None:
    attacked = attacked_answer()
    final = render_answer(AnswerContent.of(attacked.answer))
    draft = render_answer(AnswerContent.of(attacked.drafts[0]))[0]
    progress = [render_progress(text, draft) for text in attacked.streamed]
    for message in [*final, draft, *progress]:
        payload = json.dumps(message.payload())
        assert ATTACKER_HOST not in payload and STOLEN not in payload
        # Slack makes no link of URL-looking text in these: only `<url|label>` links are links.
        assert all(text.get("verbatim") is True for text in mrkdwn_objects(message.blocks))
        assert message.payload()["unfurl_links"] is False and message.payload()["unfurl_media"] is False
