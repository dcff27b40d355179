"""The teacher: an OpenAI-compatible endpoint (the loopback server in tests/support) writes
question/answer pairs from each chunk; bad replies and unsupported answers are dropped."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.customize.dataset import DatasetCard, build_dataset, load_examples
from bot.customize.examples import Example
from bot.customize.teacher import (
    TEACHER_KIND,
    TeacherError,
    is_supported,
    open_teacher,
    parse_reply,
)
from bot.model.tokens import estimate_tokens
from bot.settings import CustomizeSettings
from tests.customize.conftest import Share
from tests.support.openai_server import OpenAIServer

API_KEY = "sk-teacher-secret-0123456789"
MODEL = "big-teacher"
UNSUPPORTED = "Yes, everyone gets 99 extra days for that."


def chunk_of(body: dict[str, Any]) -> tuple[str, str, str]:
    """(title, section, passage) of the chunk the teacher was asked about."""
    user = body["messages"][-1]["content"]
    title = re.search(r"^Document: (.*)$", user, re.MULTILINE)
    section = re.search(r"^Section: (.*)$", user, re.MULTILINE)
    passage = user.split("Passage:\n", 1)[1]
    return title.group(1) if title else "", section.group(1) if section else "", passage


def first_sentence(passage: str) -> str | None:
    for line in passage.splitlines():
        line = line.strip()
        if not line.startswith("#") and line.endswith(".") and len(line.split()) >= 5:
            return re.split(r"(?<=\.)\s+(?=[A-Z])", line)[0]
    return None


def teacher_reply(body: dict[str, Any]) -> str:
    """Like a real teacher, mostly: one pair quoting the chunk and one making a number up; the
    Porto page gets chatter instead of JSON, the Rotterdam page JSON in a code fence with a
    broken entry."""
    title, section, passage = chunk_of(body)
    if title == "Porto office":
        return "Sure! Here are two questions people ask: when is lunch served, and when does it close?"
    sentence = first_sentence(passage)
    if sentence is None:
        return '{"pairs": []}'
    pairs: list[dict[str, Any]] = [
        {"question": f"hey, quick one: what's the deal with {(section or title).lower()}?", "answer": sentence},
        {"question": f"do we get anything extra for {(section or title).lower()}?", "answer": UNSUPPORTED},
    ]
    if title == "Rotterdam office":
        pairs.append({"question": "", "answer": "An entry without a question."})
        return f"Here you go:\n```json\n{json.dumps({'pairs': pairs})}\n```"
    return json.dumps({"pairs": pairs})


@pytest.fixture
def server() -> Any:
    with OpenAIServer(reply=teacher_reply, models=(MODEL,), api_key=API_KEY) as running:
        yield running


def _settings(server: OpenAIServer, **changes: Any) -> CustomizeSettings:
    values: dict[str, Any] = {
        "teacher_base_url": server.url,
        "teacher_model": MODEL,
        "teacher_api_key": SecretStr(API_KEY),
        "teacher_questions_per_chunk": 2,
    }
    return CustomizeSettings(**(values | changes))


def _build(share: Share, out: Path, teacher: Any = None) -> DatasetCard:
    return build_dataset(
        share.knowledge,
        out,
        retrieval=share.retrieval,
        persona="You are Lore.",
        glossary=None,
        count_tokens=estimate_tokens,
        teacher=teacher,
    )


def _all(card: DatasetCard) -> list[Example]:
    return [e for split in ("train", "validation", "test") for e in load_examples(card.folder, split)]


def test_teacher_pairs_go_through_the_raft_path_and_bad_ones_are_dropped(
    share: Share, server: OpenAIServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    teacher = open_teacher(_settings(server))
    assert teacher is not None
    caplog.set_level(logging.DEBUG)
    try:
        card = _build(share, tmp_path, teacher)
    finally:
        teacher.close()

    asked = [chunk_of(body) for body in server.chat_requests]
    # Every chunk of the public documents was asked about, the HR-only page never.
    assert {title for title, _, _ in asked} == {
        "Time off",
        "People FAQ",
        "On-call",
        "Continuous integration",
        "Rotterdam office",
        "Porto office",
    }
    assert not any("Salary" in title or "98,000" in passage for title, _, passage in asked)
    assert all(body["model"] == MODEL for body in server.chat_requests)
    assert {r["headers"]["Authorization"] for r in server.requests} == {f"Bearer {API_KEY}"}

    porto = sum(title == "Porto office" for title, _, _ in asked)
    answered = sum(title != "Porto office" and first_sentence(passage) is not None for title, _, passage in asked)
    assert card.teacher == {
        "model": MODEL,
        "chunks": len(asked),
        "pairs": answered,  # the quoting pair of each chunk
        "malformed_replies": porto,
        "invalid_pairs": sum(title == "Rotterdam office" for title, _, _ in asked),
        "unsupported_answers": answered,  # the made-up "99 extra days" of each chunk
    }

    examples = _all(card)
    taught = [e for e in examples if e.kind == TEACHER_KIND]
    assert card.by_kind[TEACHER_KIND] == len(taught) > 0
    assert all(e.origin == "document" for e in taught)
    assert {e.document.split(":", 1)[1] for e in taught} >= {"people/time-off.md", "offices/rotterdam.md"}
    assert not any("99" in e.target or "Porto" in e.document for e in taught)
    carry_over = next(e for e in taught if e.question == "hey, quick one: what's the deal with carry-over?")
    number = int(carry_over.target.rsplit("[", 1)[1].rstrip("]"))
    assert carry_over.target == f"You may carry over at most 5 unused days into the next year. [{number}]"
    assert "You may carry over at most 5 unused days" in carry_over.messages[-1].content.split(f"[{number}]", 1)[1]
    assert carry_over.source == "people/time-off.md" and carry_over.covered
    # Secrets in a teacher's answer are redacted like any other.
    assert "xoxb-" not in (card.folder / "train.jsonl").read_text() + (card.folder / "test.jsonl").read_text()

    # The API key is sent, never kept or logged.
    kept = "".join(p.read_text(encoding="utf-8") for p in card.folder.iterdir())
    assert API_KEY not in kept and API_KEY not in caplog.text and API_KEY not in repr(teacher.model)


def test_without_a_teacher_nothing_changes(share: Share, server: OpenAIServer, tmp_path: Path) -> None:
    assert open_teacher(CustomizeSettings()) is None
    card = _build(share, tmp_path)
    assert card.teacher == {} and TEACHER_KIND not in card.by_kind
    assert server.chat_requests == []


def test_a_failing_endpoint_stops_with_what_to_fix(share: Share, server: OpenAIServer, tmp_path: Path) -> None:
    teacher = open_teacher(_settings(server, teacher_api_key=SecretStr("wrong")))
    assert teacher is not None
    with pytest.raises(TeacherError, match="HTTP 401.*customize.teacher_api_key"):
        _build(share, tmp_path, teacher)
    with pytest.raises(TeacherError, match="teacher_model is empty"):
        open_teacher(_settings(server, teacher_model=""))
    with pytest.raises(TeacherError, match="teacher_questions_per_chunk is 0"):
        open_teacher(_settings(server, teacher_questions_per_chunk=0))


@pytest.mark.parametrize(
    "reply, entries",
    [
        ('{"pairs": [{"question": "q?", "answer": "a."}]}', [{"question": "q?", "answer": "a."}]),
        ('[{"question": "q?", "answer": "a."}]', [{"question": "q?", "answer": "a."}]),
        ('```json\n{"pairs": []}\n```', []),
        ('Here they are: {"pairs": [1, 2]} Hope that helps!', [1, 2]),
        ('{"pairs": [{"question": "q?"', None),  # cut off
        ('{"questions": []}', None),
        ("I cannot help with that.", None),
        ("", None),
    ],
)
def test_parse_reply(reply: str, entries: list[Any] | None) -> None:
    assert parse_reply(reply) == entries


@pytest.mark.parametrize(
    "answer, supported",
    [
        ("You may carry over at most 5 unused days.", True),
        ("At most 5 days carry over, and they expire on 31 March.", True),
        ("You may carry over at most 10 unused days.", False),  # a number the chunk lacks
        ("Ask Priya in Finance about carry-over.", False),  # names the chunk lacks
        ("Unicorns dance gracefully across rainbow meadows.", False),  # words the chunk lacks
    ],
)
def test_answers_must_be_backed_by_the_chunk(answer: str, supported: bool) -> None:
    chunk = "You may carry over at most 5 unused days into the next year. Carried-over days expire on 31 March."
    assert is_supported(answer, [chunk, "Time off", "Carry-over"]) is supported
