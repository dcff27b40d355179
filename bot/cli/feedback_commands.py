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
from bot.store.answers import AnswerLog, StoredAnswer
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
    # For audits, from the answer log: the principals the answer was filtered by, and the
    # documents given to the model with who may read them (empty once the answer is purged).
    "readers",
    "sources",
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
    database = Database(settings.database)
    try:
        answers = AnswerLog(database)
        rows = [
            _row(entry, answers.get(entry.answer_id) if entry.answer_id else None)
            for entry in FeedbackStore(database).list(None)
        ]
    finally:
        database.close()
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


def _row(entry: Feedback, answer: StoredAnswer | None = None) -> dict[str, Any]:
    row = asdict(entry)
    row["created_at"] = entry.created_at.isoformat() if entry.created_at else None
    row["readers"] = answer.readers if answer is not None else None
    row["sources"] = [
        {"path": passage["path"], "principals": passage["principals"]}
        for passage in (answer.passages if answer is not None else [])
        if passage.get("given_to_model")
    ]
    return {name: row[name] for name in FIELDS}


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    # Lists (readers, sources) go into one cell each, as JSON.
    writer.writerows(
        {key: json.dumps(value) if isinstance(value, list) else value for key, value in row.items()}
        for row in rows
    )
    return buffer.getvalue()
