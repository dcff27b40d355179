"""A folder on disk as a document source; a mounted SMB/NFS share is just a folder."""

from __future__ import annotations

import errno
import logging
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from knowledge.config import FolderSourceSettings
from knowledge.errors import AccessDeniedError, FileTooLargeError, SourceError
from knowledge.sources.base import SourceProblem, SyncState
from knowledge.sources.globs import PathFilter, is_hidden_or_temporary
from knowledge.types import SourceFile

if sys.platform != "win32":  # pwd exists on POSIX only; owners are simply unknown elsewhere.
    import pwd

logger = logging.getLogger(__name__)

# The file system refused Lore's account: access was withdrawn, not lost (see AccessDeniedError).
DENIED = (errno.EACCES, errno.EPERM)


class FilesystemSource:
    """Lists and reads the files under one root folder.

    Symbolic links inside the share are never followed, when listing or reading: a link
    `notes -> hr` would otherwise publish `hr/` under a name the permission rules treat
    differently, and a link to a file outside the share would index it (a key, a config
    file). A link to a place inside the share adds nothing, since its target is listed at its
    real path, under the rules for that path. Reading opens each folder of the path without
    following links, so a folder swapped for a link between listing and reading cannot lead
    outside. (The root itself may be a link, e.g. to a mount point.) Hidden and temporary
    files are skipped before globs are applied. A folder that cannot be read is logged and
    recorded in `problems`; it does not stop the listing. A refusal (EACCES/EPERM) is told
    apart from other failures, because the sync withdraws what it had indexed from there.
    """

    def __init__(self, settings: FolderSourceSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.max_file_bytes = settings.max_file_bytes
        self.root = Path(settings.path).expanduser().absolute()
        self.paths = PathFilter(settings.include, settings.exclude)
        self.problems: list[SourceProblem] = []
        self._owners: dict[int, str | None] = {}

    def __repr__(self) -> str:
        return f"FilesystemSource(name={self.name!r}, root={str(self.root)!r})"

    def list_files(self) -> Iterator[SourceFile]:
        """Yield the matching files in a stable (sorted) order, without reading them.

        Raises SourceError if the root is missing or is not a readable folder."""
        self._root_stat()
        self.problems = []
        yield from self._walk(self.root, "")

    def read_bytes(self, file: SourceFile) -> bytes:
        """Read one listed file, following no link on the way. Raises SourceError if it
        vanished, is unreadable or has become (or lies under) a symbolic link, and
        FileTooLargeError when it has grown past `max_file_bytes` since it was listed."""
        if file.source != self.name:
            raise SourceError(f"{file.relative_path} belongs to source {file.source!r}, not {self.name!r}")
        path = self.root.joinpath(*file.relative_path.split("/"))
        try:
            descriptor = _open_without_links(self.root, file.relative_path.split("/"))
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                raise SourceError(
                    f"Cannot read {path}: it is, or lies under, a symbolic link, and Lore does "
                    "not follow links inside a share."
                ) from error
            if error.errno in DENIED:
                raise AccessDeniedError(
                    f"Cannot read {path}: {error.strerror or error}; Lore's user was refused, so "
                    "its indexed version is withdrawn. Grant read access to index it again."
                ) from error
            raise SourceError(
                f"Cannot read {path}: {error.strerror or error}. Check that the file still "
                "exists and that Lore's user may read it."
            ) from error
        with os.fdopen(descriptor, "rb") as handle:
            data = handle.read(self.max_file_bytes + 1)  # never more, even if it grew
            if len(data) > self.max_file_bytes:
                raise FileTooLargeError.of(os.fstat(handle.fileno()).st_size, self.max_file_bytes)
        return data

    def _root_stat(self) -> os.stat_result:
        try:
            result = self.root.stat()
        except FileNotFoundError:
            raise SourceError(
                f"Source {self.name!r}: folder {self.root} does not exist. Mount the share or "
                "fix the source's path in lore.toml."
            ) from None
        except OSError as error:
            if error.errno in DENIED:
                raise self._denied() from error
            raise SourceError(f"Source {self.name!r}: cannot open {self.root}: {error.strerror or error}") from error
        if not stat.S_ISDIR(result.st_mode):
            raise SourceError(f"Source {self.name!r}: {self.root} is not a folder; point the source at a folder.")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise self._denied()
        return result

    def _denied(self) -> AccessDeniedError:
        return AccessDeniedError(
            f"Source {self.name!r}: Lore's user may not read {self.root}, so its documents are "
            "withdrawn from the index; grant read access to index them again."
        )

    def _walk(self, folder: Path, prefix: str) -> Iterator[SourceFile]:
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as error:
            self._problem(prefix.rstrip("/") or ".", error)
            return
        for entry in entries:
            if is_hidden_or_temporary(entry.name):
                continue
            relative = prefix + entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError as error:
                self._problem(relative, error)
                continue
            if stat.S_ISLNK(info.st_mode):
                logger.debug("source %s: not following the symbolic link %s", self.name, relative)
            elif stat.S_ISDIR(info.st_mode):
                if not self.excluded(relative):
                    yield from self._walk(Path(entry.path), relative + "/")
            elif stat.S_ISREG(info.st_mode) and self._selected(relative):
                # An unchanged file is not read again, so a withdrawn read access shows here.
                if not os.access(entry.path, os.R_OK, follow_symlinks=False):
                    self._problem(relative, PermissionError(errno.EACCES, os.strerror(errno.EACCES)))
                    continue
                yield self._source_file(relative, info)

    def file(self, relative: str) -> SourceFile:
        """Metadata of one file under the root, exactly as `list_files` records it.

        Raises SourceError when it cannot be read or is not a regular file."""
        path = self.root.joinpath(*relative.split("/"))
        try:
            descriptor = _open_without_links(self.root, relative.split("/"))
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                raise SourceError(
                    f"{path} is, or lies under, a symbolic link: Lore does not follow links inside "
                    "a share, so it is not indexed; give the path of the real file."
                ) from error
            raise SourceError(f"Cannot read {path}: {error.strerror or error}") from error
        try:
            info = os.fstat(descriptor)
        finally:
            os.close(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise SourceError(f"{path} is not a file; give the path of a document.")
        return self._source_file(relative, info)

    def sync_state(self) -> SyncState | None:
        """None: a folder is listed in full at every refresh (a stat per file)."""
        return None

    def check(self, limit: int) -> list[SourceFile]:
        """The first `limit` files of a listing; SourceError / AccessDeniedError when the
        folder cannot be read."""
        files: list[SourceFile] = []
        for file in self.list_files():
            if len(files) >= limit:
                break
            files.append(file)
        return files

    def close(self) -> None:
        """Nothing to release: every listing and read opens and closes its own handles."""

    def included(self, relative: str) -> bool:
        """True when the include globs match the relative path."""
        return self.paths.included(relative)

    def excluded(self, relative: str) -> bool:
        """True when an exclude glob matches the relative path."""
        return self.paths.excluded(relative)

    def _selected(self, relative: str) -> bool:
        return self.included(relative) and not self.excluded(relative)

    def _source_file(self, relative: str, info: os.stat_result) -> SourceFile:
        return SourceFile(
            source=self.name,
            root=str(self.root),
            relative_path=relative,
            url=self._url(relative),
            size=info.st_size,
            mtime=info.st_mtime,
            owner=self._owner(info.st_uid),
            mode=stat.S_IMODE(info.st_mode),
        )

    def _url(self, relative: str) -> str:
        prefix = self.settings.url_prefix
        if prefix:
            return prefix.rstrip("/") + "/" + quote(relative, safe="/")
        return self.root.joinpath(*relative.split("/")).as_uri()

    def _owner(self, uid: int) -> str | None:
        if uid not in self._owners:
            self._owners[uid] = _account_name(uid)
        return self._owners[uid]

    def _problem(self, relative: str, error: OSError) -> None:
        problem = SourceProblem(relative, error.strerror or str(error), denied=error.errno in DENIED)
        self.problems.append(problem)
        logger.warning("source %s: skipped %s (%s)", self.name, problem.path, problem.reason)


def _open_without_links(root: Path, parts: list[str]) -> int:
    """A read-only descriptor of `root/parts...`, opening each folder and the file itself with
    O_NOFOLLOW relative to the one before: no component may be a symbolic link (ELOOP or
    ENOTDIR otherwise), whatever changed since the listing."""
    if not parts or any(part in ("", ".", "..") for part in parts):
        raise OSError(errno.ENOENT, "not a path inside the share")
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            os.close(folder)
            folder = inner
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
    finally:
        os.close(folder)


def _account_name(uid: int) -> str | None:
    if sys.platform == "win32":  # pragma: no cover - Windows
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no account on this machine (common on NFS)
        return None
