"""Reading Teams activities: scopes, reply chains, mentions and commands."""

from __future__ import annotations

from botbuilder.schema import Activity

from bot.platforms.teams.questions import (
    Request,
    mentions_bot,
    parse_request,
    question_for,
    text_without_bot_mention,
    where,
)
from tests.support.bot_connector import BOT_ID, TeamsConversation, TeamsUser, message_activity

URL = "http://127.0.0.1:1/"


def activity(text: str, conversation: TeamsConversation, mention: bool = False) -> Activity:
    return Activity().deserialize(
        message_activity(text, service_url=URL, conversation=conversation, mention_bot=mention)
    )


def test_personal_chat_is_one_private_thread() -> None:
    a = activity("hi", TeamsConversation())
    place = where(a)
    assert (place.scope, place.conversation_id, place.thread_id, place.place) == (
        "personal",
        "a:personal-chat-alice",
        "a:personal-chat-alice",
        "private",
    )


def test_channel_reply_chain_is_the_thread() -> None:
    a = activity("hi", TeamsConversation("19:abc@thread.tacv2", "channel", root="1700000000001"))
    place = where(a)
    assert place.conversation_id == "19:abc@thread.tacv2"
    assert place.thread_id == "19:abc@thread.tacv2;messageid=1700000000001"
    assert place.place == "thread"  # a reply under an earlier post, as in a Slack thread


def test_new_channel_post_starts_a_chain_named_after_itself() -> None:
    a = activity("hi", TeamsConversation("19:abc@thread.tacv2", "channel"))
    assert where(a).thread_id == f"19:abc@thread.tacv2;messageid={a.id}"
    assert where(a).place == "channel"
    # Teams names a new post's chain after the post itself: still the channel, not a reply.
    a.conversation.id = f"19:abc@thread.tacv2;messageid={a.id}"
    assert (where(a).place, where(a).thread_id) == ("channel", a.conversation.id)


def test_group_chat() -> None:
    a = activity("hi", TeamsConversation("19:group@thread.v2", "groupChat"))
    assert (where(a).scope, where(a).place) == ("groupChat", "group")


def test_mention_is_stripped_literally() -> None:
    a = activity("what is the (VPN) policy?", TeamsConversation("19:g", "groupChat"), mention=True)
    assert mentions_bot(a)
    assert text_without_bot_mention(a) == "what is the (VPN) policy?"
    # Another user's mention keeps the name, loses the tag; a name with regex characters is fine.
    a.text = "<at>Lore</at> ask <at>Bob (HR)</at> about leave"
    a.entities.append(
        type(a.entities[0])(
            type="mention",
            additional_properties={
                "text": "<at>Bob (HR)</at>",
                "mentioned": {"id": "29:bob", "name": "Bob (HR)"},
            },
        )
    )
    assert text_without_bot_mention(a) == "ask Bob (HR) about leave"


def test_message_without_bot_mention() -> None:
    a = activity("hello all", TeamsConversation("19:g", "groupChat"))
    assert not mentions_bot(a)
    assert a.recipient.id == BOT_ID


def test_commands() -> None:
    assert parse_request("help") == Request("help", "")
    assert parse_request("Help!") == Request("help", "")
    assert parse_request("HELP me find the VPN guide") == Request("ask", "HELP me find the VPN guide")
    assert parse_request("feedback: the VPN answer is outdated") == Request("feedback", "the VPN answer is outdated")
    assert parse_request("ask how do I get a laptop?") == Request("ask", "how do I get a laptop?")
    assert parse_request("asking for a friend") == Request("ask", "asking for a friend")
    assert parse_request("feedback") == Request("feedback", "")


def test_question_uses_the_aad_object_id() -> None:
    a = activity("hi", TeamsConversation())
    question = question_for(a, "hi")
    assert question.asker.user_id == TeamsUser().aad_object_id
    assert question.asker.display_name == TeamsUser().name
    assert question.platform == "teams"
