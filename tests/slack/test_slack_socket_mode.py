"""Socket Mode against a local websocket server playing Slack's side: the bot asks
`apps.connections.open` (with the app token) for the URL, connects, receives envelopes and
acknowledges each one by its envelope id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.platforms.slack.rendering import ACTION_HELPFUL, PLACEHOLDER_TEXT
from tests.slack.conftest import SlackRig, fresh_id
from tests.support.slack_api import APP_TOKEN, event_callback, mention


async def test_socket_mode_receives_envelopes_and_acks_them(
    start_rig: Callable[..., Awaitable[SlackRig]],
) -> None:
    rig = await start_rig(app_token=APP_TOKEN)
    api = rig.api
    await api.wait_connected()
    opened = api.calls_to("apps.connections.open")
    assert len(opened) == 1 and opened[0].token == APP_TOKEN
    channel, user = fresh_id("C"), fresh_id("U")

    event = mention("When is the Beacon on-call handoff?", user, channel)
    event_envelope = await api.send_envelope("events_api", event_callback(event, "EvSOCKET1"))
    command_envelope = await api.send_envelope(
        "slash_commands",
        {
            "command": "/lore",
            "text": "help",
            "user_id": user,
            "channel_id": channel,
            "team_id": "T0TEST",
            "api_app_id": "A0LORE",
            "response_url": api.response_url("socket-command"),
            "trigger_id": "trigger-socket",
        },
        accepts_response_payload=True,
    )

    await api.wait_until(lambda: event_envelope in api.acks and command_envelope in api.acks)
    assert api.acks[event_envelope] == {"envelope_id": event_envelope}
    help_payload = api.acks[command_envelope]["payload"]
    assert help_payload["response_type"] == "ephemeral"
    assert "/lore feedback" in help_payload["blocks"][0]["text"]["text"]

    answer = await api.wait_until(
        lambda: next(
            (m for m in api.thread(channel, event["ts"]) if any(b["type"] == "actions" for b in m.blocks)),
            None,
        )
    )
    assert api.calls_to("chat.postMessage")[0].args["text"] == PLACEHOLDER_TEXT
    answer_id = next(
        e["value"]
        for b in answer.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == ACTION_HELPFUL
    )
    assert rig.services.answers.get(answer_id).question == "When is the Beacon on-call handoff?"


async def test_socket_mode_serves_no_http_endpoint(
    start_rig: Callable[..., Awaitable[SlackRig]],
) -> None:
    rig = await start_rig(app_token=APP_TOKEN)
    await rig.api.wait_connected()
    reply = await rig.sender.post(b'{"type": "url_verification", "challenge": "x"}', "application/json")
    assert reply.status in (404, 405)
