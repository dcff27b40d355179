"""Who is an admin, and who may read private answers: e-mails and directory groups
(`console.admins`, `console.private_answers_viewers`), matched against the principals the
directory gives a signed-in e-mail, exactly as document permissions are."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.types import Asker
from knowledge.errors import ConfigurationError
from knowledge.permissions.principals import group, user


class Members:
    """A list of e-mails and `group:<name>` entries, checked for one e-mail at a time."""

    def __init__(self, entries: Sequence[str], principals: Callable[[Asker], frozenset[str]]) -> None:
        self._wanted = frozenset(group(entry) if entry.startswith("group:") else user(entry) for entry in entries)
        self._principals = principals

    def include(self, email: str | None) -> bool:
        """Whether the person with `email` is listed, by e-mail or through a directory group."""
        if not email or not self._wanted:
            return False
        try:
            held = self._principals(Asker(user_id=email, email=email))
        except ConfigurationError:  # not an e-mail address: nobody we can look up
            return False
        return bool(held & self._wanted)
