"""Permissions read from the file system, for documents the ACL file says nothing about.

- world-readable (`o+r`) → `everyone`;
- otherwise group-readable (`g+r`) → the file's Unix group, mapped to a directory group
  through `unix_groups` (an unmapped group keeps its Unix name: `group:<unix group>`; a group
  may also be mapped to `everyone`, e.g. a `staff` group holding every employee);
- owner-readable (`u+r`) → also the owner, mapped to an e-mail through `unix_users`, else
  `<user>@<unix_user_domain>` when a domain is configured, else `<user>@localhost` — an
  address no chat user has, so the document stays private until the owner is mapped;
- no read bit for anyone it could name → nobody.

A group-readable file is also readable by its owner, so both are listed. When the owner or
group has no name on this machine (a numeric id from an NFS server), that part grants
nothing: failing closed is the safe way to be wrong.
"""

from __future__ import annotations

import grp
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from knowledge.permissions.principals import group, user
from knowledge.types import EVERYONE, SourceFile


def stat_group(file: SourceFile) -> str | None:
    """The name of the file's Unix group, or None when it cannot be read or has no name.
    (SourceFile records the owner but not the group, so this costs one stat.)"""
    try:
        gid = os.stat(file.absolute_path).st_gid
        return grp.getgrgid(gid).gr_name
    except (OSError, KeyError):
        return None


@dataclass(frozen=True)
class ModeDecision:
    principals: frozenset[str]
    reason: str


@dataclass(frozen=True)
class FileModePermissions:
    """Maps a file's mode, owner and group to principals (see the module docstring)."""

    unix_groups: Mapping[str, str] = field(default_factory=dict)
    unix_users: Mapping[str, str] = field(default_factory=dict)
    unix_user_domain: str | None = None
    group_of: Callable[[SourceFile], str | None] = stat_group

    def __call__(self, file: SourceFile) -> frozenset[str]:
        return self.decide(file).principals

    def decide(self, file: SourceFile) -> ModeDecision:
        mode = file.mode
        label = f"mode {stat.S_IMODE(mode):04o}"
        if mode & stat.S_IROTH:
            return ModeDecision(frozenset({EVERYONE}), f"{label}: world-readable")
        principals: set[str] = set()
        reasons: list[str] = []
        if mode & stat.S_IRGRP:
            unix_group = self.group_of(file)
            if unix_group is None:
                reasons.append("group-readable, but its group has no name here (grants nothing)")
            else:
                principal = group(self.unix_groups.get(unix_group, unix_group))
                principals.add(principal)
                reasons.append(f"group-readable by Unix group {unix_group!r} → {principal}")
        if mode & stat.S_IRUSR:
            if file.owner is None:
                reasons.append("owner-readable, but its owner has no name here (grants nothing)")
            else:
                principal = user(self._email(file.owner))
                principals.add(principal)
                reasons.append(f"owner-readable by Unix user {file.owner!r} → {principal}")
        if not reasons:
            reasons.append("readable by nobody it names")
        if not principals:
            reasons.append("nobody may read it in Lore; add an ACL rule or change its mode")
        return ModeDecision(frozenset(principals), f"{label}: " + "; ".join(reasons))

    def _email(self, owner: str) -> str:
        if owner in self.unix_users:
            return self.unix_users[owner]
        return f"{owner}@{self.unix_user_domain or 'localhost'}"
