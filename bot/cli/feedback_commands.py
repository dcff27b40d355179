"""`lore feedback list|export`: what people said about the answers (👍/👎, the 👎 modal,
`/lore feedback` and Teams' feedback), for review and for customization datasets."""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from bot.settings import LoreSettings
from bot.store.database import Database
from bot.store.feedback import Feedback, FeedbackStore

FIELDS = [
    "id",
    "created_at",
    "platform",
    "user_id",
    "conversation_id",
    "answer_id",
    "rating",
    "text",
    "correction",
]


@click.group("feedback")
def feedback() -> None:
    """Show and export the feedback people gave on answers."""


@feedback.command("list")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="Show at most this many entries, newest first.",
)
@click.pass_obj
def list_feedback(settings: LoreSettings, limit: int) -> None:
    """Show recent feedback as a table."""
    entries = _load(settings, limit)
    if not entries:
        click.echo("No feedback yet.")
        return
    table = Table(title=f"Feedback (newest {len(entries)})")
    for name in ("when", "platform", "user", "answer", "rating", "text", "correction"):
        table.add_column(name, overflow="fold")
    for entry in entries:
        table.add_row(
            entry.created_at.strftime("%Y-%m-%d %H:%M") if entry.created_at else "",
            entry.platform,
            entry.user_id,
            (entry.answer_id or "(general)")[:12],
            {"helpful": "👍", "not_helpful": "👎"}.get(entry.rating or "", ""),
            entry.text,
            entry.correction,
        )
    Console().print(table)


@feedback.command("export")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.pass_obj
def export_feedback(settings: LoreSettings, output_format: str, out: Path | None) -> None:
    """Export all feedback, newest first, as JSON lines or CSV."""
    rows = [_row(entry) for entry in _load(settings, None)]
    text = _jsonl(rows) if output_format == "jsonl" else _csv(rows)
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text, encoding="utf-8", newline="")
    click.echo(f"Exported {len(rows)} feedback entries to {out}", err=True)


def _load(settings: LoreSettings, limit: int | None) -> list[Feedback]:
    database = Database(settings.database)
    try:
        return FeedbackStore(database).list(limit)
    finally:
        database.close()


def _row(entry: Feedback) -> dict[str, Any]:
    row = asdict(entry)
    row["created_at"] = entry.created_at.isoformat() if entry.created_at else None
    return {name: row[name] for name in FIELDS}


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
