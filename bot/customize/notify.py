"""Telling the admins what a background job did. The places are the platforms' business
(`bot.platforms.admin_notices` builds one notifier per configured place); this module holds
the port they implement and the best-effort delivery: a failure is logged, never raised,
because the job's own result (an adapter promoted or not) stands either way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from bot.errors import LoreError

log = logging.getLogger(__name__)

# How long one notice may take to deliver.
NOTICE_TIMEOUT_SECONDS = 15.0


class NoticeError(LoreError):
    """A notice was not delivered; the message is safe to log (it names no secret)."""


class AdminNotifier(Protocol):
    """One place admins read."""

    @property
    def target(self) -> str:
        """Where notices go, for logs (never a secret)."""

    def send(self, text: str) -> None:
        """Deliver `text` (plain text, several lines); NoticeError when it was not delivered."""


def notify(notifiers: Sequence[AdminNotifier], text: str) -> None:
    """Send `text` to every notifier; failures are logged."""
    for notifier in notifiers:
        try:
            notifier.send(text)
        except NoticeError as error:
            log.warning("Could not notify %s: %s", notifier.target, error)
