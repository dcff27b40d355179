"""The principals a person asking a question holds: `everyone`, `user:<email>` and
`group:<name>` for each group the directory puts them in.

A person is known by e-mail: the one the adapter found on the platform (`Asker.email`), else
the directory's entry for their chat account. Someone with no known e-mail holds only
`everyone`. Groups come from the directory, plus any the adapter itself asserted
(`Asker.groups`, filled by server-side code only, never from what a user typed).
"""

from __future__ import annotations

from bot.identity.directory import Directory
from bot.types import Asker
from knowledge.errors import ConfigurationError
from knowledge.permissions.principals import group, user
from knowledge.types import EVERYONE


class PrincipalsResolver:
    """Turns an `Asker` into the principals retrieval filters on."""

    def __init__(self, directory: Directory | None = None) -> None:
        self.directory = directory

    def __call__(self, asker: Asker) -> frozenset[str]:
        return self.principals(asker)

    def email_of(self, asker: Asker) -> str | None:
        """The asker's e-mail: the platform's, else the directory's for their account."""
        if asker.email:
            return asker.email.strip().casefold()
        if self.directory is not None and asker.user_id:
            found = self.directory.email_of(asker.user_id)
            return found.strip().casefold() if found else None
        return None

    def principals(self, asker: Asker) -> frozenset[str]:
        held = {EVERYONE}
        names = set(asker.groups)
        email = self.email_of(asker)
        if email is not None:
            try:
                held.add(user(email))
            except ConfigurationError:
                # Not an address (a platform quirk): treat the person as unknown.
                return frozenset({EVERYONE, *(_groups(names))})
            if self.directory is not None:
                names |= self.directory.groups_of(email)
        return frozenset(held | _groups(names))


def _groups(names: set[str]) -> set[str]:
    return {group(name) for name in names if name.strip()}
