"""Who counts as `everyone` on Slack (#14, route 3): guests, Slack Connect users of other
organisations and other workspaces are refused politely before anything is retrieved, and
nothing is answered where other organisations read along (externally shared channels).
Real signed requests over HTTP; the real agent sits behind a recorder that proves whether it
was asked at all."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

from bot.app import Services
from bot.platforms.slack.rendering import ACTION_HELPFUL, ACTION_NOT_HELPFUL, ACTION_SHARE
from tests.slack.conftest import SlackRig, fresh_id
from tests.slack.test_slack_conversations import final_reply, is_final, settle
from tests.support.recording_agent import RecordingAgent
from tests.support.slack_api import Message, event_callback, mention, message

QUESTION = "How many days of paid time off do employees get per year?"
FOREIGN_TEAM = "T0OTHERORG"
# Words of the refusals (bot.platforms.slack.membership).
NOT_A_MEMBER = "only answer members"
GUEST = "don't answer guest accounts"
SHARED_CHANNEL = "channels shared with other organisations"

Start = Callable[..., Awaitable[SlackRig]]


async def recorded_rig(start_rig: Start, stack: Services, **slack: Any) -> tuple[SlackRig, RecordingAgent]:
    agent = RecordingAgent(stack.agent)
    return await start_rig(dataclasses.replace(stack, agent=agent), **slack), agent


async def notice_for(rig: SlackRig, user: str, text: str) -> Message:
    """The ephemeral (or DM) notice holding `text` shown to `user`."""
    return await rig.api.wait_until(
        lambda: next(
            (
                m
                for m in rig.api.messages.values()
                if text in m.text and (m.ephemeral_for == user or m.channel.startswith("D"))
            ),
            None,
        ),
        10.0,
    )


def answers_posted(rig: SlackRig) -> list[Message]:
    return [m for m in rig.api.messages.values() if is_final(m)]


# --- the asker ---------------------------------------------------------------------------


async def test_a_slack_connect_stranger_mentioning_the_bot_gets_a_polite_refusal_and_no_retrieval(
    start_rig: Start, stack: Services
) -> None:
    rig, agent = await recorded_rig(start_rig, stack)
    stranger, channel = fresh_id("U"), fresh_id("C")
    rig.api.users[stranger] = {"team_id": FOREIGN_TEAM, "is_stranger": True}

    assert (await rig.sender.event(mention(QUESTION, stranger, channel))).status == 200

    notice = await notice_for(rig, stranger, NOT_A_MEMBER)
    assert notice.ephemeral_for == stranger and notice.channel == channel
    await settle(rig)
    assert agent.questions == []
    assert answers_posted(rig) == []


async def test_a_user_of_another_workspace_asking_in_a_dm_is_refused_before_retrieval(
    start_rig: Start, stack: Services
) -> None:
    rig, agent = await recorded_rig(start_rig, stack)
    outsider, dm = fresh_id("U"), fresh_id("D")
    # Not flagged as a stranger: a shared-channel member of another workspace.
    rig.api.users[outsider] = {"team_id": FOREIGN_TEAM}

    await rig.sender.event(message(QUESTION, outsider, dm, "im"))

    notice = await notice_for(rig, outsider, NOT_A_MEMBER)
    assert notice.channel == dm and notice.text.startswith("Sorry")
    await settle(rig)
    assert agent.questions == []
    assert answers_posted(rig) == []


async def test_a_user_of_another_enterprise_grid_org_is_refused(start_rig: Start, stack: Services) -> None:
    rig, agent = await recorded_rig(start_rig, stack)
    outsider, dm = fresh_id("U"), fresh_id("D")
    rig.api.users[outsider] = {"team_id": FOREIGN_TEAM, "enterprise_user": {"enterprise_id": "E0OTHER"}}

    await rig.sender.event(message(QUESTION, outsider, dm, "im"))

    await notice_for(rig, outsider, NOT_A_MEMBER)
    await settle(rig)
    assert agent.questions == []


async def test_a_guest_using_slash_lore_gets_a_polite_refusal_and_no_retrieval(
    start_rig: Start, stack: Services
) -> None:
    rig, agent = await recorded_rig(start_rig, stack)
    guest, channel = fresh_id("U"), fresh_id("C")
    rig.api.users[guest] = {"is_restricted": True}

    assert (await rig.sender.command(QUESTION, guest, channel)).status == 200

    notice = await notice_for(rig, guest, GUEST)
    assert notice.ephemeral_for == guest
    await settle(rig)
    assert agent.questions == []
    assert answers_posted(rig) == []


async def test_a_single_channel_guest_mentioning_the_bot_is_refused(start_rig: Start, stack: Services) -> None:
    rig, agent = await recorded_rig(start_rig, stack)
    guest, channel = fresh_id("U"), fresh_id("C")
    rig.api.users[guest] = {"is_restricted": True, "is_ultra_restricted": True}

    await rig.sender.event(mention(QUESTION, guest, channel))

    await notice_for(rig, guest, GUEST)
    await settle(rig)
    assert agent.questions == []


async def test_a_guest_is_answered_only_when_a_guest_group_is_configured(start_rig: Start, stack: Services) -> None:
    permissions = stack.settings.permissions.model_copy(update={"slack_guest_group": "contractors"})
    guest_stack = dataclasses.replace(stack, settings=stack.settings.model_copy(update={"permissions": permissions}))
    rig, agent = await recorded_rig(start_rig, guest_stack)
    guest, dm = fresh_id("U"), fresh_id("D")
    rig.api.users[guest] = {"is_restricted": True}

    await rig.sender.event(message(QUESTION, guest, dm, "im"))

    await final_reply(rig, dm, None)
    assert [q.asker.groups for q in agent.questions] == [("contractors",)]


async def test_a_stranger_following_up_in_an_answered_thread_is_refused(start_rig: Start, stack: Services) -> None:
    rig, agent = await recorded_rig(start_rig, stack)
    colleague, stranger, channel = fresh_id("U"), fresh_id("U"), fresh_id("C")
    rig.api.users[stranger] = {"team_id": FOREIGN_TEAM, "is_stranger": True}
    opening = mention(QUESTION, colleague, channel)
    await rig.sender.event(opening)
    await final_reply(rig, channel, opening["ts"])

    await rig.sender.event(message(QUESTION, stranger, channel, "channel", thread_ts=opening["ts"]))

    notice = await notice_for(rig, stranger, NOT_A_MEMBER)
    assert notice.ephemeral_for == stranger
    await settle(rig)
    assert [q.asker.user_id for q in agent.questions] == [colleague]


async def test_a_stranger_clicking_the_feedback_buttons_records_nothing(start_rig: Start, stack: Services) -> None:
    rig, _ = await recorded_rig(start_rig, stack)
    colleague, stranger, channel = fresh_id("U"), fresh_id("U"), fresh_id("C")
    rig.api.users[stranger] = {"team_id": FOREIGN_TEAM, "is_stranger": True}
    opening = mention(QUESTION, colleague, channel)
    await rig.sender.event(opening)
    answer = await final_reply(rig, channel, opening["ts"])
    before = len(stack.feedback.list())

    for action in (ACTION_HELPFUL, ACTION_NOT_HELPFUL):
        assert (await rig.sender.interaction(rig.sender.button_click(stranger, answer, action))).status == 200

    await rig.api.wait_until(lambda: len([m for m in rig.api.ephemeral_for(stranger) if NOT_A_MEMBER in m.text]) == 2)
    assert len(stack.feedback.list()) == before
    assert rig.api.calls_to("views.open") == []


async def test_a_stranger_typing_slash_lore_feedback_records_nothing(start_rig: Start, stack: Services) -> None:
    # Free-text feedback is read by the team and weighs in retraining: colleagues only.
    rig, _ = await recorded_rig(start_rig, stack)
    stranger, guest, channel = fresh_id("U"), fresh_id("U"), fresh_id("C")
    rig.api.users[stranger] = {"team_id": FOREIGN_TEAM, "is_stranger": True}
    rig.api.users[guest] = {"is_restricted": True}
    before = len(stack.feedback.list())

    from_stranger = await rig.sender.command('feedback =HYPERLINK("https://x.example")', stranger, channel)
    from_guest = await rig.sender.command("feedback your answers are wrong", guest, channel)

    assert from_stranger.status == from_guest.status == 200
    assert NOT_A_MEMBER in json.dumps(from_stranger.json())
    assert GUEST in json.dumps(from_guest.json())
    assert len(stack.feedback.list()) == before


async def test_allowed_team_ids_admit_a_second_workspace_and_no_third(start_rig: Start, stack: Services) -> None:
    rig, agent = await recorded_rig(start_rig, stack, allowed_team_ids=["T0TEST", "T0SISTER"])
    sister, third, dm = fresh_id("U"), fresh_id("U"), fresh_id("D")
    rig.api.users[sister] = {"team_id": "T0SISTER"}
    rig.api.users[third] = {"team_id": "T0THIRD"}

    await rig.sender.event(message(QUESTION, third, f"{dm}3", "im"))
    await rig.sender.event(message(QUESTION, sister, dm, "im"))

    await final_reply(rig, dm, None)
    await notice_for(rig, third, NOT_A_MEMBER)
    assert [q.asker.user_id for q in agent.questions] == [sister]


# --- the channel -------------------------------------------------------------------------


async def test_a_mention_in_an_externally_shared_channel_is_not_answered(start_rig: Start, stack: Services) -> None:
    rig, agent = await recorded_rig(start_rig, stack)
    colleague, channel = fresh_id("U"), fresh_id("C")
    body = {**event_callback(mention(QUESTION, colleague, channel), "EvSHARED1"), "is_ext_shared_channel": True}

    assert (await rig.sender.post(_json(body), "application/json")).status == 200

    notice = await notice_for(rig, colleague, SHARED_CHANNEL)
    assert notice.ephemeral_for == colleague
    await settle(rig)
    assert agent.questions == []
    assert answers_posted(rig) == []


async def test_a_channel_slack_calls_externally_shared_is_not_answered_in(start_rig: Start, stack: Services) -> None:
    """When the event does not say, conversations.info decides."""
    rig, agent = await recorded_rig(start_rig, stack)
    colleague, channel = fresh_id("U"), fresh_id("C")
    rig.api.channels[channel] = {"is_shared": True, "is_ext_shared": True}
    body = event_callback(mention(QUESTION, colleague, channel), "EvSHARED2")
    del body["is_ext_shared_channel"]

    await rig.sender.post(_json(body), "application/json")

    await notice_for(rig, colleague, SHARED_CHANNEL)
    await settle(rig)
    assert agent.questions == []


async def test_only_answer_in_shared_channels_lets_the_bot_answer_in_one(start_rig: Start, stack: Services) -> None:
    colleague, channel = fresh_id("U"), fresh_id("C")
    for allowed in (False, True):
        rig, agent = await recorded_rig(start_rig, stack, answer_in_shared_channels=allowed)
        event = mention(QUESTION, colleague, channel)
        body = {**event_callback(event, f"EvSHARED{allowed}"), "is_ext_shared_channel": True}

        await rig.sender.post(_json(body), "application/json")

        if allowed:
            await final_reply(rig, channel, event["ts"])
            assert len(agent.questions) == 1
        else:
            await notice_for(rig, colleague, SHARED_CHANNEL)
            await settle(rig)
            assert agent.questions == []


async def test_sharing_an_answer_into_an_externally_shared_channel_is_refused(
    start_rig: Start, stack: Services
) -> None:
    rig, _ = await recorded_rig(start_rig, stack)
    colleague, channel = fresh_id("U"), fresh_id("C")
    rig.api.channels[channel] = {"is_shared": True, "is_ext_shared": True}
    await rig.sender.command(QUESTION, colleague, channel)
    private = await rig.api.wait_until(lambda: next((m for m in rig.api.ephemeral_for(colleague) if is_final(m)), None))

    await rig.sender.interaction(rig.sender.button_click(colleague, private, ACTION_SHARE))

    responses = await rig.api.wait_until(lambda: rig.api.responses)
    assert SHARED_CHANNEL in responses[-1][1]["text"]
    assert rig.api.calls_to("chat.postMessage") == []


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()
