"""`lore acl explain PATH` and `lore acl principals EMAIL`: check who may read a document,
and what a person may read, from the current ACL file, file modes and directory."""

from __future__ import annotations

import json
import os
from contextlib import closing
from pathlib import Path

import click

from bot.policies import build_access_policy, build_permission_policy
from bot.settings import LoreSettings
from bot.types import Asker
from knowledge.config import CloudSourceSettings, FolderSourceSettings
from knowledge.errors import ConfigurationError, SourceError
from knowledge.loaders import is_supported
from knowledge.sources.filesystem import FilesystemSource
from knowledge.sources.globs import is_hidden_or_temporary
from knowledge.sources.registry import open_source
from knowledge.types import SourceFile


@click.group()
def acl() -> None:
    """Document permissions: who may read what, and why."""


@acl.command("explain")
@click.argument("path")
@click.option(
    "--source",
    "source_name",
    help="Source name, when PATH exists in several sources; for a cloud drive PATH is the document's path in it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def explain(settings: LoreSettings, path: str, source_name: str | None, as_json: bool) -> None:
    """Show who may read the document at PATH (absolute, or relative to a source's folder)
    and which ACL rule or file mode decided it."""
    cloud = next((s for s in settings.sources if s.name == source_name and s.kind != "folder"), None)
    if cloud is not None:
        file, note, where = cloud_file(settings, cloud, path), None, f"{cloud.kind} drive"
        relative = file.relative_path
    else:
        folders = [s for s in settings.sources if s.kind == "folder"]
        source, relative = locate(folders, path, source_name)
        file, note, where = source_file(source, relative), indexing_note(source, relative), str(source.path)
    explanation = build_permission_policy(settings).explain(file)
    if as_json:
        click.echo(json.dumps({**explanation.to_dict(), "indexed": note is None, "note": note or ""}))
        return
    click.echo(f"{relative}  (source {file.source}: {where})")
    click.echo(f"readable by: {', '.join(sorted(explanation.principals)) or 'nobody'}")
    click.echo(f"why: {explanation.reason}")
    if note:
        click.echo(f"note: {note}")


@acl.command("principals")
@click.argument("email")
@click.pass_obj
def principals(settings: LoreSettings, email: str) -> None:
    """Show the principals the person with EMAIL holds (from the directory file)."""
    held = build_access_policy(settings).principals(Asker(user_id=email, email=email))
    click.echo(", ".join(sorted(held)))


def locate(sources: list[FolderSourceSettings], path: str, source_name: str | None) -> tuple[FolderSourceSettings, str]:
    """The source holding `path` and the POSIX path relative to its root."""
    candidates = [s for s in sources if source_name in (None, s.name)]
    if source_name is not None and not candidates:
        names = ", ".join(s.name for s in sources)
        raise ConfigurationError(f"No source named {source_name!r}; configured sources: {names}.")
    given = Path(path).expanduser()
    found: list[tuple[FolderSourceSettings, str]] = []
    for source in candidates:
        root = Path(source.path).expanduser().absolute()
        target = given if given.is_absolute() else root / given
        if not given.is_absolute() and not target.exists() and (Path.cwd() / given).exists():
            target = Path.cwd() / given  # a path typed relative to where the user stands
        target = Path(os.path.abspath(target))
        if target.is_relative_to(root) and target.exists():
            found.append((source, target.relative_to(root).as_posix()))
    if not found:
        roots = "; ".join(f"{s.name}: {s.path}" for s in candidates) or "none"
        raise ConfigurationError(f"{path} is not a file inside a configured source ({roots}).")
    if len(found) > 1:
        names = ", ".join(source.name for source, _ in found)
        raise ConfigurationError(f"{path} exists in several sources ({names}); pick one with --source NAME.")
    return found[0]


def cloud_file(settings: LoreSettings, source: CloudSourceSettings, relative: str) -> SourceFile:
    """A cloud drive's file as the last refresh listed it (its sharing included); the drive
    itself is not asked, so run `lore index` first to see a change made there."""
    with closing(open_source(source, settings.index_dir / "sources")) as opened:
        try:
            return opened.file(relative.lstrip("/"))
        except SourceError as error:
            raise ConfigurationError(str(error)) from error


def source_file(source: FolderSourceSettings, relative: str) -> SourceFile:
    """The file's metadata as the filesystem source records it at indexing."""
    try:
        return FilesystemSource(source).file(relative)
    except SourceError as error:
        raise ConfigurationError(str(error)) from error


def indexing_note(source: FolderSourceSettings, relative: str) -> str | None:
    """Why the refresh would not index this file, or None when it would."""
    if any(is_hidden_or_temporary(part) for part in relative.split("/")):
        return "not indexed: hidden or temporary file"
    listing = FilesystemSource(source)
    if not listing.included(relative):
        return "not indexed: outside the source's include globs"
    if listing.excluded(relative):
        return "not indexed: matched by the source's exclude globs"
    if not is_supported(Path(relative)):
        return "not indexed: no loader for this file type"
    return None
