"""The permission resolver the KnowledgeBase calls for every file at indexing time.

`PermissionPolicy(file)` returns the principals that may read the file; `explain(file)`
also says why (which ACL rule or default, or which file mode). The ACL file is re-read
whenever it changes on disk, so a rule edit takes effect at the next refresh; the sync
then updates the stored permissions without re-embedding anything.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from knowledge.permissions.acl import (
    AclFile,
    check_acl_location,
    check_source_names,
    load_acl_file,
)
from knowledge.permissions.filemode import FileModePermissions
from knowledge.types import SourceFile

DecidedBy = Literal["rule", "default", "file-mode"]


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
    """ACL file first, then the file's mode. Thread-safe; cheap to call per file.

    `sources` are the configured (name, root) pairs: the ACL file may not lie inside a root
    and may only name these sources."""

    def __init__(
        self,
        acl_file: Path | None,
        sources: Sequence[tuple[str, Path]],
        file_modes: FileModePermissions | None = None,
    ) -> None:
        self.acl_path = Path(acl_file).expanduser() if acl_file is not None else None
        self.source_names = [name for name, _ in sources]
        self.file_modes = file_modes or FileModePermissions()
        self._lock = threading.Lock()
        self._acl: AclFile | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._checked_roots: set[str] = set()
        if self.acl_path is not None:
            check_acl_location(self.acl_path, [root for _, root in sources])
            self._current_acl()  # fail at start-up, not at the first refresh

    def __call__(self, file: SourceFile) -> frozenset[str]:
        return self.explain(file).principals

    def explain(self, file: SourceFile) -> PermissionExplanation:
        """The principals that may read `file`, with the reason."""
        acl = self._current_acl()
        if acl is not None:
            self._check_root(file.root)
            decision = acl.decide(file.source, file.relative_path)
            grant = decision.grant
            if grant is not None:
                where = f"{grant.where} of ACL file {acl.origin}"
                decided_by: DecidedBy = "rule" if decision.rule is not None else "default"
                if grant.principals is not None:
                    shared = ", ".join(sorted(grant.principals)) or "nobody"
                    return self._explanation(file, grant.principals, decided_by, f"{where}: {shared}")
                mode = self.file_modes.decide(file)
                return self._explanation(file, mode.principals, "file-mode", f"{where} defers to the file system; {mode.reason}")
        mode = self.file_modes.decide(file)
        return self._explanation(file, mode.principals, "file-mode", f"no ACL rule or default applies; {mode.reason}")

    @staticmethod
    def _explanation(file: SourceFile, principals: frozenset[str], decided_by: DecidedBy, reason: str) -> PermissionExplanation:
        return PermissionExplanation(file.source, file.relative_path, principals, decided_by, reason)

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
