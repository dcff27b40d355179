"""The Questions page's queries over the answer log: filters, paging, the feedback each
answer got, and the figures the Overview shows (questions per day, answered / not covered,
👍 / 👎). Read-only; every query pages or narrows by time so 100,000 logged answers stay fast."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from bot.store.database import as_utc
from bot.store.tables import answers_table, feedback_table

PAGE_SIZE = 25
PRIVATE = "private"  # the place of a direct conversation with the bot
FEEDBACK_FILTERS = ("helpful", "not_helpful", "none")


@dataclass(frozen=True)
class AnswerFilter:
    """What the Questions page narrows the log to (empty fields: no condition)."""

    text: str = ""  # in the question or the answer, any case
    platform: str = ""
    place: str = ""
    confident: bool | None = None
    feedback: str = ""  # one of FEEDBACK_FILTERS
    since: date | None = None
    until: date | None = None  # inclusive
    include_private: bool = False
    page: int = 1

    @classmethod
    def from_query(cls, query: dict[str, str], include_private: bool) -> AnswerFilter:
        """The filter from a page's query string; unknown or malformed values are ignored."""
        confident = {"yes": True, "no": False}.get(query.get("confident", ""))
        feedback = query.get("feedback", "")
        return cls(
            text=query.get("q", "").strip()[:200],
            platform=query.get("platform", "").strip(),
            place=query.get("place", "").strip(),
            confident=confident,
            feedback=feedback if feedback in FEEDBACK_FILTERS else "",
            since=_date(query.get("since", "")),
            until=_date(query.get("until", "")),
            include_private=include_private,
            page=max(1, int(query["page"])) if query.get("page", "").isdigit() else 1,
        )

    def conditions(self) -> list[ColumnElement[bool]]:
        table = answers_table
        found: list[ColumnElement[bool]] = []
        if self.text:
            typed = self.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{typed}%"
            # lower() LIKE rather than ILIKE: the same matches, half the time on PostgreSQL.
            found.append(
                or_(
                    func.lower(table.c.question).like(pattern, escape="\\"),
                    func.lower(table.c.answer).like(pattern, escape="\\"),
                )
            )
        if self.platform:
            found.append(table.c.platform == self.platform)
        if self.place:
            found.append(table.c.place == self.place)
        if not self.include_private:
            found.append(table.c.place != PRIVATE)
        if self.confident is not None:
            found.append(table.c.confident == self.confident)
        if self.feedback:
            # IN over the (small) feedback table rather than EXISTS per answer: the database
            # starts from the rated answers instead of probing the feedback of every answer.
            rated = select(feedback_table.c.answer_id).where(feedback_table.c.answer_id.is_not(None))
            if self.feedback == "none":
                found.append(table.c.id.not_in(rated))
            else:
                found.append(table.c.id.in_(rated.where(feedback_table.c.rating == self.feedback)))
        if self.since is not None:
            found.append(table.c.created_at >= _midnight(self.since))
        if self.until is not None:
            found.append(table.c.created_at < _midnight(self.until + timedelta(days=1)))
        return found


@dataclass(frozen=True)
class AnswerPage:
    total: int
    page: int
    pages: int
    rows: list[dict[str, Any]] = field(default_factory=list)


def search_answers(engine: Engine, wanted: AnswerFilter) -> AnswerPage:
    """One page of answers matching `wanted`, newest first, each with its feedback."""
    table = answers_table
    where = and_(*wanted.conditions())
    # The page's ids first, from the index alone (ix_answers_console) where no text is searched,
    # then only their rows: a deep page skips index entries, not whole answers. (A count beside
    # the ids, `count() OVER ()`, would sort every match instead of stopping at the page.)
    page_ids = (
        select(table.c.id)
        .where(where)
        .order_by(table.c.created_at.desc())
        .limit(PAGE_SIZE)
        .offset((wanted.page - 1) * PAGE_SIZE)
    )
    with engine.connect() as connection:
        total = int(connection.execute(select(func.count()).select_from(table).where(where)).scalar_one())
        ids = list(connection.execute(page_ids).scalars())
        query = select(table).where(table.c.id.in_(ids)).order_by(table.c.created_at.desc())
        rows = connection.execute(query).mappings().all() if ids else []
        feedback = _feedback_of(connection, ids)
    pages = max(1, -(-total // PAGE_SIZE))
    return AnswerPage(total, wanted.page, pages, [_entry(row, feedback.get(row["id"], [])) for row in rows])


def answer_entry(engine: Engine, answer_id: str) -> dict[str, Any] | None:
    """One logged answer with its feedback, or None when unknown."""
    with engine.connect() as connection:
        row = connection.execute(select(answers_table).where(answers_table.c.id == answer_id)).mappings().first()
        if row is None:
            return None
        return _entry(row, _feedback_of(connection, [answer_id]).get(answer_id, []))


def private_answers(engine: Engine, answer_ids: list[str | None]) -> set[str]:
    """Which of `answer_ids` were given in private conversations."""
    wanted = [answer_id for answer_id in answer_ids if answer_id]
    if not wanted:
        return set()
    table = answers_table
    query = select(table.c.id).where(table.c.id.in_(wanted), table.c.place == PRIVATE)
    with engine.connect() as connection:
        return set(connection.execute(query).scalars())


def questions_per_day(engine: Engine, days: int, today: date) -> list[tuple[date, int]]:
    """Answers logged on each of the last `days` days (oldest first, zero days included)."""
    first = today - timedelta(days=days - 1)
    day = func.date(answers_table.c.created_at)
    query = select(day, func.count()).where(answers_table.c.created_at >= _midnight(first)).group_by(day).order_by(day)
    with engine.connect() as connection:
        counted = {_as_date(value): int(count) for value, count in connection.execute(query)}
    return [(first + timedelta(days=n), counted.get(first + timedelta(days=n), 0)) for n in range(days)]


def shares(engine: Engine, since: datetime) -> dict[str, int]:
    """Answers since `since`: answered, not covered; and the 👍 / 👎 given on them."""
    recent = answers_table.c.created_at >= since
    with engine.connect() as connection:
        by_confidence: dict[bool, int] = dict(
            connection.execute(
                select(answers_table.c.confident, func.count()).where(recent).group_by(answers_table.c.confident)
            ).all()
        )
        ratings: dict[str | None, int] = dict(
            connection.execute(
                select(feedback_table.c.rating, func.count())
                .where(feedback_table.c.created_at >= since, feedback_table.c.answer_id.is_not(None))
                .group_by(feedback_table.c.rating)
            ).all()
        )
    return {
        "answers": sum(int(count) for count in by_confidence.values()),
        "answered": int(by_confidence.get(True, 0)),
        "not_covered": int(by_confidence.get(False, 0)),
        "helpful": int(ratings.get("helpful", 0)),
        "not_helpful": int(ratings.get("not_helpful", 0)),
    }


def _feedback_of(connection: Any, answer_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    if not answer_ids:
        return {}
    table = feedback_table
    query = select(table).where(table.c.answer_id.in_(answer_ids)).order_by(table.c.id)
    found: dict[str, list[dict[str, Any]]] = {}
    for row in connection.execute(query).mappings():
        found.setdefault(row["answer_id"], []).append(
            {
                "id": row["id"],
                "rating": row["rating"],
                "text": row["text"],
                "correction": row["correction"],
                "review": row["review"],
                "user_id": row["user_id"],
            }
        )
    return found


def _entry(row: Any, feedback: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "created_at": as_utc(row["created_at"]).isoformat(timespec="seconds"),
        "platform": row["platform"],
        "place": row["place"],
        "user_id": row["user_id"],
        "question": row["question"],
        "answer": row["answer"],
        "confident": bool(row["confident"]),
        "citations": list(row["citations"]),
        "quotes": list(row["evidence"]),
        "timings": dict(row["timings"]),
        "model": row["model"],
        "adapter": row["adapter"],
        "feedback": feedback,
    }


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _as_date(value: Any) -> date:
    """SQLite's date() gives text, PostgreSQL's a date."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))
