from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError

from bot.store.answers import AnswerLog, answers_table
from bot.store.database import Database
from bot.store.threads import ThreadMemory, thread_turns
from bot.types import Answer, Asker, Citation, Evidence, Question, Turn
from tests.core.passages import EXPENSES, VACATION


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'lore.db'}")
    yield database
    database.close()


def make_answer(answer_id: str, user: str = "U1", conversation: str = "C1", thread: str = "T1") -> Answer:
    question = Question(
        "Are contractors eligible for vacation?",
        Asker(user, "Ada", "ada@example.com", ("eng",)),
        conversation_id=conversation,
        thread_id=thread,
        platform="slack",
        place="channel",
    )
    return Answer(
        id=answer_id,
        question=question,
        text="No, contractors are not eligible [1].",
        citations=(Citation(1, VACATION.path, VACATION.title, VACATION.heading, VACATION.url),),
        evidence=(Evidence(VACATION.path, "Contractors are not eligible for paid vacation.", VACATION.title),),
        passages=(VACATION,),
        confident=True,
        model="SmolLM2-135M-Instruct",
        adapter="acme-v1",
        timings={"retrieval": 0.1, "total": 2.0},
        retrieved=(VACATION, EXPENSES),
        generated_tokens=9,
    )


def test_record_and_get_round_trip(db: Database) -> None:
    log = AnswerLog(db)
    log.record(make_answer("a1"))
    stored = log.get("a1")
    assert stored is not None
    assert (stored.platform, stored.user_id, stored.conversation_id, stored.thread_id) == ("slack", "U1", "C1", "T1")
    assert stored.question == "Are contractors eligible for vacation?"
    assert stored.answer == "No, contractors are not eligible [1]."
    assert stored.citations == [
        {
            "number": 1,
            "source": VACATION.path,
            "title": VACATION.title,
            "heading": VACATION.heading,
            "url": VACATION.url,
        }
    ]
    assert stored.evidence[0]["quote"] == "Contractors are not eligible for paid vacation."
    assert [(p["path"], p["given_to_model"]) for p in stored.passages] == [
        (VACATION.path, True),
        (EXPENSES.path, False),
    ]
    assert stored.passages[0]["principals"] == ["everyone"]
    assert (stored.model, stored.adapter, stored.confident) == ("SmolLM2-135M-Instruct", "acme-v1", True)
    assert stored.timings == {"retrieval": 0.1, "total": 2.0}
    assert stored.created_at.tzinfo is not None
    assert log.get("missing") is None


def test_latest_for_picks_the_users_newest_answer_in_the_conversation(db: Database) -> None:
    log = AnswerLog(db)
    log.record(make_answer("old", user="U1", conversation="C1"))
    log.record(make_answer("other-user", user="U2", conversation="C1"))
    log.record(make_answer("other-channel", user="U1", conversation="C2"))
    log.record(make_answer("new", user="U1", conversation="C1"))
    assert log.latest_for("U1", "C1").id == "new"
    assert log.latest_for("U1", "C2").id == "other-channel"
    assert log.latest_for("U1", None).id == "new"
    assert log.latest_for("U3", "C1") is None


def test_purge_removes_only_answers_past_retention(db: Database) -> None:
    log = AnswerLog(db)
    log.record(make_answer("old"))
    log.record(make_answer("recent"))
    with db.engine.begin() as connection:
        connection.execute(
            update(answers_table)
            .where(answers_table.c.id == "old")
            .values(created_at=datetime.now(UTC) - timedelta(days=100))
        )
    assert log.purge_older_than(90) == 1
    assert log.get("old") is None and log.get("recent") is not None


def test_duplicate_answer_id_is_rejected(db: Database) -> None:
    log = AnswerLog(db)
    log.record(make_answer("a1"))
    with pytest.raises(IntegrityError):
        log.record(replace(make_answer("a1"), text="again"))
    assert log.get("a1").answer == "No, contractors are not eligible [1]."


def test_thread_memory_is_per_thread_and_bounded(db: Database) -> None:
    memory = ThreadMemory(db, max_turns=2)
    for number in range(3):
        memory.append("slack", "C1", "T1", Turn("U1", f"q{number}", f"a{number}", ("people/vacation.md",)))
    memory.append("slack", "C1", "T2", Turn("U2", "other thread", "x"))
    memory.append("teams", "C1", "T1", Turn("U3", "other platform", "y"))
    assert memory.history("slack", "C1", "T1") == [
        Turn("U1", "q1", "a1", ("people/vacation.md",)),
        Turn("U1", "q2", "a2", ("people/vacation.md",)),
    ]
    assert [t.question for t in memory.history("slack", "C1", "T2")] == ["other thread"]
    assert memory.history("slack", "C9", "T1") == []
    with db.engine.connect() as connection:
        stored = connection.execute(thread_turns.select().where(thread_turns.c.thread_id == "T1")).all()
    assert len(stored) == 3  # two in the slack thread, one in the teams thread


def test_thread_memory_purge_and_validation(db: Database) -> None:
    memory = ThreadMemory(db, max_turns=3)
    memory.append("cli", "cli", "T1", Turn("U1", "q", "a"))
    with db.engine.begin() as connection:
        connection.execute(update(thread_turns).values(created_at=datetime.now(UTC) - timedelta(days=10)))
    assert memory.purge_older_than(5) == 1
    assert memory.history("cli", "cli", "T1") == []
    with pytest.raises(ValueError):
        ThreadMemory(db, max_turns=0)


def test_readers_and_the_models_text_are_kept_and_an_older_log_gets_the_columns(any_database: Database) -> None:
    with any_database.engine.begin() as connection:  # an answer log from before either was kept
        connection.exec_driver_sql("ALTER TABLE answers DROP COLUMN readers")
        connection.exec_driver_sql("ALTER TABLE answers DROP COLUMN generated")
        connection.execute(
            text(
                "INSERT INTO answers (id, platform, user_id, display_name, place, question, answer, confident,"
                " citations, evidence, passages, model, timings, created_at) VALUES ('old', 'cli', 'U1', '',"
                " 'private', 'q', 'a', :yes, '[]', '[]', '[]', 'm', '{}', :created)"
            ),
            {"yes": True, "created": datetime(2026, 1, 1, tzinfo=UTC)},
        )
    reopened = Database(any_database.url)  # opening the database adds the missing columns
    log = AnswerLog(reopened)

    hidden = replace(make_answer("a1"), generated="Contractors get 40 days [1].")  # quotes shown instead
    log.record(replace(hidden, readers=frozenset({"everyone", "group:hr"})))
    log.record(make_answer("a2"))

    assert log.get("a1").readers == ["everyone", "group:hr"]
    assert log.get("a1").generated == "Contractors get 40 days [1]."
    assert log.get("a2").readers is None and log.get("a2").generated == ""
    assert log.get("old").readers is None and log.get("old").generated == ""
    reopened.close()
