"""`lore index` and `lore search`: refresh the knowledge index by hand and query it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bot.settings import LoreSettings
from knowledge.config import SourceSettings
from knowledge.retrieval import Mode
from knowledge.types import Passage, SearchFilters

if TYPE_CHECKING:
    from knowledge.base import KnowledgeBase


def _knowledge(settings: LoreSettings, sources: list[SourceSettings] | None = None) -> KnowledgeBase:
    # Imported here: the index libraries are heavy and other commands do not need them.
    from bot.core.access import build_permission_policy
    from knowledge.base import KnowledgeBase

    # The configured ACL file and file-mode mapping decide who may read each file, also for
    # folders given with --source.
    return KnowledgeBase(
        settings.home,
        sources or settings.sources,
        settings.index,
        settings.retrieval,
        permissions=build_permission_policy(settings),
    )


def reader_filters(settings: LoreSettings, email: str, text: str) -> SearchFilters:
    """What `email` may read in a private reply (DM, personal chat, `lore ask --as`): the
    search filters their principals (their e-mail and directory groups) give."""
    from bot.core.access import build_access_policy
    from bot.core.types import Asker, Question

    email = email.strip()
    if "@" not in email:
        raise click.BadParameter(f"{email!r} is not an e-mail address", param_hint="--as")
    question = Question(text, Asker(user_id=email, email=email), "cli", "cli", "cli", "private")
    return build_access_policy(settings).filters_for(question)


def ad_hoc_sources(folders: tuple[Path, ...]) -> list[SourceSettings]:
    """One source per folder, named after the folder (numbered when two names collide)."""
    sources: list[SourceSettings] = []
    names: set[str] = set()
    for folder in folders:
        base = folder.resolve().name or "root"
        name, number = base, 2
        while name in names:
            name, number = f"{base}-{number}", number + 1
        names.add(name)
        sources.append(SourceSettings(name=name, path=folder.resolve()))
    return sources


@click.command("index")
@click.option(
    "--source",
    "folders",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Index this folder instead of the configured sources (repeatable).",
)
@click.option("--full", is_flag=True, help="Re-read and re-embed every file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.pass_obj
def index(settings: LoreSettings, folders: tuple[Path, ...], full: bool, as_json: bool) -> None:
    """Bring the index in line with the sources: new and changed files are indexed, deleted
    ones removed. The index then holds exactly these sources."""
    knowledge = _knowledge(settings, ad_hoc_sources(folders) if folders else None)
    try:
        report = knowledge.refresh(full=full, show_progress=not as_json)
    finally:
        knowledge.close()
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    click.echo(report.summary())
    for failure in report.failed:
        click.echo(f"  failed: {failure.path}: {failure.reason}")


@click.command("search")
@click.argument("query")
@click.option("-k", "k", type=click.IntRange(min=1), default=5, show_default=True, help="Number of results.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@click.option("--chunks", is_flag=True, help="Show every matching chunk, not one result per document.")
@click.option(
    "--mode", type=click.Choice(["hybrid", "dense", "keyword"]), default="hybrid", show_default=True,
    help="Retrieval mode.",
)
@click.option(
    "--as", "as_email", metavar="EMAIL", default=None,
    help="Search only what this person may read (default: every document, whoever may read it).",
)
@click.pass_obj
def search(
    settings: LoreSettings, query: str, k: int, as_json: bool, chunks: bool, mode: Mode, as_email: str | None
) -> None:
    """Show the passages the bot would answer QUERY from, best first."""
    filters = reader_filters(settings, as_email, query) if as_email is not None else None
    knowledge = _knowledge(settings)
    try:
        passages = knowledge.retriever.search(
            query, k, filters, mode=mode, max_per_document=None if chunks else 1
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
