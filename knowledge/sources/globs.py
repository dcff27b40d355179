"""Which files of a source are indexed: its `include` and `exclude` globs, and the hidden and
temporary files no source indexes."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from wcmatch import glob

# Globs match the POSIX path relative to the root. `**` spans folders, a pattern without a
# slash matches the file name at any depth (`*.pdf`), `{a,b}` alternates, and case is
# ignored because the shares this reads (SMB, SharePoint, Drive) are case-insensitive.
GLOB_FLAGS = glob.GLOBSTAR | glob.MATCHBASE | glob.BRACE | glob.IGNORECASE | glob.DOTGLOB

# Editor and office-suite litter: lock files, autosaves, swap files, OS metadata.
# Names starting with "." (.DS_Store, .~lock.x.odt#, .git) are skipped separately.
TEMPORARY_NAMES = ("~*", "*.tmp", "*.swp", "*.swo", "*~", "#*#", "Thumbs.db", "desktop.ini")


def is_hidden_or_temporary(name: str) -> bool:
    """True for dot files and folders and for editor/office temporary files."""
    lowered = name.lower()
    return name.startswith(".") or any(fnmatchcase(lowered, p.lower()) for p in TEMPORARY_NAMES)


class PathFilter:
    """A source's include and exclude globs, compiled once (matching recompiled patterns was
    most of a no-change refresh)."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str]) -> None:
        self._include = glob.compile(list(include) or ["**/*"], flags=GLOB_FLAGS)
        self._exclude = glob.compile(list(exclude), flags=GLOB_FLAGS) if exclude else None

    def included(self, relative: str) -> bool:
        """True when the include globs match the relative path."""
        return bool(self._include.match(relative))

    def excluded(self, relative: str) -> bool:
        """True when an exclude glob matches the relative path."""
        return self._exclude is not None and bool(self._exclude.match(relative))

    def selects(self, relative: str) -> bool:
        """True for a file to index: included, not excluded, and no part of its path hidden
        or temporary."""
        return (
            not any(is_hidden_or_temporary(part) for part in relative.split("/"))
            and self.included(relative)
            and not self.excluded(relative)
        )
