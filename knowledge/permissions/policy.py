"""The permission resolver the KnowledgeBase calls for every file at indexing time.

`PermissionPolicy(file)` returns the principals that may read the file; `explain(file)`
also says why (which ACL rule or default, which file mode, or the source being public). Each
source's permission source (`FolderSourceSettings.permissions`) is chosen explicitly: see
`permission_sources`. The ACL file is re-read whenever it changes on disk, so a rule edit
takes effect at the next refresh; the sync then updates the stored permissions without
re-embedding anything. When file modes decide on an SMB/CIFS mount, where they mean little,
the policy keeps a warning for the refresh report (`take_warnings`).
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from knowledge.config import PermissionSource, SourceSettings
from knowledge.errors import ConfigurationError
from knowledge.permissions.acl import (
    AclFile,
    check_acl_location,
    check_source_names,
    load_acl_file,
)
from knowledge.permissions.filemode import FileModePermissions
from knowledge.sources.mounts import is_smb
from knowledge.types import EVERYONE, SourceFile

DecidedBy = Literal["rule", "default", "file-mode", "source", "public"]


def permission_sources(sources: Sequence[SourceSettings], acl_configured: bool) -> dict[str, PermissionSource]:
    """Each source's permission source, as configured; unset means "acl" when an ACL file is
    configured. Raises ConfigurationError for a folder that has neither (a share's file
    modes may make every file readable by everyone, so that is never chosen silently), for
    "acl" without an ACL file, and for a permission source the kind of source cannot give
    (file modes of a cloud drive, the sharing of a folder)."""
    chosen: dict[str, PermissionSource] = {}
    for source in sources:
        if source.kind == "folder" and source.permissions == "source":
            raise ConfigurationError(
                f'Source {source.name!r} is a folder, which has no sharing of its own: choose permissions = "acl", '
                '"file-modes" or "public".'
            )
        if source.kind != "folder" and source.permissions == "file-modes":
            raise ConfigurationError(
                f'Source {source.name!r} ({source.kind}) has no file modes: choose permissions = "source" (the '
                'drive\'s own sharing), "acl" or "public".'
            )
        if source.permissions == "acl" and not acl_configured:
            raise ConfigurationError(
                f'Source {source.name!r} has permissions = "acl" but no ACL file is configured: set '
                "acl_file in lore.toml (LORE_ACL_FILE) or choose another permission source."
            )
        if source.permissions is None and not acl_configured:
            raise ConfigurationError(
                f"Source {source.name!r} ({getattr(source, 'path', source.kind)}) does not say who may read its documents. "
                'Set `permissions` in its [[sources]] table in lore.toml: "file-modes" (each '
                "file's Unix mode decides; on an SMB/CIFS mount that is usually everyone), "
                '"public" (everyone may read every document) or "acl" with an ACL file (acl_file).'
            )
        chosen[source.name] = source.permissions or "acl"
    return chosen


@dataclass(frozen=True)
class PermissionExplanation:
    """Who may read one document, and the rule or file mode that decided it."""

    source: str
    path: str  # relative to the source root
    principals: frozenset[str]
    decided_by: DecidedBy
    reason: str  # one line a person can act on

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "path": self.path,
            "principals": sorted(self.principals),
            "decided_by": self.decided_by,
            "reason": self.reason,
        }


class PermissionPolicy:
    """Per source: the ACL file first, then the file's mode ("acl"); the file's mode only
    ("file-modes"); or everyone ("public"). Thread-safe; cheap to call per file.

    `sources` are the configured (name, root) pairs (root None for a cloud drive): the ACL
    file may not lie inside a root and may only name these sources. `choices` gives each source's permission source (see
    `permission_sources`); a source it does not name gets "acl" with an ACL file, else
    "file-modes". `smb_folder` tells whether a root lies on an SMB/CIFS mount."""

    def __init__(
        self,
        acl_file: Path | None,
        sources: Sequence[tuple[str, Path | None]],
        file_modes: FileModePermissions | None = None,
        choices: Mapping[str, PermissionSource] | None = None,
        smb_folder: Callable[[Path], bool] = is_smb,
    ) -> None:
        self.acl_path = Path(acl_file).expanduser() if acl_file is not None else None
        self.source_names = [name for name, _ in sources]
        self._drives = {name for name, root in sources if root is None}  # cloud drives: no folder
        self.file_modes = file_modes or FileModePermissions()
        self.choices = dict(choices or {})
        self._smb_folder = smb_folder
        self._on_smb: dict[str, bool] = {}  # root → on an SMB/CIFS mount
        self._decided_on_smb: Counter[tuple[str, str]] = Counter()  # (source, root) → files
        self._lock = threading.Lock()
        self._acl: AclFile | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._checked_roots: set[str] = set()
        if self.acl_path is not None:
            check_acl_location(self.acl_path, [root for _, root in sources if root is not None])
            self._current_acl()  # fail at start-up, not at the first refresh

    def __call__(self, file: SourceFile) -> frozenset[str]:
        return self.explain(file).principals

    def explain(self, file: SourceFile) -> PermissionExplanation:
        """The principals that may read `file`, with the reason."""
        explanation = self._decide(file)
        if explanation.decided_by == "file-mode" and self._is_on_smb(file.root):
            with self._lock:
                self._decided_on_smb[(file.source, file.root)] += 1
        return explanation

    def take_warnings(self) -> list[str]:
        """What to warn about since the last call: sources whose file modes decided on an
        SMB/CIFS mount, where modes come from mount options and hide the share's ACLs."""
        with self._lock:
            decided, self._decided_on_smb = self._decided_on_smb, Counter()
        return [
            f"source {source}: file modes decided who may read {count} document(s) on an SMB/CIFS "
            f"mount ({root}); there modes come from mount options (file_mode=...), not from the "
            "share's ACLs, and may make every file readable by everyone. Give this source an ACL "
            'file (permissions = "acl") or check `lore acl explain`.'
            for (source, root), count in sorted(decided.items())
        ]

    def _decide(self, file: SourceFile) -> PermissionExplanation:
        choice = self.choices.get(file.source, "acl" if self.acl_path is not None else "file-modes")
        if choice == "public":
            return self._explanation(
                file, frozenset({EVERYONE}), "public", f'source {file.source} is public (permissions = "public")'
            )
        if choice == "source":
            return self._shared_by_source(file, f"source {file.source} follows the drive's own sharing")
        if choice == "file-modes":
            mode = self.file_modes.decide(file)
            return self._explanation(
                file, mode.principals, "file-mode", f"source {file.source} uses file modes; {mode.reason}"
            )
        acl = self._current_acl()
        if acl is not None:
            if file.source not in self._drives:
                self._check_root(file.root)
            decision = acl.decide(file.source, file.relative_path)
            grant = decision.grant
            if grant is not None:
                where = f"{grant.where} of ACL file {acl.origin}"
                decided_by: DecidedBy = "rule" if decision.rule is not None else "default"
                if grant.principals is not None:
                    shared = ", ".join(sorted(grant.principals)) or "nobody"
                    return self._explanation(file, grant.principals, decided_by, f"{where}: {shared}")
                if file.principals is not None:
                    return self._shared_by_source(file, f"{where} defers to the drive's sharing")
                mode = self.file_modes.decide(file)
                return self._explanation(
                    file, mode.principals, "file-mode", f"{where} defers to the file system; {mode.reason}"
                )
        if file.principals is not None:
            return self._shared_by_source(file, "no ACL rule or default applies")
        mode = self.file_modes.decide(file)
        return self._explanation(file, mode.principals, "file-mode", f"no ACL rule or default applies; {mode.reason}")

    def _shared_by_source(self, file: SourceFile, why: str) -> PermissionExplanation:
        """The drive's own sharing, as the source mapped it to principals; nobody when the
        source did not say (a file it could not read the permissions of)."""
        principals = file.principals if file.principals is not None else frozenset()
        shared = ", ".join(sorted(principals)) or "nobody"
        return self._explanation(file, principals, "source", f"{why}: shared with {shared}")

    @staticmethod
    def _explanation(
        file: SourceFile, principals: frozenset[str], decided_by: DecidedBy, reason: str
    ) -> PermissionExplanation:
        return PermissionExplanation(file.source, file.relative_path, principals, decided_by, reason)

    def _is_on_smb(self, root: str) -> bool:
        if root not in self._on_smb:
            self._on_smb[root] = self._smb_folder(Path(root))
        return self._on_smb[root]

    def _check_root(self, root: str) -> None:
        """Also refuse sources given at refresh time (`lore index --source PATH`) that hold
        the ACL file; each root is checked once."""
        if root not in self._checked_roots and self.acl_path is not None:
            check_acl_location(self.acl_path, [Path(root)])
            self._checked_roots.add(root)

    def _current_acl(self) -> AclFile | None:
        """The parsed ACL file, re-read when its size, mtime or inode changed (one stat per
        call: a refresh sees an edit made just before it)."""
        if self.acl_path is None:
            return None
        try:
            info = os.stat(self.acl_path)
        except OSError:
            info = None
        stamp = (info.st_ino, info.st_size, info.st_mtime_ns) if info else None
        with self._lock:
            if self._acl is None or stamp != self._stamp:
                acl = load_acl_file(self.acl_path)  # raises ConfigurationError when missing or bad
                check_source_names(acl, self.source_names)
                self._acl, self._stamp = acl, stamp
            return self._acl
