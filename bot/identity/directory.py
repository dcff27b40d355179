"""Who belongs to which groups: the `Directory` interface and its YAML-file implementation.

Directory file format (path in `directory_file` / `LORE_DIRECTORY_FILE`)::

    users:                      # e-mail → the groups that person belongs to
      alice@example.com: [hr, engineering]
      bob@example.com: [engineering]
    groups:                     # optional, the other way round: group → members
      board: [ceo@example.com]
    accounts:                   # optional: chat account → e-mail, for accounts whose
      U024BE7LH: alice@example.com        # platform does not reveal one (Slack user id,
      8f0c5d2e-aad-object-id: bob@example.com   # Teams AAD object id or UPN)
    aad_object_ids:             # optional, Teams: Azure AD object id → e-mail. A listed
      8f0c5d2e-1b7e-4c1f-9a53-0f1e2d3c4b5a: alice@example.com   # object id is that person
                                # whatever the roster says, and a listed e-mail is trusted
                                # from the Teams roster only for its own object id(s)

Group names are written without the `group:` prefix; e-mails, group names and object ids
compare without case. An LDAP, SCIM or Microsoft Graph directory implements the same methods.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from bot.errors import ConfigurationError

_KEYS = {"users", "groups", "accounts", "aad_object_ids"}


class Directory(Protocol):
    """Where people's groups (and, for some chat accounts, e-mails) are looked up."""

    def groups_of(self, email: str) -> frozenset[str]:
        """Names of the groups the person with this e-mail belongs to (empty when unknown)."""
        ...

    def email_of(self, account_id: str) -> str | None:
        """The e-mail of a chat account (Slack user id, Teams AAD object id or UPN), if known."""
        ...

    def email_of_aad_object(self, object_id: str) -> str | None:
        """The e-mail the directory pins to an Azure AD object id, if any."""
        ...

    def aad_objects_of(self, email: str) -> frozenset[str]:
        """The Azure AD object ids the directory pins `email` to (empty: not pinned)."""
        ...


@dataclass(frozen=True)
class DirectoryData:
    """One parsed directory file."""

    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)  # e-mail → groups
    accounts: Mapping[str, str] = field(default_factory=dict)  # account id → e-mail
    aad_object_ids: Mapping[str, str] = field(default_factory=dict)  # object id → e-mail


def parse_directory(text: str, origin: str = "<directory>") -> DirectoryData:
    """Parse directory YAML text. Raises ConfigurationError saying what to fix."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigurationError(f"Directory file {origin} is not valid YAML: {error}") from error
    if data is None:
        return DirectoryData()
    data = _mapping(data, "the top level", origin)
    unknown = sorted(str(key) for key in data if key not in _KEYS)
    if unknown:
        raise ConfigurationError(
            f"Directory file {origin}: unknown key(s) {', '.join(unknown)}; expected users, groups, "
            "accounts, aad_object_ids."
        )
    memberships: dict[str, set[str]] = {}
    for email, groups in _mapping(data.get("users") or {}, "users", origin).items():
        memberships.setdefault(_email(email, f"users.{email}", origin), set()).update(
            _names(groups, f"users.{email}", origin)
        )
    for name, members in _mapping(data.get("groups") or {}, "groups", origin).items():
        (group_name,) = _names([name], f"groups.{name}", origin)
        for email in _names(members, f"groups.{name}", origin):
            memberships.setdefault(_email(email, f"groups.{name}", origin), set()).add(group_name)
    accounts = {
        str(account).strip(): _email(email, f"accounts.{account}", origin)
        for account, email in _mapping(data.get("accounts") or {}, "accounts", origin).items()
    }
    aad_object_ids = {
        str(object_id).strip().casefold(): _email(email, f"aad_object_ids.{object_id}", origin)
        for object_id, email in _mapping(data.get("aad_object_ids") or {}, "aad_object_ids", origin).items()
    }
    return DirectoryData({email: frozenset(groups) for email, groups in memberships.items()}, accounts, aad_object_ids)


class DirectoryFile:
    """A `Directory` read from a YAML file, re-read whenever the file changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._data: DirectoryData | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._current()  # a missing or broken file fails at start-up

    def groups_of(self, email: str) -> frozenset[str]:
        return self._current().groups.get(email.strip().casefold(), frozenset())

    def email_of(self, account_id: str) -> str | None:
        return self._current().accounts.get(account_id.strip())

    def email_of_aad_object(self, object_id: str) -> str | None:
        return self._current().aad_object_ids.get(object_id.strip().casefold())

    def aad_objects_of(self, email: str) -> frozenset[str]:
        wanted = email.strip().casefold()
        return frozenset(oid for oid, pinned in self._current().aad_object_ids.items() if pinned == wanted)

    def _current(self) -> DirectoryData:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            raise ConfigurationError(
                f"Directory file {self.path} does not exist. Create it or fix directory_file in "
                "lore.toml (LORE_DIRECTORY_FILE)."
            ) from None
        stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
        with self._lock:
            if self._data is None or stamp != self._stamp:
                try:
                    text = self.path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as error:
                    raise ConfigurationError(f"Cannot read directory file {self.path}: {error}") from error
                self._data, self._stamp = parse_directory(text, str(self.path)), stamp
            return self._data


def _mapping(value: Any, where: str, origin: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ConfigurationError(f"Directory file {origin}: {where} must be a mapping (key: value), not {value!r}.")
    return value


def _names(value: Any, where: str, origin: str) -> list[str]:
    values = [] if value is None else [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(item, str) and item.strip() for item in values):
        raise ConfigurationError(f"Directory file {origin}: {where} must be a list of names, e.g. [hr, engineering].")
    return [item.strip().removeprefix("group:").casefold() for item in values]


def _email(value: Any, where: str, origin: str) -> str:
    email = str(value).strip().casefold()
    if "@" not in email.strip("@"):
        raise ConfigurationError(f"Directory file {origin}: {where}: {value!r} is not an e-mail address.")
    return email
