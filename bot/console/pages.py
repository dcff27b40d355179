"""The figures behind each console page, as plain dicts: the HTML templates render them and
/admin/api/<page> returns them as JSON, so scripts and tests read the same numbers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.app import Services
from bot.console.answer_search import (
    PRIVATE,
    AnswerFilter,
    answer_entry,
    private_answers,
    questions_per_day,
    search_answers,
    shares,
)
from bot.console.background import BackgroundAction
from bot.console.charts import bar_chart
from bot.console.gaps import GapGroups, gap_questions
from bot.console.lookups import SourceLookups
from bot.console.members import Members
from bot.store.answer_views import AnswerViews
from bot.store.feedback import Feedback, FeedbackStore, may_teach
from knowledge.config import SourceSettings
from knowledge.permissions.policy import permission_sources

CHART_DAYS = 30
GAP_DAYS = 90
RECENT_COMMENTS = 50

# The scheduler's jobs as (id, next run time): `lore serve` passes its scheduler's.
Jobs = Callable[[], list[tuple[str, datetime | None]]]


@dataclass(frozen=True)
class Console:
    """What every page reads: the bot's services and the console's own lists and trail."""

    services: Services
    admins: Members
    private_viewers: Members
    views: AnswerViews
    jobs: Jobs
    gaps: GapGroups
    refresh: BackgroundAction
    retrain: BackgroundAction | None  # None: `lore serve` gave no retraining job
    lookups: SourceLookups

    @property
    def engine(self) -> Any:
        return self.services.database.engine


def overview(console: Console, now: datetime) -> dict[str, Any]:
    """Documents and chunks per source, the last refresh and what failed, the schedule, the
    model, questions per day and the shares answered / not covered / 👍 / 👎 (30 days)."""
    knowledge = console.services.knowledge
    chunks: dict[str, int] = {}
    for record in knowledge.documents():
        chunks[record.source] = chunks.get(record.source, 0) + record.chunk_count
    per_source = knowledge.catalog.documents_per_source()
    status = knowledge.status()
    days = questions_per_day(console.engine, CHART_DAYS, now.date())
    model = console.services.model
    return {
        "sources": [
            {
                "name": source.name,
                "kind": source.kind,
                "documents": per_source.get(source.name, (0, 0))[0],
                "chunks": chunks.get(source.name, 0),
                "readable_by_everyone": per_source.get(source.name, (0, 0))[1],
            }
            for source in console.services.settings.sources
        ],
        "index": {
            "documents": status.documents,
            "chunks": status.chunks,
            "last_refresh_at": status.last_refresh_at.isoformat(timespec="seconds") if status.last_refresh_at else None,
            "failed": [asdict(failure) for failure in knowledge.catalog.failures()],
            # The last refresh's report, whoever ran it (the schedule, `lore index`, the console).
            "last_report": knowledge.last_report(),
        },
        "schedule": [
            {"job": job, "next_run_at": when.isoformat(timespec="seconds") if when else None}
            for job, when in console.jobs()
        ],
        "model": {"name": model.name, "adapter": model.adapter},
        "questions_per_day": [{"day": day.isoformat(), "questions": count} for day, count in days],
        "questions_chart": bar_chart([(day.isoformat(), count) for day, count in days], "Questions per day"),
        "last_30_days": shares(console.engine, now - timedelta(days=CHART_DAYS)),
    }


def questions(console: Console, query: dict[str, str], email: str | None) -> dict[str, Any]:
    """One page of the answer log as `query` filters it. Private answers are listed only to
    `console.private_answers_viewers`, and even then without their text: reading one opens it
    (`question`), which is logged."""
    may_read_private = console.private_viewers.include(email)
    wanted = AnswerFilter.from_query(query, include_private=may_read_private)
    found = search_answers(console.engine, wanted)
    return {
        "filters": {
            key: query.get(key, "") for key in ("q", "platform", "place", "confident", "feedback", "since", "until")
        },
        "total": found.total,
        "page": found.page,
        "pages": found.pages,
        "private_shown": may_read_private,
        "answers": [_sealed(entry) if entry["place"] == PRIVATE else entry for entry in found.rows],
    }


def question(console: Console, answer_id: str, email: str | None, viewer: str) -> dict[str, Any] | None:
    """One answer in full; None when unknown, or private and `email` may not read it. Every
    opening of a private answer is recorded with `viewer`."""
    entry = answer_entry(console.engine, answer_id)
    if entry is None:
        return None
    if entry["place"] == PRIVATE:
        if not console.private_viewers.include(email):
            return None
        console.views.record(answer_id, viewer)
    return entry


def gaps(console: Console, now: datetime) -> dict[str, Any]:
    """Questions not covered or rated not helpful in the last 90 days, grouped by meaning."""
    questions = gap_questions(console.engine, now - timedelta(days=GAP_DAYS))
    return {"days": GAP_DAYS, "questions": len(questions), "groups": console.gaps.groups(questions)}


def actions(console: Console) -> dict[str, Any]:
    """The state of "refresh now" and "retrain now": running or not, the last outcome."""
    return {
        "refresh": console.refresh.status(),
        "retrain": console.retrain.status() if console.retrain is not None else None,
    }


def review(console: Console, email: str | None, viewer: str) -> dict[str, Any]:
    """Corrections waiting for review (with whether each may ever train) and recent 👎
    comments. A correction on a private answer shows the question and answer only to
    private-answer viewers, and that view is logged like any other."""
    store = console.services.feedback
    may_read_private = console.private_viewers.include(email)
    pending = []
    for item in store.pending_corrections():
        entry = answer_entry(console.engine, item.answer_id) if item.answer_id else None
        private = entry is not None and entry["place"] == PRIVATE
        if entry is not None and private and may_read_private:
            console.views.record(entry["id"], viewer)
        sealed = private and not may_read_private
        row = {
            **_feedback(item),
            "question": entry["question"] if entry is not None else None,
            "answer": entry["answer"] if entry is not None else None,
            "private": private,
            "may_train": trainable(item, console),
        }
        # A private answer's words, and the correction typed about it, only for its viewers.
        pending.append({**row, "question": None, "answer": None, "text": "", "correction": ""} if sealed else row)
    commented = [
        item
        for item in store.list(RECENT_COMMENTS * 4)
        if item.rating == "not_helpful" and (item.text.strip() or item.correction.strip())
    ][:RECENT_COMMENTS]
    # What someone wrote about a private answer can quote it: only its viewers read it here.
    private = set() if may_read_private else private_answers(console.engine, [i.answer_id for i in commented])
    comments = [_feedback(item) for item in commented if item.answer_id not in private]
    return {"pending": pending, "not_helpful_comments": comments}


def trainable(item: Feedback, console: Console) -> str:
    """ "yes", or why the correction can never become training data (the CLI's rule)."""
    stored = console.services.answers.get(item.answer_id) if item.answer_id else None
    if stored is None:
        return "its answer is gone (purged, or never logged)"
    if not may_teach(item, stored, frozenset(console.services.settings.customize.admins)):
        return (
            f"it came from {item.platform}:{item.user_id}, who neither asked the question "
            f"({stored.platform}:{stored.user_id}) nor is listed in customize.admins"
        )
    return "yes"


def decide(store: FeedbackStore, console: Console, feedback_id: int, action: str, text: str, reviewer: str) -> str:
    """Approve, edit (rewrite, then approve) or reject correction `feedback_id`; returns what
    happened, or raises ValueError saying why not."""
    item = store.get(feedback_id)
    if item is None or item.review is None:
        raise ValueError(f"feedback {feedback_id} holds no correction to review")
    if action in ("approve", "edit"):
        verdict = trainable(item, console)
        if verdict != "yes":
            raise ValueError(f"feedback {feedback_id} cannot become training data: {verdict}")
    if action == "approve":
        store.decide(feedback_id, True, reviewer)
        return f"correction {feedback_id} approved: the next dataset trains on it"
    if action == "edit":
        if not text.strip():
            raise ValueError("an edited correction cannot be empty: reject it instead")
        store.revise(feedback_id, text.strip(), reviewer)
        return f"correction {feedback_id} edited and approved: the next dataset trains on your text"
    if action == "reject":
        store.decide(feedback_id, False, reviewer)
        return f"correction {feedback_id} rejected"
    raise ValueError(f"unknown action {action!r}: approve, edit or reject")


def sources(console: Console, now: datetime) -> dict[str, Any]:
    """Each source's kind, location, permission source, documents, readable by everyone."""
    settings = console.services.settings
    chosen = permission_sources(settings.sources, settings.acl_file is not None)
    public = console.services.knowledge.catalog.documents_per_source()
    return {
        "sources": [
            {
                **asdict(summary),
                "location": _location(source),
                "permissions": chosen.get(source.name),
                "readable_by_everyone": public.get(source.name, (0, 0))[1],
            }
            for summary, source in zip(console.lookups.summarize(settings, now), settings.sources, strict=True)
        ]
    }


def _location(source: SourceSettings) -> str:
    if source.kind == "folder":
        return str(source.path)
    if source.kind == "sharepoint":
        return ", ".join([*source.sites, *source.drives]) or source.graph_url
    return ", ".join([*source.drives, *source.folders]) or source.api_endpoint


def _sealed(entry: dict[str, Any]) -> dict[str, Any]:
    """A private answer's row without its words (open it to read, which is logged)."""
    hidden: dict[str, Any] = {"question": None, "answer": None, "citations": [], "quotes": [], "private": True}
    feedback = [{**item, "text": "", "correction": ""} for item in entry["feedback"]]
    return {**entry, **hidden, "feedback": feedback}


def _feedback(item: Feedback) -> dict[str, Any]:
    return {
        "id": item.id,
        "answer_id": item.answer_id,
        "created_at": item.created_at.isoformat(timespec="seconds") if item.created_at else None,
        "from": f"{item.platform}:{item.user_id}",
        "rating": item.rating,
        "text": item.text,
        "correction": item.correction,
        "review": item.review,
    }


def utc_now() -> datetime:
    return datetime.now(UTC)
