"""Principals: the names documents are shared with and readers hold.

Three kinds, written exactly like this everywhere (ACL files, the index, search filters):
`everyone`, `user:<email>` and `group:<name>`. Names are case-folded, because e-mail
addresses and directory group names (Active Directory, Google groups) compare without case;
the same string therefore means the same reader wherever it was written.
"""

from __future__ import annotations

from collections.abc import Iterable

from knowledge.errors import ConfigurationError
from knowledge.types import EVERYONE

USER_PREFIX = "user:"
GROUP_PREFIX = "group:"


def user(email: str) -> str:
    """The principal of the person with this e-mail address."""
    email = email.strip().casefold()
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise ConfigurationError(f"{email!r} is not an e-mail address; user principals are written user:<email>.")
    return USER_PREFIX + email


def group(name: str) -> str:
    """The principal of a directory group (`hr`, `board`); `everyone` stays `everyone`."""
    name = name.strip().removeprefix(GROUP_PREFIX).strip().casefold()
    if not name:
        raise ConfigurationError("A group name is empty; write group:<name>, e.g. group:hr.")
    return EVERYONE if name == EVERYONE else GROUP_PREFIX + name


def parse_principal(text: str) -> str:
    """Validate and normalise one principal as written in a configuration file.

    Raises ConfigurationError naming the accepted forms for anything else."""
    if not isinstance(text, str):
        raise ConfigurationError(f"{text!r} is not a principal; write everyone, user:<email> or group:<name>.")
    value = text.strip()
    lowered = value.casefold()
    if lowered == EVERYONE:
        return EVERYONE
    if lowered.startswith(USER_PREFIX):
        return user(value[len(USER_PREFIX) :])
    if lowered.startswith(GROUP_PREFIX):
        return group(value[len(GROUP_PREFIX) :])
    raise ConfigurationError(
        f"{text!r} is not a principal; write everyone, user:<email> (user:cfo@example.com) or group:<name> (group:hr)."
    )


def may_read(document: Iterable[str], reader: Iterable[str]) -> bool:
    """The one rule of access: a reader may read a document when they hold at least one of
    the principals it is shared with. Every reader holds `everyone`."""
    return not set(document).isdisjoint({*reader, EVERYONE})
