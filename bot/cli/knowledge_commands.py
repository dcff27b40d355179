"""`lore index` and `lore search`: refresh the knowledge index by hand and query it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, get_args

import click

from bot.settings import LoreSettings
from knowledge.config import FolderSourceSettings, PermissionSource, SourceSettings
from knowledge.errors import ConfigurationError
from knowledge.retrieval import NO_DOCUMENT_CAP, Mode
from knowledge.types import Passage, SearchFilters

if TYPE_CHECKING:
    from knowledge.knowledge_base import KnowledgeBase
    from knowledge.sync import RefreshReport


def _knowledge(settings: LoreSettings, ad_hoc: list[FolderSourceSettings] | None = None) -> KnowledgeBase:
    # Imported here: the index libraries are heavy and other commands do not need them.
    from bot.policies import build_permission_policy
    from knowledge.knowledge_base import KnowledgeBase

    # The configured ACL file and file-mode mapping decide who may read each file, also for
    # folders given with --source that lie in no configured source (`ad_hoc`).
    return KnowledgeBase(
        settings.home,
        [*settings.sources, *(ad_hoc or [])],
        settings.index,
        settings.retrieval,
        permissions=build_permission_policy(settings, ad_hoc or []),
        catalog_url=settings.shared_database_url,
    )


def reader_filters(settings: LoreSettings, email: str, text: str) -> SearchFilters:
    """What `email` may read in a private reply (DM, personal chat, `lore ask --as`): the
    search filters their principals (their e-mail and directory groups) give."""
    from bot.policies import build_access_policy
    from bot.types import Asker, Question

    email = email.strip()
    if "@" not in email:
        raise click.BadParameter(f"{email!r} is not an e-mail address", param_hint="--as")
    question = Question(text, Asker(user_id=email, email=email), "cli", "cli", "cli", "private")
    return build_access_policy(settings).filters_for(question)


def sources_for_folders(
    settings: LoreSettings, folders: tuple[Path, ...], permissions: PermissionSource | None
) -> tuple[list[SourceSettings], list[FolderSourceSettings]]:
    """(configured sources, ad-hoc sources) to refresh for `lore index --source FOLDER...`.

    A folder inside a configured source refreshes that source, under its own name, so its
    per-source ACL sections and settings apply. Another folder becomes an ad-hoc source named
    after it, with `permissions` (or the ACL file's global rules); refused when the ACL file
    has per-source sections, which could never apply to it."""
    configured: list[SourceSettings] = []
    ad_hoc: list[FolderSourceSettings] = []
    names = {source.name for source in settings.sources}
    shares = [s for s in settings.sources if s.kind == "folder"]
    for folder in folders:
        target = folder.expanduser().resolve()
        inside = [s.name for s in shares if Path(s.path).expanduser().resolve().is_relative_to(target)]
        if inside and not any(target.is_relative_to(Path(s.path).expanduser().resolve()) for s in shares):
            # Indexed again from above, its files would get other paths and miss its rules.
            raise ConfigurationError(
                f"{folder} holds the configured source(s) {', '.join(inside)}; give a folder inside "
                "a source, or run `lore index` without --source to refresh them all."
            )
        holders = [s for s in shares if target.is_relative_to(Path(s.path).expanduser().resolve())]
        if holders:
            # The innermost source holding the folder: its rules are the ones meant for it.
            holder = max(holders, key=lambda s: len(Path(s.path).expanduser().resolve().parts))
            if holder not in configured:
                configured.append(holder)
            continue
        _refuse_unknown_folder(settings, target)
        base = target.name or "root"
        name, number = base, 2
        while name in names:
            name, number = f"{base}-{number}", number + 1
        names.add(name)
        ad_hoc.append(FolderSourceSettings(name=name, path=target, permissions=permissions))
    return configured, ad_hoc


def _refuse_unknown_folder(settings: LoreSettings, folder: Path) -> None:
    if settings.acl_file is None:
        return
    from knowledge.permissions import load_acl_file

    acl = load_acl_file(settings.acl_file)
    if acl.sources:
        configured = "; ".join(f"{s.name}: {getattr(s, 'path', s.kind)}" for s in settings.sources) or "none"
        raise ConfigurationError(
            f"{folder} lies in no configured source ({configured}), and the ACL file {acl.origin} "
            f"has rules per source ({', '.join(sorted(acl.sources))}) that could not apply to it. "
            "Add it to lore.toml as a [[sources]] table (name, path) and run `lore index`, or "
            "index a folder inside a configured source."
        )


@click.command("index")
@click.option(
    "--source",
    "folders",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Refresh only the configured source holding this folder, or index this other folder "
    "beside the configured sources (repeatable); other sources stay as they are.",
)
@click.option(
    "--permissions",
    type=click.Choice(get_args(PermissionSource)),
    default=None,
    help="Who may read the documents of a --source folder outside the configured sources "
    "(needed without an ACL file): acl, file-modes or public.",
)
@click.option("--full", is_flag=True, help="Re-read and re-embed every file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.pass_obj
def index(
    settings: LoreSettings, folders: tuple[Path, ...], permissions: PermissionSource | None, full: bool, as_json: bool
) -> None:
    """Bring the index in line with the sources: new and changed files are indexed, deleted
    ones removed. Without --source the index then holds exactly the configured sources."""
    configured, ad_hoc = sources_for_folders(settings, folders, permissions) if folders else (settings.sources, [])
    if permissions is not None and not ad_hoc:
        # A configured source keeps its own choice; a silently ignored option would mislead.
        raise click.UsageError("--permissions applies only to --source folders outside the configured sources.")
    knowledge = _knowledge(settings, ad_hoc)
    try:
        with knowledge.open_sources([*configured, *ad_hoc]) as opened:
            report = knowledge.refresh_sources(
                opened.sources, full=full, show_progress=not as_json, complete=not folders
            )
    finally:
        knowledge.close()
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    _print_report(report)


def _print_report(report: RefreshReport) -> None:
    click.echo(report.summary())
    click.echo(report.exposure())
    for failure in report.failed:
        click.echo(f"  failed: {failure.path}: {failure.reason}")
    for failing in report.failing:
        click.echo(f"  failing for {failing.refreshes} refreshes: {failing.path}: {failing.reason}")
    for warning in report.warnings:
        click.echo(f"WARNING: {warning}")


@click.command("search")
@click.argument("query")
@click.option(
    "-k",
    "k",
    type=click.IntRange(min=1),
    default=None,
    help="Number of results (default: the configured retrieval.k, as the bot uses).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@click.option(
    "--chunks",
    is_flag=True,
    help="Show every matching chunk, not at most retrieval.max_per_document per document.",
)
@click.option(
    "--mode",
    type=click.Choice(["hybrid", "dense", "keyword"]),
    default="hybrid",
    show_default=True,
    help="Retrieval mode.",
)
@click.option(
    "--as",
    "as_email",
    metavar="EMAIL",
    default=None,
    help="Search only what this person may read (default: every document, whoever may read it).",
)
@click.pass_obj
def search(
    settings: LoreSettings, query: str, k: int | None, as_json: bool, chunks: bool, mode: Mode, as_email: str | None
) -> None:
    """Show the passages the bot would answer QUERY from, best first."""
    filters = reader_filters(settings, as_email, query) if as_email is not None else None
    knowledge = _knowledge(settings)
    try:
        passages = knowledge.retriever.search(
            query, k, filters, mode=mode, max_per_document=NO_DOCUMENT_CAP if chunks else None
        )
    finally:
        knowledge.close()
    if as_json:
        click.echo(json.dumps({"query": query, "results": [_result(passage) for passage in passages]}))
        return
    if not passages:
        click.echo("No results. Is the index built? Run `lore index`.")
    for rank, passage in enumerate(passages, start=1):
        heading = f" > {passage.heading}" if passage.heading else ""
        click.echo(f"{rank}. {passage.title}{heading}  ({passage.score:.3f})")
        click.echo(f"   {passage.url}")
        click.echo(f"   {_snippet(passage.text)}")


def _result(passage: Passage) -> dict[str, object]:
    return {
        "source": passage.path,
        "title": passage.title,
        "heading": passage.heading,
        "url": passage.url,
        "score": round(passage.score, 4),
        "text": passage.text,
    }


def _snippet(text: str, width: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
