"""`lore sources list` and `lore sources test NAME`: what each configured source holds and
whether Lore can reach it."""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import click

from bot.settings import LoreSettings
from knowledge.config import SourceSettings
from knowledge.errors import LoreError
from knowledge.index.factory import open_catalog
from knowledge.sources.registry import open_source

SAMPLE_FILES = 5  # files `lore sources test` lists


@dataclass(frozen=True)
class SourceSummary:
    """One line of `lore sources list`."""

    name: str
    kind: str
    documents: int
    last_sync: str | None  # ISO time; a folder's is the index's last refresh
    cursor_age_seconds: float | None  # None: no change cursor (folders, never synced)
    failures: int  # files, folders or the source itself failing at the last refresh


@click.group()
def sources() -> None:
    """The configured document sources: folders, SharePoint / OneDrive, Google Drive."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def list_sources(settings: LoreSettings, as_json: bool) -> None:
    """Each source's name, kind, indexed documents, last sync, change-cursor age and failures."""
    summaries = summarize(settings, datetime.now(UTC))
    if as_json:
        click.echo(json.dumps([asdict(summary) for summary in summaries]))
        return
    for summary in summaries:
        age = "-" if summary.cursor_age_seconds is None else f"{summary.cursor_age_seconds / 3600:.1f} h"
        click.echo(
            f"{summary.name}  kind={summary.kind}  documents={summary.documents}  "
            f"last sync={summary.last_sync or 'never'}  cursor age={age}  failures={summary.failures}"
        )


@sources.command("test")
@click.argument("name")
@click.pass_obj
def test_source(settings: LoreSettings, name: str) -> None:
    """Authenticate to source NAME and list a few of its files, changing nothing (no cursor
    saved, nothing indexed). Exit status 0 only when that worked."""
    source_settings = _named(settings, name)
    with closing(open_source(source_settings, settings.index_dir / "sources")) as source:
        try:
            files = source.check(SAMPLE_FILES)
        except LoreError as error:
            raise click.ClickException(f"source {name} ({source_settings.kind}): {error}") from error
    click.echo(f"source {name} ({source_settings.kind}): reachable; {len(files)} file(s) listed:")
    for file in files:
        click.echo(f"  {file.relative_path}  {file.size} bytes  {file.url}")


def summarize(settings: LoreSettings, now: datetime) -> list[SourceSummary]:
    """The summary of every configured source, from the index and each source's own state
    (nothing is asked of the drives)."""
    catalog = open_catalog(settings.index_dir, settings.shared_database_url)
    try:
        documents = catalog.documents_per_source()
        failures: dict[str, int] = {}
        for failure in catalog.failures():
            failures[failure.source] = failures.get(failure.source, 0) + 1
        last_refresh = catalog.get_meta("last_refresh_at")
    finally:
        catalog.close()
    summaries = []
    for source_settings in settings.sources:
        with closing(open_source(source_settings, settings.index_dir / "sources")) as source:
            state = source.sync_state()
        if state is None:
            last_sync = last_refresh
        else:
            last_sync = state.last_sync_at.isoformat() if state.last_sync_at is not None else None
        cursor_saved = state.cursor_saved_at if state is not None else None
        summaries.append(
            SourceSummary(
                name=source_settings.name,
                kind=source_settings.kind,
                documents=documents.get(source_settings.name, (0, 0))[0],
                last_sync=last_sync,
                cursor_age_seconds=None if cursor_saved is None else (now - cursor_saved).total_seconds(),
                failures=failures.get(source_settings.name, 0),
            )
        )
    return summaries


def _named(settings: LoreSettings, name: str) -> SourceSettings:
    for source in settings.sources:
        if source.name == name:
            return source
    names = ", ".join(source.name for source in settings.sources) or "none"
    raise click.UsageError(f"No source named {name!r}; configured sources: {names}.")
