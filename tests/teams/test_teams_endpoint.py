"""`POST /api/messages` over real HTTP, exactly as the Bot Framework sends activities, with the
bot's replies going to the Bot Connector mock on loopback (local mode: no tokens)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterator, Sequence

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.errors import BusyError
from bot.model.base import ChatMessage, GenerationSettings
from bot.platforms.teams.rendering import FEEDBACK_ACTION, teams_markdown
from bot.platforms.teams.routes import teams_routes
from tests.support.bot_connector import (
    BOT_ID,
    ConnectorMock,
    SentActivity,
    TeamsConversation,
    TeamsUser,
    ask_via_teams,
    bot_added_activity,
    card_submit_activity,
    message_activity,
    post_activity,
    serve,
    submit_action_activity,
    teams_test_client,
)

CHANNEL = "19:general-abc@thread.tacv2"
QUESTION = "How many vacation days do employees get?"


def feedback_rows(services: object, user: TeamsUser) -> list:
    return [f for f in services.feedback.list() if f.user_id == user.aad_object_id]


def assert_answer_card(message: SentActivity, services: object) -> str:
    """The final answer message matches the stored answer: text, sources, feedback."""
    (card,) = message.cards
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert message.body["channelData"]["feedbackLoopEnabled"] is True
    helpful = card["actions"][0]
    assert helpful["data"]["action"] == FEEDBACK_ACTION
    answer_id = helpful["data"]["answerId"]
    stored = services.answers.get(answer_id)
    assert stored is not None and stored.platform == "teams"
    if stored.citations:
        assert "**Sources**" in message.card_text
        for citation in stored.citations:
            assert f"[{citation['number']}]" in message.card_text
    assert message.body["summary"]
    return answer_id


async def test_personal_message_gets_a_card_with_sources_and_feedback(
    client: TestClient, connector: ConnectorMock, services: object
) -> None:
    user = TeamsUser("29:dm-user", "Dana", "aad-dana")
    chat = TeamsConversation("a:dm-dana")
    turn = await ask_via_teams(client, connector, QUESTION, user, chat)

    assert turn.activities[0].type == "typing"  # shown at once, before the answer
    answer_id = assert_answer_card(turn.final, services)
    stored = services.answers.get(answer_id)
    assert (stored.user_id, stored.conversation_id, stored.thread_id) == (
        "aad-dana",
        "a:dm-dana",
        "a:dm-dana",
    )
    assert stored.question == QUESTION
    assert stored.citations, "a question the sample docs answer is answered with sources"
    assert turn.answer_id == answer_id
    assert [line.split("]")[0] + "]" for line in turn.source_lines] == [f"[{c['number']}]" for c in stored.citations]
    assert all(s.conversation_id == "a:dm-dana" for s in turn.activities)
    (question,) = services.agent.questions
    assert question.place == "private" and question.platform == "teams"


async def test_channel_mention_is_stripped_and_answered_in_the_reply_chain(
    client: TestClient, connector: ConnectorMock, services: object
) -> None:
    chain = TeamsConversation(CHANNEL, "channel", root="1700000000100")
    turn = await ask_via_teams(client, connector, QUESTION, TeamsUser(), chain)

    (question,) = services.agent.questions
    assert question.text == QUESTION  # no "<at>Lore</at>"
    assert question.place == "thread"
    assert question.conversation_id == CHANNEL
    assert question.thread_id == chain.wire_id
    # Replies go to the chain's conversation id, in reply to the question.
    assert {s.conversation_id for s in turn.activities} == {chain.wire_id}
    assert_answer_card(turn.final, services)


async def test_channel_message_without_mention_is_ignored(
    client: TestClient, connector: ConnectorMock, services: object
) -> None:
    chain = TeamsConversation(CHANNEL, "channel", root="1700000000200")
    activity = message_activity("just chatting", service_url=connector.url, conversation=chain)
    assert (await post_activity(client, activity))[0] == 200
    # A mentioned question afterwards is answered: nothing was queued for the first one.
    await ask_via_teams(client, connector, QUESTION, TeamsUser(), chain)
    assert [q.text for q in services.agent.questions] == [QUESTION]


async def test_follow_up_in_the_chain_keeps_the_thread(
    client: TestClient, connector: ConnectorMock, services: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str] = []
    stream = services.model.stream

    def recording_stream(messages: Sequence[ChatMessage], settings: GenerationSettings | None = None) -> Iterator[str]:
        prompts.append("\n".join(m.content for m in messages))
        return stream(messages, settings)

    # The agent holds this very model object; record the prompts it builds as it writes.
    monkeypatch.setattr(services.model, "stream", recording_stream)
    services.agent.write_with_the_model(monkeypatch)
    chain = TeamsConversation(CHANNEL, "channel", root="1700000000300")
    other_chain = TeamsConversation(CHANNEL, "channel", root="1700000000301")
    follow = "And can I carry unused days over?"
    first = await edited_answer(client, connector, QUESTION, chain)
    prompts_before_follow_up = len(prompts)
    follow_up = await edited_answer(client, connector, follow, chain)
    follow_up_prompts = prompts[prompts_before_follow_up:]
    elsewhere = await edited_answer(client, connector, follow, other_chain)
    elsewhere_prompts = prompts[prompts_before_follow_up + len(follow_up_prompts) :]

    ids = [assert_answer_card(final, services) for final in (first, follow_up, elsewhere)]
    threads = [services.answers.get(i).thread_id for i in ids]
    assert threads == [chain.wire_id, chain.wire_id, other_chain.wire_id]
    history = services.threads.history("teams", CHANNEL, chain.wire_id)
    assert [turn.question for turn in history] == [QUESTION, follow]
    assert [t.question for t in services.threads.history("teams", CHANNEL, other_chain.wire_id)] == [follow]
    # The follow-up's prompt carries the earlier turn of its chain; another chain's does not.
    assert follow_up_prompts and elsewhere_prompts
    assert any(QUESTION in p for p in follow_up_prompts)
    assert not any(QUESTION in p for p in elsewhere_prompts)


async def edit_of(connector: ConnectorMock, message: SentActivity) -> SentActivity:
    """The update that turns a drafted answer into the final one."""
    edits = await connector.wait_for(lambda sent: [s for s in sent if s.method == "PUT" and s.id == message.id])
    (edit,) = [s for s in edits if s.method == "PUT" and s.id == message.id]
    return edit


async def edited_answer(
    client: TestClient, connector: ConnectorMock, text: str, chain: TeamsConversation
) -> SentActivity:
    """Ask with a model that writes: the drafted card, once edited into the final answer."""
    turn = await ask_via_teams(client, connector, text, TeamsUser(), chain)
    return await edit_of(connector, turn.final)


async def test_group_chat_needs_a_mention(client: TestClient, connector: ConnectorMock, services: object) -> None:
    group = TeamsConversation("19:group-chat@thread.v2", "groupChat")
    ignored = message_activity(QUESTION, service_url=connector.url, conversation=group)
    assert (await post_activity(client, ignored))[0] == 200
    turn = await ask_via_teams(client, connector, QUESTION, TeamsUser(), group)
    assert [q.place for q in services.agent.questions] == ["group"]
    assert_answer_card(turn.final, services)


async def test_builtin_feedback_like_and_dislike_with_text_are_stored(
    client: TestClient, connector: ConnectorMock, services: object
) -> None:
    user = TeamsUser("29:fb-user", "Fay", "aad-fay")
    chat = TeamsConversation("a:dm-fay")
    turn = await ask_via_teams(client, connector, QUESTION, user, chat)
    answer_id = assert_answer_card(turn.final, services)

    like = submit_action_activity(
        "like", service_url=connector.url, reply_to_id=turn.final.id, user=user, conversation=chat
    )
    assert await post_activity(client, like) == (200, "")
    dislike = submit_action_activity(
        "dislike",
        service_url=connector.url,
        reply_to_id=turn.final.id,
        feedback_text="It's 30 days now",
        user=user,
        conversation=chat,
    )
    assert await post_activity(client, dislike) == (200, "")

    stored = sorted(feedback_rows(services, user), key=lambda f: f.id)
    assert [(f.answer_id, f.rating, f.text, f.platform, f.conversation_id) for f in stored] == [
        (answer_id, "helpful", "", "teams", "a:dm-fay"),
        (answer_id, "not_helpful", "It's 30 days now", "teams", "a:dm-fay"),
    ]


async def test_builtin_feedback_on_an_unknown_message_is_kept_without_answer(
    client: TestClient, connector: ConnectorMock, services: object
) -> None:
    user = TeamsUser("29:fb-user2", "Gil", "aad-gil")
    like = submit_action_activity("like", service_url=connector.url, reply_to_id="not-ours", user=user)
    assert await post_activity(client, like) == (200, "")
    assert [(f.answer_id, f.rating) for f in feedback_rows(services, user)] == [(None, "helpful")]


async def test_malformed_feedback_invoke_is_400(client: TestClient, connector: ConnectorMock, services: object) -> None:
    user = TeamsUser("29:fb-user3", "Hal", "aad-hal")
    invoke = submit_action_activity("like", service_url=connector.url, reply_to_id="x", user=user)
    invoke["value"]["actionValue"]["reaction"] = "love"
    status, _ = await post_activity(client, invoke)
    assert status == 400
    assert feedback_rows(services, user) == []


async def test_card_buttons_store_feedback(client: TestClient, connector: ConnectorMock, services: object) -> None:
    user = TeamsUser("29:card-user", "Ivy", "aad-ivy")
    chat = TeamsConversation("a:dm-ivy")
    turn = await ask_via_teams(client, connector, QUESTION, user, chat)
    card = turn.final.cards[0]
    helpful, not_helpful = card["actions"]
    send = not_helpful["card"]["actions"][0]

    for value in (
        helpful["data"],
        {**send["data"], "whatWasWrong": "Outdated", "correction": "30 days since 2026"},
    ):
        before = len(connector.messages("a:dm-ivy"))
        submit = card_submit_activity(
            value,
            service_url=connector.url,
            reply_to_id=turn.final.id,
            user=user,
            conversation=chat,
        )
        assert (await post_activity(client, submit))[0] == 200
        (thanks,) = (
            await connector.wait_for(
                lambda s, before=before: (
                    len([m for m in s if m.conversation_id == "a:dm-ivy" and m.type == "message"]) > before
                )
            )
        )[-1:]
        assert "feedback" in thanks.body["text"]

    answer_id = helpful["data"]["answerId"]
    stored = sorted(feedback_rows(services, user), key=lambda f: f.id)
    assert [(f.answer_id, f.rating, f.text, f.correction) for f in stored] == [
        (answer_id, "helpful", "", ""),
        (answer_id, "not_helpful", "Outdated", "30 days since 2026"),
    ]
    assert services.agent.questions[-1].text == QUESTION  # the submits were not questions


async def test_help_command(client: TestClient, connector: ConnectorMock, services: object) -> None:
    chain = TeamsConversation(CHANNEL, "channel", root="1700000000400")
    activity = message_activity("help", service_url=connector.url, conversation=chain, mention_bot=True)
    assert (await post_activity(client, activity))[0] == 200
    (reply,) = connector.messages(chain.wire_id)  # sent during the request
    assert reply.reply_to_id == activity["id"]
    assert "**feedback**" in reply.body["text"] and "Mention me" in reply.body["text"]
    assert services.agent.questions == []


async def test_feedback_command_refers_to_the_latest_answer(
    client: TestClient, connector: ConnectorMock, services: object
) -> None:
    user = TeamsUser("29:cmd-user", "Jo", "aad-jo")
    chat = TeamsConversation("a:dm-jo")
    # Before any answer: general feedback.
    early = message_activity(
        "feedback please add the travel policy",
        service_url=connector.url,
        user=user,
        conversation=chat,
    )
    assert (await post_activity(client, early))[0] == 200
    turn = await ask_via_teams(client, connector, QUESTION, user, chat)
    answer_id = assert_answer_card(turn.final, services)
    late = message_activity(
        "feedback the leave answer is outdated",
        service_url=connector.url,
        user=user,
        conversation=chat,
    )
    assert (await post_activity(client, late))[0] == 200

    stored = sorted(feedback_rows(services, user), key=lambda f: f.id)
    assert [(f.answer_id, f.rating, f.text) for f in stored] == [
        (None, None, "please add the travel policy"),
        (answer_id, None, "the leave answer is outdated"),
    ]
    replies = [m.body.get("text", "") for m in connector.messages("a:dm-jo") if not m.cards]
    assert replies == [
        "Thanks, your feedback has been recorded.",
        "Thanks, your feedback on my latest answer has been recorded.",
    ]


async def test_welcome_when_the_bot_is_added(client: TestClient, connector: ConnectorMock) -> None:
    team = TeamsConversation("19:team-general@thread.tacv2", "channel")
    assert (await post_activity(client, bot_added_activity(service_url=connector.url, conversation=team)))[0] == 200
    (welcome,) = connector.messages(team.id)
    assert "I'm **Lore**" in welcome.body["text"] and "**help**" in welcome.body["text"]

    someone = bot_added_activity(service_url=connector.url, conversation=team)
    someone["membersAdded"] = [{"id": "29:new-colleague"}]
    assert (await post_activity(client, someone))[0] == 200
    assert len(connector.messages(team.id)) == 1  # no welcome for other members


BAD_REQUESTS = [
    (b"{not json", "application/json", 400),
    (b"\xff\xfe", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b'{"type": "message", "text": "hi"}', "application/json", 400),  # no serviceUrl etc.
    (b'{"type": "message", "entities": "x", "serviceUrl": "http://x/"}', "application/json", 400),
    (b'{"type": 5, "serviceUrl": "http://x/"}', "application/json", 400),
    (b"type=message", "application/x-www-form-urlencoded", 415),
    (b"", "application/json", 400),
    (b"{}", "text/plain", 415),
]


async def test_malformed_requests_are_rejected_and_nothing_breaks(
    client: TestClient, connector: ConnectorMock, services: object
) -> None:
    for body, content_type, status in BAD_REQUESTS:
        response = await client.post("/api/messages", data=body, headers={"Content-Type": content_type})
        assert response.status == status, body
        assert "error" in await response.json()
    # No Content-Type at all.
    response = await client.post("/api/messages", data=b"{}", skip_auto_headers={"Content-Type"})
    assert response.status == 415
    assert connector.sent == [] and services.agent.questions == []
    # The server still answers the next real question.
    await ask_via_teams(client, connector, QUESTION, TeamsUser(), TeamsConversation("a:after-bad-request"))


async def test_redelivered_activity_is_answered_once(
    client: TestClient, connector: ConnectorMock, services: object
) -> None:
    chat = TeamsConversation("a:dm-retry")
    activity = message_activity(QUESTION, service_url=connector.url, conversation=chat)
    assert (await post_activity(client, activity))[0] == 200
    assert (await post_activity(client, activity))[0] == 200
    await connector.wait_for(lambda s: any(m.cards for m in s if m.conversation_id == chat.id))
    await client.close()  # finishes answers in flight
    assert len(services.agent.questions) == 1
    assert len([m for m in connector.messages(chat.id) if m.cards]) == 1


class FailingAgent:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def answer(self, question: object, history: object, on_text: object = None, on_draft: object = None) -> object:
        raise self.error


async def test_a_failing_model_gets_an_apology_with_an_error_id(
    services: object, connector: ConnectorMock, caplog: pytest.LogCaptureFixture
) -> None:
    broken = dataclasses.replace(services, agent=FailingAgent(RuntimeError("model exploded")))
    client = await teams_test_client(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="bot.platforms.teams"):
            turn = await ask_via_teams(client, connector, QUESTION, TeamsUser(), TeamsConversation("a:dm-broken"))
        apology = turn.final.body["text"]
        assert apology.startswith("Sorry, something went wrong")
        assert "model exploded" not in apology and "Traceback" not in apology
        error_id = apology.split("`")[1]
        assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)
    finally:
        await client.close()


async def test_a_busy_model_gets_a_polite_reply(services: object, connector: ConnectorMock) -> None:
    busy = dataclasses.replace(services, agent=FailingAgent(BusyError("queue full")))
    client = await teams_test_client(busy)
    try:
        turn = await ask_via_teams(client, connector, QUESTION, TeamsUser(), TeamsConversation("a:dm-busy"))
        assert "many questions" in turn.final.body["text"]
    finally:
        await client.close()


async def test_questions_over_the_rate_limit_get_a_polite_reply(services: object, connector: ConnectorMock) -> None:
    teams = services.settings.teams.model_copy(update={"rate_limit_per_minute": 2})
    limited = dataclasses.replace(services, settings=services.settings.model_copy(update={"teams": teams}))
    client = await teams_test_client(limited)
    try:
        user, other = TeamsUser("29:eager", "Eager", "aad-eager"), TeamsUser("29:calm", "Calm", "aad-calm")
        chat = TeamsConversation("a:dm-eager")
        turns = [await ask_via_teams(client, connector, QUESTION, user, chat) for _ in range(3)]
        assert all(assert_answer_card(turn.final, services) for turn in turns[:2])
        assert "faster than I can keep up" in turns[2].final.body["text"]
        assert not turns[2].final.cards and len(turns[2].activities) == 1  # no typing, no answer
        calm = await ask_via_teams(client, connector, QUESTION, other, TeamsConversation("a:dm-calm"))
        assert assert_answer_card(calm.final, services)  # the limit is per user
        assert len([q for q in services.agent.questions if q.asker.user_id == "aad-eager"]) == 2
    finally:
        await client.close()


async def test_typing_indicator_repeats_while_the_answer_takes_long(services: object, connector: ConnectorMock) -> None:
    class SlowAgent:
        def answer(self, question: object, history: object, on_text: object = None, on_draft: object = None) -> object:
            time.sleep(1.0)
            return services.agent.answer(question, history, on_text, on_draft)

    slow = dataclasses.replace(services, agent=SlowAgent())
    app = web.Application()
    teams_routes(slow, typing_interval=0.2)(app)
    client = await serve(app)
    try:
        group = TeamsConversation("19:slow-group@thread.v2", "groupChat")  # no streaming there
        turn = await ask_via_teams(client, connector, QUESTION, TeamsUser(), group)
        typing = [a for a in turn.activities if a.type == "typing"]
        assert len(typing) >= 3
        assert all("entities" not in a.body for a in typing)
        assert turn.activities[-1] is turn.final
    finally:
        await client.close()


async def test_twenty_questions_at_once_are_all_answered(
    client: TestClient, connector: ConnectorMock, services: object
) -> None:
    users = [TeamsUser(f"29:crowd-{i}", f"User {i}", f"aad-crowd-{i}") for i in range(20)]
    turns = await asyncio.gather(
        *(
            ask_via_teams(client, connector, QUESTION, u, TeamsConversation(f"a:dm-crowd-{i}"))
            for i, u in enumerate(users)
        )
    )
    assert len({assert_answer_card(t.final, services) for t in turns}) == 20
    assert all(m.reply_to_id for t in turns for m in t.activities)
    assert all(t.final.body["from"]["id"] == BOT_ID for t in turns)


def test_local_mode_warns_loudly(services: object, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.platforms.teams"):
        teams_routes(services)
    assert any(r.levelno == logging.WARNING and "WITHOUT AUTHENTICATION" in r.getMessage() for r in caplog.records)


async def test_personal_chat_streams_the_answer(services: object, connector: ConnectorMock) -> None:
    pieces = ["Employees", "Employees get", "Employees get 25", "Employees get 25 days"]
    streamed: list[str] = []  # every text the agent handed to on_text

    class StreamingAgent:
        """A scripted stream of partial text (as a slow model gives), then the real agent."""

        def answer(self, question: object, history: object, on_text: object = None, on_draft: object = None) -> object:
            def record(text: str) -> None:
                streamed.append(text)
                on_text(text)

            for piece in pieces:
                record(piece)
                time.sleep(0.15)
            return services.agent.answer(question, history, record, on_draft)

    streaming = dataclasses.replace(services, agent=StreamingAgent())
    app = web.Application()
    teams_routes(streaming, stream_interval=0.2)(app)
    client = await serve(app)
    user = TeamsUser("29:stream-user", "Sam", "aad-sam")
    chat = TeamsConversation("a:dm-stream")
    try:
        turn = await ask_via_teams(client, connector, QUESTION, user, chat)
        informative, *updates, final = turn.activities
        assert informative.type == "typing"
        assert informative.body["entities"] == [
            {"type": "streaminfo", "streamType": "informative", "streamSequence": 1}
        ]
        stream_id = informative.id
        assert 1 <= len(updates) < len(streamed)  # throttled: not one request per piece
        sequences = []
        for update in updates:
            assert update.type == "typing"
            (info,) = update.body["entities"]
            assert (info["streamId"], info["streamType"]) == (stream_id, "streaming")
            sequences.append(info["streamSequence"])
            assert update.body["text"] in streamed
        assert updates[0].body["text"] in pieces
        assert sequences == list(range(2, 2 + len(updates)))
        # The final message ends the stream: the answer as text, sources and feedback in a card.
        assert final.type == "message"
        assert {"type": "streaminfo", "streamId": stream_id, "streamType": "final"} in final.body["entities"]
        answer_id = assert_answer_card(final, services)
        assert final.body["text"] == teams_markdown(services.answers.get(answer_id).answer)
        assert final.body["channelData"]["feedbackLoopEnabled"] is True

        # Teams' feedback on the streamed message names it by the stream's id.
        like = submit_action_activity(
            "like", service_url=connector.url, reply_to_id=stream_id, user=user, conversation=chat
        )
        assert await post_activity(client, like) == (200, "")
    finally:
        await client.close()
    assert [(f.answer_id, f.rating) for f in feedback_rows(services, user)] == [(answer_id, "helpful")]


async def test_without_streaming_a_personal_chat_gets_typing_and_one_card(
    client: TestClient, connector: ConnectorMock, services: object
) -> None:
    connector.refuse_streaming = True
    turn = await ask_via_teams(client, connector, QUESTION, TeamsUser(), TeamsConversation("a:dm-old"))
    *typing, final = turn.activities
    assert typing and {a.type for a in typing} == {"typing"} and final.type == "message"
    assert all("entities" not in a.body for a in typing)
    assert_answer_card(turn.final, services)
    assert "text" not in turn.final.body  # the answer is in the card


class BrokenStore:
    def record(self, feedback: object) -> int:
        raise OSError("disk full")


async def test_a_failing_store_gets_an_apology_not_a_crash(
    services: object, connector: ConnectorMock, caplog: pytest.LogCaptureFixture
) -> None:
    broken = dataclasses.replace(services, feedback=BrokenStore())
    client = await teams_test_client(broken)
    chat = TeamsConversation("a:dm-broken-store")
    try:
        command = message_activity("feedback more on travel", service_url=connector.url, conversation=chat)
        assert (await post_activity(client, command))[0] == 200
        (apology,) = connector.messages(chat.id)
        assert apology.body["text"].startswith("Sorry, something went wrong")
        error_id = apology.body["text"].split("`")[1]
        assert any(error_id in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
        # Teams' own feedback buttons get a 500 (Teams shows the user an error), never a hang.
        like = submit_action_activity("like", service_url=connector.url, reply_to_id="m", conversation=chat)
        assert (await post_activity(client, like))[0] == 500
    finally:
        await client.close()


async def test_the_askers_email_comes_from_the_conversation_roster(
    client: TestClient, connector: ConnectorMock, services: object
) -> None:
    erin = TeamsUser("29:erin", "Erin Example", "aad-erin")
    await ask_via_teams(client, connector, QUESTION, erin, TeamsConversation("a:dm-erin"))

    (question,) = services.agent.questions
    assert question.asker.user_id == "aad-erin"
    assert question.asker.email == "erin@example.com"  # what decides the documents she may read


async def test_a_writing_model_drafts_the_excerpts_then_edits_its_answer_in(
    client: TestClient, connector: ConnectorMock, services: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.agent.write_with_the_model(monkeypatch)
    chain = TeamsConversation(CHANNEL, "channel", root="1700000000500")
    turn = await ask_via_teams(client, connector, QUESTION, TeamsUser(), chain)
    draft = turn.final  # the excerpts, sent before the model has written a word
    (card,) = draft.cards
    draft_answer_id = card["actions"][0]["data"]["answerId"]
    final = await edit_of(connector, draft)
    # One message, edited in place, rated as the one answer the log keeps.
    assert assert_answer_card(final, services) == draft_answer_id
    replies = [s for s in connector.sent if s.reply_to_id == draft.reply_to_id and s.type == "message"]
    assert replies == [draft]


async def test_personal_chat_shows_the_draft_first_and_the_text_beneath_it(
    services: object, connector: ConnectorMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.agent.write_with_the_model(monkeypatch)
    app = web.Application()
    teams_routes(services, stream_interval=0.05)(app)
    client = await serve(app)
    try:
        turn = await ask_via_teams(
            client, connector, QUESTION, TeamsUser("29:draft-user", "Kim", "aad-kim"), TeamsConversation("a:dm-draft")
        )
    finally:
        await client.close()
    informative, *updates, final = turn.activities
    assert updates, "the draft streamed before the final message"
    draft_text = updates[0].body["text"]
    assert "[1]" in draft_text and "*" in draft_text  # the labelled excerpts
    assert all(update.body["text"].startswith(draft_text) for update in updates)
    assert final.type == "message"
