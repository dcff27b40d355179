"""`lore index` and `lore search`: refresh the knowledge index by hand and query it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bot.settings import LoreSettings
from knowledge.config import SourceSettings
from knowledge.retrieval import Mode
from knowledge.types import Passage

if TYPE_CHECKING:
    from knowledge.base import KnowledgeBase


def _knowledge(settings: LoreSettings, sources: list[SourceSettings] | None = None) -> KnowledgeBase:
    # Imported here: the index libraries are heavy and other commands do not need them.
    from knowledge.base import KnowledgeBase

    return KnowledgeBase(settings.home, sources or settings.sources, settings.index, settings.retrieval)


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
@click.pass_obj
def search(settings: LoreSettings, query: str, k: int, as_json: bool, chunks: bool, mode: Mode) -> None:
    """Show the passages the bot would answer QUERY from, best first."""
    knowledge = _knowledge(settings)
    try:
        passages = knowledge.retriever.search(query, k, mode=mode, max_per_document=None if chunks else 1)
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
