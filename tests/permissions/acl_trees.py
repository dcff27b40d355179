"""Hypothesis strategies for random ACL trees, file trees and readers, with a reference
model of the permission rules written independently of the implementation (plain string
tests instead of globs), for the property tests."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from typing import Literal

import yaml
from hypothesis import strategies as st

FOLDERS = ("hr", "hr/cases", "board", "pub", "eng")
NAMES = ("a.md", "b.txt", "c.md")
PATHS = tuple(f"{folder}/{name}" for folder in FOLDERS for name in NAMES) + NAMES
EMAILS = ("alice@example.com", "bob@example.com", "cfo@example.com")
GROUPS = ("hr", "board", "eng")
PRINCIPALS = ("everyone", *(f"user:{e}" for e in EMAILS), *(f"group:{g}" for g in GROUPS))
MODES = (0o644, 0o640, 0o600, 0o604, 0o040, 0o000)
OWNER_EMAIL = "owner@example.com"
FILE_GROUP = "eng"  # the Unix group of every file, mapped to this directory group

# A pattern is (kind, argument); `glob` turns it into ACL syntax, `matches` is the reference.
Pattern = tuple[str, str]


def glob(pattern: Pattern) -> str:
    kind, arg = pattern
    return {"tree": f"{arg}/**", "folder": f"{arg}/*", "ext": f"*.{arg}", "exact": arg, "dir": f"{arg}/"}[kind]


def matches(pattern: Pattern, path: str) -> bool:
    kind, arg = pattern
    if kind in ("tree", "dir"):
        return path.startswith(arg + "/")
    if kind == "folder":
        return path.startswith(arg + "/") and "/" not in path[len(arg) + 1 :]
    if kind == "ext":
        return path.endswith("." + arg)
    # A pattern without "/" names a file at any depth, like the sources' include globs.
    return path == arg if "/" in arg else path.rsplit("/", 1)[-1] == arg


patterns = st.one_of(
    st.tuples(st.sampled_from(["tree", "folder", "dir"]), st.sampled_from(FOLDERS)),
    st.tuples(st.just("ext"), st.sampled_from(["md", "txt"])),
    st.tuples(st.just("exact"), st.sampled_from(PATHS)),
)
# None = `filesystem` (the file's mode decides).
grants = st.one_of(st.none(), st.frozensets(st.sampled_from(PRINCIPALS), max_size=3))
rules = st.lists(st.tuples(patterns, grants), max_size=5)


@dataclass(frozen=True)
class Section:
    default: frozenset[str] | None | Literal[False]  # False = no default given
    rules: list[tuple[Pattern, frozenset[str] | None]]

    def as_yaml(self) -> dict[str, object]:
        data: dict[str, object] = {"rules": [{"path": glob(p), "allow": _allow(g)} for p, g in self.rules]}
        if self.default is not False:
            data["default"] = _allow(self.default)
        return data


sections = st.builds(Section, st.one_of(st.just(False), grants), rules)


@dataclass(frozen=True)
class AclTree:
    everywhere: Section
    sources: dict[str, Section]

    def text(self) -> str:
        data = self.everywhere.as_yaml()
        if self.sources:
            data["sources"] = {name: section.as_yaml() for name, section in self.sources.items()}
        return yaml.safe_dump(data)

    def expected(self, source: str, path: str, mode: int) -> frozenset[str]:
        """The reference answer: own rules, global rules, own default, global default, mode."""
        own = self.sources.get(source, Section(False, []))
        for pattern, grant in (*own.rules, *self.everywhere.rules):
            if matches(pattern, path):
                return file_mode(mode) if grant is None else grant
        for default in (own.default, self.everywhere.default):
            if default is not False:
                return file_mode(mode) if default is None else default
        return file_mode(mode)


def acl_trees(source_names: tuple[str, ...]) -> st.SearchStrategy[AclTree]:
    return st.builds(
        AclTree, sections, st.dictionaries(st.sampled_from(source_names), sections, max_size=len(source_names))
    )


def file_mode(mode: int) -> frozenset[str]:
    if mode & stat.S_IROTH:
        return frozenset({"everyone"})
    held = set()
    if mode & stat.S_IRGRP:
        held.add(f"group:{FILE_GROUP}")
    if mode & stat.S_IRUSR:
        held.add(f"user:{OWNER_EMAIL}")
    return frozenset(held)


@dataclass(frozen=True)
class Reader:
    email: str | None
    groups: frozenset[str]

    def principals(self) -> frozenset[str]:
        held = {"everyone", *(f"group:{g}" for g in self.groups)}
        if self.email:
            held.add(f"user:{self.email}")
        return frozenset(held)


readers = st.builds(
    Reader,
    st.one_of(st.none(), st.sampled_from((*EMAILS, OWNER_EMAIL, "stranger@example.com"))),
    st.frozensets(st.sampled_from(GROUPS)),
)


def reference_may_read(document: frozenset[str], reader: Reader) -> bool:
    """Written out case by case rather than as one intersection."""
    if "everyone" in document:
        return True
    if reader.email and f"user:{reader.email}" in document:
        return True
    return any(f"group:{g}" in document for g in reader.groups)


def _allow(grant: frozenset[str] | None) -> object:
    return "filesystem" if grant is None else sorted(grant)
