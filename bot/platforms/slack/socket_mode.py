"""Socket Mode: Slack delivers events over a websocket the app opens (no public URL needed).
The URL comes from `apps.connections.open` on the configured Web API, with the app token."""

from __future__ import annotations

from slack_bolt.adapter.socket_mode.websockets import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp


class SocketModeConnection:
    """Connects the bolt app to Slack over Socket Mode and disconnects it."""

    def __init__(self, app: AsyncApp, app_token: str) -> None:
        self._handler = AsyncSocketModeHandler(app, app_token=app_token, web_client=app.client)

    async def connect(self) -> None:
        await self._handler.connect_async()

    async def close(self) -> None:
        await self._handler.close_async()
