"""`lore feedback list|export|review|approve|reject`: what people said about the answers (👍/👎,
the 👎 modal, `/lore feedback` and Teams' feedback), for review and for customization datasets.

Typed corrections wait for an admin here: only approved ones, given by the asker or by one of
`customize.admins`, become training data."""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
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
from bot.store.feedback import Feedback, FeedbackStore, may_teach

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
    "asker_id",
    "review",
    "reviewed_by",
    # For audits, from the answer log: the principals the answer was filtered by, and the
    # documents given to the model with who may read them (empty once the answer is purged).
    "readers",
    "sources",
]


@click.group("feedback")
def feedback() -> None:
    """Show, export and review the feedback people gave on answers."""


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
    for name in ("id", "when", "platform", "user", "answer", "rating", "text", "correction", "review"):
        table.add_column(name, overflow="fold")
    for entry in entries:
        table.add_row(
            str(entry.id),
            entry.created_at.strftime("%Y-%m-%d %H:%M") if entry.created_at else "",
            entry.platform,
            _giver(entry),
            (entry.answer_id or "(general)")[:12],
            {"helpful": "👍", "not_helpful": "👎"}.get(entry.rating or "", ""),
            entry.text,
            entry.correction,
            entry.review or "",
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
    # Owner-only when created here: feedback names people and quotes answers.
    handle = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
        file.write(text)
    click.echo(f"Exported {len(rows)} feedback entries to {out}", err=True)


@feedback.command("review")
@click.pass_obj
def review_feedback(settings: LoreSettings) -> None:
    """List the typed corrections waiting for review, oldest first."""
    admins = frozenset(settings.customize.admins)
    database = Database(settings.database)
    try:
        answers = AnswerLog(database)
        pending = [
            (entry, answers.get(entry.answer_id) if entry.answer_id else None)
            for entry in FeedbackStore(database).pending_corrections()
        ]
    finally:
        database.close()
    if not pending:
        click.echo("No corrections wait for review.")
        return
    table = Table(title=f"Corrections waiting for review ({len(pending)})")
    for name in ("id", "when", "from", "question", "answer", "correction", "may train"):
        table.add_column(name, overflow="fold")
    for entry, answer in pending:
        table.add_row(
            str(entry.id),
            entry.created_at.strftime("%Y-%m-%d %H:%M") if entry.created_at else "",
            f"{entry.platform}:{entry.user_id}",
            answer.question if answer else "(answer purged)",
            answer.answer if answer else "",
            entry.correction,
            _trainable(entry, answer, admins),
        )
    Console().print(table)
    click.echo("Decide with `lore feedback approve ID` or `lore feedback reject ID`.")


@feedback.command("approve")
@click.argument("feedback_id", type=int)
@click.pass_obj
def approve_feedback(settings: LoreSettings, feedback_id: int) -> None:
    """Let correction FEEDBACK_ID become training data (asker's or an admin's only)."""
    _decide(settings, feedback_id, approved=True)


@feedback.command("reject")
@click.argument("feedback_id", type=int)
@click.pass_obj
def reject_feedback(settings: LoreSettings, feedback_id: int) -> None:
    """Keep correction FEEDBACK_ID out of training data for good."""
    _decide(settings, feedback_id, approved=False)


def _decide(settings: LoreSettings, feedback_id: int, approved: bool) -> None:
    database = Database(settings.database)
    try:
        store = FeedbackStore(database)
        entry = store.get(feedback_id)
        if entry is None or entry.review is None:
            raise click.ClickException(
                f"Feedback {feedback_id} holds no correction to review: see `lore feedback review`."
            )
        if approved:
            answer = AnswerLog(database).get(entry.answer_id) if entry.answer_id else None
            verdict = _trainable(entry, answer, frozenset(settings.customize.admins))
            if verdict != "yes":
                raise click.ClickException(f"Feedback {feedback_id} cannot become training data: {verdict}.")
        store.decide(feedback_id, approved, reviewer=f"cli:{getpass.getuser()}")
    finally:
        database.close()
    click.echo(f"Correction {feedback_id} {'approved: the next dataset trains on it' if approved else 'rejected'}.")


def _giver(entry: Feedback) -> str:
    if entry.asker_id is not None and entry.asker_id != entry.user_id:
        return f"{entry.user_id} (asked by {entry.asker_id})"
    return entry.user_id


def _trainable(entry: Feedback, answer: StoredAnswer | None, admins: frozenset[str]) -> str:
    """ "yes", or why the correction can never be trained on."""
    if answer is None:
        return "its answer is gone (purged, or never logged)"
    if not may_teach(entry, answer, admins):
        return (
            f"it came from {entry.platform}:{entry.user_id}, who neither asked the question "
            f"({answer.platform}:{answer.user_id}) nor is listed in customize.admins"
        )
    return "yes"


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
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writeheader()
    # Lists (readers, sources) go into one cell each, as JSON.
    writer.writerows(
        {key: _cell(json.dumps(value) if isinstance(value, list) else value) for key, value in row.items()}
        for row in rows
    )
    return buffer.getvalue()


# A spreadsheet runs a cell starting with one of these as a formula (`=HYPERLINK(...)` typed as
# feedback would send data out when an admin opens the export): OWASP's CSV injection guidance
# is to quote every cell and prefix such a cell with a single quote, which shows as text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
