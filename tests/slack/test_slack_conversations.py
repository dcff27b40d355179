"""The Slack adapter end to end over HTTP, exactly as Slack talks to it: signed event callbacks,
form-encoded slash commands and `payload=` interactions in; Web API calls out to the mock.
The real agent answers (tiny random model: gibberish text, but real retrieval and citations)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable

import pytest

from bot.app import Services
from bot.platforms.slack.rendering import (
    ACTION_HELPFUL,
    ACTION_NOT_HELPFUL,
    ACTION_SHARE,
    PLACEHOLDER_TEXT,
    RIGHT_BLOCK,
    WRONG_BLOCK,
)
from bot.server import WORKLOAD
from bot.store.answers import StoredAnswer
from tests.slack.conftest import PROGRESS_INTERVAL, SlackRig, fresh_id
from tests.slack.slack_doubles import PuppetModel
from tests.support.slack_api import BOT_ID, BOT_USER, Message, mention, message

QUESTIONS = [
    "How many days of paid time off do employees get per year?",
    "When is the Beacon on-call handoff?",
    "How many unused PTO days can I carry over?",
    "What are the Tidewell Days?",
    "How much notice do I need to give for time off longer than 3 days?",
]
ACK_BUDGET = 3.0


def buttons(message: Message) -> dict[str, str]:
    """action_id → value of the buttons in a message."""
    return {
        element["action_id"]: element["value"]
        for block in message.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    }


def is_final(message: Message) -> bool:
    return ACTION_HELPFUL in buttons(message)


def all_text(message: Message) -> str:
    parts = []
    for block in message.blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [
            element.get("text", "") for element in block.get("elements", []) if isinstance(element.get("text"), str)
        ]
    return "\n".join(parts)


async def final_reply(rig: SlackRig, channel: str, thread_ts: str | None, timeout: float = 60.0) -> Message:
    """The bot's finished answer in a thread (or at the top level of a DM when None)."""
    return await rig.api.wait_until(
        lambda: next((m for m in rig.api.thread(channel, thread_ts) if is_final(m)), None),
        timeout,
    )


async def settle(rig: SlackRig) -> None:
    """Let every accepted event be handled (ignored events finish in milliseconds)."""
    await asyncio.sleep(0.3)
    await rig.api.wait_until(lambda: rig.app[WORKLOAD].depth == 0)


def stored(rig: SlackRig, answer_message: Message) -> StoredAnswer:
    answer = rig.services.answers.get(buttons(answer_message)[ACTION_HELPFUL])
    assert answer is not None
    return answer


def assert_renders(answer: StoredAnswer, reply: Message) -> None:
    """The message shows the answer's sources, linked where they have a URL."""
    text = all_text(reply)
    assert answer.citations, "a covered question gets cited sources"
    assert "*Sources*" in text
    for citation in answer.citations:
        title = citation["title"] or citation["source"]
        assert title.replace("&", "&amp;") in text
        if citation["url"].startswith("http"):
            assert f"<{citation['url']}|" in text


async def test_mention_is_answered_in_a_thread_with_sources_and_buttons(rig: SlackRig) -> None:
    channel, user = fresh_id("C"), fresh_id("U")
    event = mention(QUESTIONS[0], user, channel)

    reply = await rig.sender.event(event)

    assert reply.status == 200 and reply.seconds < ACK_BUDGET
    answer_message = await final_reply(rig, channel, event["ts"])
    placeholder = rig.api.calls_to("chat.postMessage")[0].args
    assert placeholder["text"] == PLACEHOLDER_TEXT and placeholder["thread_ts"] == event["ts"]
    assert answer_message.updates, "the placeholder is updated in place with the answer"
    assert set(buttons(answer_message)) == {ACTION_HELPFUL, ACTION_NOT_HELPFUL}
    assert answer_message.text and "<" not in answer_message.text.replace("&lt;", "")
    answer = stored(rig, answer_message)
    assert answer.question == QUESTIONS[0]  # the mention itself is stripped
    assert (answer.conversation_id, answer.thread_id, answer.user_id) == (
        channel,
        event["ts"],
        user,
    )
    assert_renders(answer, answer_message)


async def test_direct_message_is_answered_in_the_dm(rig: SlackRig) -> None:
    dm, user = fresh_id("D"), fresh_id("U")

    reply = await rig.sender.event(message(QUESTIONS[1], user, dm, "im"))

    assert reply.status == 200
    answer_message = await final_reply(rig, dm, None)  # not threaded: the DM is the conversation
    answer = stored(rig, answer_message)
    assert (answer.question, answer.conversation_id, answer.thread_id) == (QUESTIONS[1], dm, dm)
    assert_renders(answer, answer_message)


async def test_reply_in_an_answered_thread_is_a_follow_up(rig: SlackRig) -> None:
    channel, user, colleague = fresh_id("C"), fresh_id("U"), fresh_id("U")
    first = mention(QUESTIONS[0], user, channel)
    await rig.sender.event(first)
    await final_reply(rig, channel, first["ts"])

    follow_up = message("And how many can I carry over?", colleague, channel, "channel", thread_ts=first["ts"])
    await rig.sender.event(follow_up)

    await rig.api.wait_until(lambda: len([m for m in rig.api.thread(channel, first["ts"]) if is_final(m)]) == 2)
    history = rig.services.threads.history("slack", channel, first["ts"])
    assert [turn.question for turn in history] == [QUESTIONS[0], "And how many can I carry over?"]
    assert history[1].user_id == colleague


async def test_messages_that_are_not_for_the_bot_are_ignored(
    start_rig: Callable[..., Awaitable[SlackRig]],
) -> None:
    quiet = fresh_id("C")
    rig = await start_rig(channel_followups={quiet: "mention_only"})
    channel, user = fresh_id("C"), fresh_id("U")
    answered = mention(QUESTIONS[2], user, channel)
    await rig.sender.event(answered)
    await final_reply(rig, channel, answered["ts"])
    quiet_question = mention(QUESTIONS[2], user, quiet)
    await rig.sender.event(quiet_question)
    await final_reply(rig, quiet, quiet_question["ts"])
    calls_before = len(rig.api.calls)

    ignored = [
        message("a thread the bot never joined", user, channel, "channel", thread_ts="1.000001"),
        message("top-level chatter", user, channel, "channel"),
        message(
            "another bot",
            "UOTHERBOT",
            channel,
            "channel",
            thread_ts=answered["ts"],
            bot_id="BOTHER",
        ),
        message("the bot itself", BOT_USER, channel, "channel", thread_ts=answered["ts"], bot_id=BOT_ID),
        message("edited", user, channel, "channel", thread_ts=answered["ts"], subtype="message_changed"),
        message("mention_only channel", user, quiet, "channel", thread_ts=quiet_question["ts"]),
    ]
    for event in ignored:
        assert (await rig.sender.event(event)).status == 200
    await settle(rig)

    assert rig.api.calls[calls_before:] == []


async def test_lore_command_answers_privately_and_shares_on_request(rig: SlackRig) -> None:
    channel, user = fresh_id("C"), fresh_id("U")

    reply = await rig.sender.command(QUESTIONS[3], user, channel)

    assert reply.status == 200 and reply.seconds < ACK_BUDGET
    assert reply.json()["response_type"] == "ephemeral"
    assert PLACEHOLDER_TEXT in reply.json()["text"]
    private = await rig.api.wait_until(lambda: rig.api.ephemeral_for(user))
    assert set(buttons(private[0])) == {ACTION_HELPFUL, ACTION_NOT_HELPFUL, ACTION_SHARE}
    assert rig.api.calls_to("chat.postMessage") == [], "nothing public before sharing"
    answer = stored(rig, private[0])
    assert_renders(answer, private[0])
    assert answer.thread_id.startswith("command:"), "each /lore is its own conversation"

    click = rig.sender.button_click(user, private[0], ACTION_SHARE)
    assert (await rig.sender.interaction(click)).status == 200

    shared = await rig.api.wait_until(lambda: rig.api.calls_to("chat.postMessage"))
    public = rig.api.messages[(channel, rig.api.thread(channel, None)[0].ts)]
    assert shared[0].args["channel"] == channel
    assert f"<@{user}> asked: {QUESTIONS[3]}" in all_text(public)
    assert buttons(public)[ACTION_HELPFUL] == answer.id
    assert_renders(answer, public)
    await rig.api.wait_until(lambda: rig.api.responses)
    assert rig.api.responses[-1][1]["delete_original"] is True  # the private copy goes


async def test_sharing_where_the_bot_cannot_post_explains_what_to_do(rig: SlackRig) -> None:
    channel, user = fresh_id("C"), fresh_id("U")
    rig.api.fail("chat.postMessage", "not_in_channel", lambda args: args["channel"] == channel)
    await rig.sender.command(QUESTIONS[3], user, channel)
    private = await rig.api.wait_until(lambda: rig.api.ephemeral_for(user))

    await rig.sender.interaction(rig.sender.button_click(user, private[0], ACTION_SHARE))

    responses = await rig.api.wait_until(lambda: rig.api.responses)
    assert "/invite @Lore" in responses[0][1]["text"]
    assert "delete_original" not in responses[0][1], "the private answer stays"


async def test_lore_command_reaches_channels_the_bot_is_not_in(rig: SlackRig) -> None:
    channel, user = fresh_id("C"), fresh_id("U")
    rig.api.fail("chat.postEphemeral", "not_in_channel", lambda args: args["channel"] == channel)

    await rig.sender.command(QUESTIONS[4], user, channel)

    responses = await rig.api.wait_until(lambda: rig.api.responses)
    body = responses[0][1]
    assert body["response_type"] == "ephemeral" and body["replace_original"] is False
    assert any(block["type"] == "actions" for block in body["blocks"])


async def test_lore_help(rig: SlackRig) -> None:
    for text in ("help", ""):
        reply = await rig.sender.command(text, fresh_id("U"), fresh_id("C"))
        body = reply.json()
        assert reply.status == 200 and body["response_type"] == "ephemeral"
        assert "/lore feedback" in body["blocks"][0]["text"]["text"]
    # Only bolt's one-time auth.test: help needs no Web API call.
    assert {call.method for call in rig.api.calls} <= {"auth.test"}


async def test_lore_feedback_is_stored_against_the_latest_answer_there(rig: SlackRig) -> None:
    channel, user = fresh_id("C"), fresh_id("U")
    event = mention(QUESTIONS[0], user, channel)
    await rig.sender.event(event)
    answer = stored(rig, await final_reply(rig, channel, event["ts"]))

    reply = await rig.sender.command("feedback   the PTO number is outdated", user, channel)
    general = await rig.sender.command("feedback please add the canteen menu", user, fresh_id("C"))

    assert reply.status == 200 and "latest answer" in reply.json()["text"]
    assert general.status == 200
    mine = [f for f in rig.services.feedback.list() if f.user_id == user]
    assert [(f.answer_id, f.rating, f.text) for f in mine] == [
        (None, None, "please add the canteen menu"),
        (answer.id, None, "the PTO number is outdated"),
    ]


async def test_thumbs_up_and_thumbs_down_with_modal_are_stored(rig: SlackRig) -> None:
    channel, user = fresh_id("C"), fresh_id("U")
    event = mention(QUESTIONS[1], user, channel)
    await rig.sender.event(event)
    answer_message = await final_reply(rig, channel, event["ts"])
    answer = stored(rig, answer_message)

    up = await rig.sender.interaction(rig.sender.button_click(user, answer_message, ACTION_HELPFUL))
    down_click = rig.sender.button_click(user, answer_message, ACTION_NOT_HELPFUL)
    down = await rig.sender.interaction(down_click)

    assert up.status == 200 and down.status == 200
    opened = await rig.api.wait_until(lambda: rig.api.calls_to("views.open"))
    assert opened[0].args["trigger_id"] == down_click["trigger_id"]
    view = opened[0].args["view"]
    submission = rig.sender.view_submission(
        user,
        view,
        {
            WRONG_BLOCK: "It says Tuesday",
            RIGHT_BLOCK: "Monday at 10:00 CET",
        },
    )
    submitted = await rig.sender.interaction(submission)
    assert submitted.status == 200 and submitted.body == ""  # an empty ack closes the modal

    def mine() -> list:
        return [f for f in rig.services.feedback.list() if f.user_id == user]

    await rig.api.wait_until(lambda: any(f.correction for f in mine()))
    assert sorted((f.rating, f.text, f.correction) for f in mine()) == [
        ("helpful", "", ""),
        ("not_helpful", "It says Tuesday", "Monday at 10:00 CET"),
    ]
    assert all(f.answer_id == answer.id and f.platform == "slack" for f in mine())
    thanks = await rig.api.wait_until(lambda: rig.api.ephemeral_for(user))
    assert "Thanks" in thanks[0].text


async def test_retries_and_duplicates_are_answered_once(rig: SlackRig) -> None:
    channel, user = fresh_id("C"), fresh_id("U")
    event = mention(QUESTIONS[2], user, channel)

    replies = [await rig.sender.event(event, event_id="EvSAME")]
    replies.append(await rig.sender.event(event, event_id="EvSAME", retry=1))
    replies.append(await rig.sender.event(event, event_id="EvSAME", retry=2))
    # The same message delivered again as a `message` event (subscribed channels get both).
    same_message = {**event, "type": "message", "channel_type": "channel"}
    replies.append(await rig.sender.event(same_message))
    await final_reply(rig, channel, event["ts"])
    await settle(rig)

    assert [reply.status for reply in replies] == [200, 200, 200, 200]
    assert len(rig.api.calls_to("chat.postMessage")) == 1
    assert rig.services.answers.latest_for(user, channel) is not None
    assert len([a for a in rig.services.answers.recent(1000) if a.user_id == user]) == 1


async def test_url_verification(rig: SlackRig) -> None:
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    body = {"token": "legacy", "challenge": challenge, "type": "url_verification"}
    reply = await rig.sender.post(json.dumps(body).encode(), "application/json")
    assert reply.status == 200
    assert reply.json() == {"challenge": challenge}


async def test_bad_or_stale_signatures_get_401(rig: SlackRig) -> None:
    body = b'{"type": "url_verification", "challenge": "x"}'
    now = int(time.time())
    attempts = [
        await rig.sender.post(body, "application/json", signature="v0=" + "0" * 64),
        await rig.sender.post(body, "application/json", timestamp=now - 600),  # stale, signed
        await rig.sender.post(body + b" ", "application/json", signature=rig.sender.sign(body, now), timestamp=now),
        await rig.sender.post(b"{not json", "application/json", signature="v0=bad"),
        await rig.sender.post(
            body,
            "application/json",
            timestamp=0,
            signature="x",
            headers={"X-Slack-Request-Timestamp": "yesterday"},
        ),
    ]
    assert [reply.status for reply in attempts] == [401] * len(attempts)
    assert rig.api.calls == []


async def test_non_ascii_signature_or_timestamp_headers_get_401_not_500(rig: SlackRig) -> None:
    body = b'{"type": "url_verification", "challenge": "x"}'
    now = int(time.time())
    attempts = [
        await rig.sender.post(body, "application/json", headers={"X-Slack-Request-Timestamp": "²"}),
        await rig.sender.post(body, "application/json", headers={"X-Slack-Request-Timestamp": "١٧٠٠٠٠٠٠٠٠"}),
        await rig.sender.post(body, "application/json", timestamp=now, signature="v0=é" + "0" * 63),
    ]
    assert [reply.status for reply in attempts] == [401] * len(attempts)
    assert rig.api.calls == []


async def test_signed_but_malformed_bodies_get_400(rig: SlackRig) -> None:
    form = "application/x-www-form-urlencoded"
    attempts = [
        await rig.sender.post(b"{not json", "application/json"),
        await rig.sender.post(b'{"no": "type"}', "application/json"),
        await rig.sender.post(b"[1, 2, 3]", "application/json"),
        await rig.sender.post(b"payload=%7Bbroken", form),
        await rig.sender.post(b"payload=%5B%5D", form),
        await rig.sender.post(b"hello=world", form),
        await rig.sender.post(b"\xff\xfe\x00garbage", form),
    ]
    assert [reply.status for reply in attempts] == [400] * len(attempts)
    assert all("malformed" in reply.body for reply in attempts)
    assert rig.api.calls == []


async def test_a_failing_model_gets_an_apology_with_an_error_id(
    start_rig: Callable[..., Awaitable[SlackRig]],
    puppet_stack: Services,
    puppet: PuppetModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = await start_rig(services=puppet_stack)
    puppet.fail_after = 3  # after a few pieces have streamed into the placeholder
    channel, user = fresh_id("C"), fresh_id("U")
    event = mention(QUESTIONS[0], user, channel)
    with caplog.at_level(logging.ERROR):
        await rig.sender.event(event)
        apology = await rig.api.wait_until(
            lambda: next((m for m in rig.api.thread(channel, event["ts"]) if "error id" in m.text), None)
        )

    error_id = re.search(r"error id `(\w+)`", apology.text).group(1)
    assert "Traceback" not in apology.text and "CUDA" not in all_text(apology)
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None, "the log has the traceback"
    # The bot is still up and answers the next question once the model works again.
    puppet.reset()
    dm = fresh_id("D")
    assert (await rig.sender.event(message(QUESTIONS[1], user, dm, "im"))).status == 200
    await final_reply(rig, dm, None)


async def test_the_excerpts_show_at_once_then_the_text_grows_above_them(
    start_rig: Callable[..., Awaitable[SlackRig]],
    puppet_stack: Services,
    puppet: PuppetModel,
) -> None:
    rig = await start_rig(services=puppet_stack)
    puppet.delay = 0.05
    channel, user = fresh_id("C"), fresh_id("U")
    event = mention(QUESTIONS[0], user, channel)
    await rig.sender.event(event)
    # The draft already carries the feedback buttons (its answer id is the final answer's).
    answer_message = await final_reply(rig, channel, event["ts"])
    await settle(rig)

    updates = [c for c in rig.api.calls_to("chat.update") if c.args["ts"] == answer_message.ts]
    draft, *rest = updates
    assert "Writing…" not in str(draft.args["blocks"]) and "[1]" in draft.args["text"], (
        "the drafted excerpts come first, before the model has written anything"
    )
    progress = [c for c in rest if "Writing…" in str(c.args["blocks"])]
    assert len(progress) >= 2, "the growing text is shown while the model writes"
    assert all(str(draft.args["blocks"][0]) in str(c.args["blocks"]) for c in progress), (
        "the excerpts stay beneath the growing text"
    )
    assert "Writing…" not in str(updates[-1].args["blocks"]), "the final answer comes last"
    # The buttons shown from the draft on rate the answer the log keeps.
    assert stored(rig, answer_message).id in str(draft.args["blocks"])
    gaps = [b.at - a.at for a, b in zip(progress, progress[1:], strict=False)]
    assert min(gaps) >= PROGRESS_INTERVAL * 0.9


async def test_questions_over_the_rate_limit_get_a_polite_reply(
    start_rig: Callable[..., Awaitable[SlackRig]],
) -> None:
    rig = await start_rig(rate_limit_per_minute=2)
    dm, user = fresh_id("D"), fresh_id("U")

    for question in QUESTIONS[:3]:
        assert (await rig.sender.event(message(question, user, dm, "im"))).status == 200

    await rig.api.wait_until(lambda: len([m for m in rig.api.thread(dm, None) if is_final(m)]) == 2)
    await settle(rig)
    notices = [m for m in rig.api.thread(dm, None) if "faster than I can keep up" in m.text]
    assert len(notices) == 1
    assert len([a for a in rig.services.answers.recent(1000) if a.user_id == user]) == 2


async def test_twenty_questions_at_once_are_all_answered(rig: SlackRig) -> None:
    channel = fresh_id("C")
    events = [mention(QUESTIONS[i % len(QUESTIONS)], fresh_id("U"), channel) for i in range(20)]

    replies = await asyncio.gather(*(rig.sender.event(event) for event in events))

    assert all(reply.status == 200 for reply in replies)
    assert max(reply.seconds for reply in replies) < ACK_BUDGET
    # The model answers one question at a time: on a busy 2-core machine the last of 20 tiny-model
    # answers can take a minute or two. What matters is that none is lost.
    answered = await asyncio.gather(*(final_reply(rig, channel, e["ts"], timeout=600) for e in events))
    answer_ids = {buttons(m)[ACTION_HELPFUL] for m in answered}
    assert len(answer_ids) == 20
    for event, answer_message in zip(events, answered, strict=True):
        answer = stored(rig, answer_message)
        assert (answer.user_id, answer.question) == (event["user"], event["text"].split("> ", 1)[1])


async def test_answers_are_posted_without_link_previews(
    start_rig: Callable[..., Awaitable[SlackRig]],
    puppet_stack: Services,
    puppet: PuppetModel,
) -> None:
    # A link preview is a request Slack's servers make to every URL in a message, no click
    # needed: no message carrying an answer (placeholder, draft, progress, final, private,
    # shared) may ask for one.
    rig = await start_rig(services=puppet_stack)
    puppet.delay = 0.02
    channel, user = fresh_id("C"), fresh_id("U")
    event = mention(QUESTIONS[0], user, channel)
    await rig.sender.event(event)
    await final_reply(rig, channel, event["ts"])
    await rig.sender.command(QUESTIONS[3], user, channel)
    private = await rig.api.wait_until(lambda: rig.api.ephemeral_for(user))
    await rig.sender.interaction(rig.sender.button_click(user, private[0], ACTION_SHARE))
    await rig.api.wait_until(lambda: any(r[1].get("delete_original") for r in rig.api.responses))
    # Where the bot is not a member, the private answer goes through the response_url.
    elsewhere = fresh_id("C")
    rig.api.fail("chat.postEphemeral", "not_in_channel", lambda args: args["channel"] == elsewhere)
    await rig.sender.command(QUESTIONS[4], user, elsewhere)
    (through_url,) = await rig.api.wait_until(lambda: [body for _, body in rig.api.responses if body.get("blocks")])
    await settle(rig)
    assert through_url["unfurl_links"] is False and through_url["unfurl_media"] is False

    calls = [
        call
        for method in ("chat.postMessage", "chat.update", "chat.postEphemeral")
        for call in rig.api.calls_to(method)
    ]
    assert {call.method for call in calls} == {"chat.postMessage", "chat.update", "chat.postEphemeral"}
    assert any("Writing…" in str(call.args.get("blocks")) for call in calls), "progress updates too"
    for call in calls:
        assert call.args.get("unfurl_links") is False, (call.method, call.args.get("text"))
        assert call.args.get("unfurl_media") is False, (call.method, call.args.get("text"))
