"""Dataset building on the tiny indexed share (tests/customize/conftest.py) with feedback rows."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from bot.core.agent import Agent
from bot.customize.dataset import (
    DatasetCard,
    DatasetError,
    DatasetOptions,
    build_dataset,
    load_examples,
)
from bot.customize.examples import Example
from bot.customize.feedback_seeds import harvest_feedback
from bot.model.base import ChatMessage, GenerationSettings
from bot.model.tokens import estimate_tokens
from bot.store.feedback import Feedback
from bot.types import Answer, Asker, Citation, Question
from knowledge.types import EVERYONE, Passage, SearchFilters
from tests.customize.conftest import Share

PERSONA = "You are Lore, the company's internal assistant."


class RecordingModel:
    """A Model that remembers the prompts it is given and replies with a fixed text."""

    def __init__(self) -> None:
        self.prompts: list[tuple[ChatMessage, ...]] = []

    name = "recording"
    adapter = None
    context_window = 8192

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return estimate_tokens(messages)

    def stream(self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None) -> Iterator[str]:
        self.prompts.append(tuple(messages))
        yield "not covered"

    def use_adapter(self, name: str | None) -> None:
        raise AssertionError("not used")

    def close(self) -> None:
        pass


def _build(share: Share, out: Path, **options: object) -> DatasetCard:
    return build_dataset(
        share.knowledge,
        out,
        retrieval=share.retrieval,
        persona=PERSONA,
        glossary=None,
        count_tokens=estimate_tokens,
        feedback=share.feedback,
        answers=share.answers,
        options=DatasetOptions(**options),  # type: ignore[arg-type]  # each test names the options it varies
    )


def _all(card: DatasetCard) -> list[Example]:
    return [e for split in ("train", "validation", "test") for e in load_examples(card.folder, split)]


def _text(card: DatasetCard) -> str:
    return "".join(
        (card.folder / f"{split}.jsonl").read_text(encoding="utf-8") for split in ("train", "validation", "test")
    )


def _answer(share: Share, answer_id: str, question: str, text: str, path: str, principals: frozenset[str]) -> None:
    passage = Passage("c-" + answer_id, "handbook", path, "Title", "Heading", "file:///x", "text", 1.0, principals)
    share.answers.record(
        Answer(
            id=answer_id,
            question=Question(question, Asker("u1"), "C1", "T-" + answer_id, platform="slack"),
            text=text,
            citations=(Citation(1, path, "Title", "Heading", "file:///x"),),
            evidence=(),
            passages=(passage,),
            confident=True,
            model="tiny",
            adapter=None,
            retrieved=(passage,),
        )
    )


@pytest.fixture(scope="module")
def card(share: Share, tmp_path_factory: pytest.TempPathFactory) -> DatasetCard:
    everyone = frozenset({EVERYONE})
    _answer(
        share,
        "a-good",
        "How many PTO days do I get?",
        "You get 27 days of paid time off [1].",
        "people/time-off.md",
        everyone,
    )
    _answer(
        share, "a-fixed", "When does the Porto kitchen close?", "It closes at 14:00 [1].", "offices/porto.md", everyone
    )
    _answer(share, "a-gap", "Is there a gym in Rotterdam?", "Parking is free [1].", "offices/rotterdam.md", everyone)
    _answer(
        share,
        "a-hr",
        "What is the staff engineer band?",
        "98,000 to 121,000 euros [1].",
        "hr/salaries.md",
        frozenset({"group:hr"}),
    )
    share.feedback.record(Feedback("a-good", "slack", "u1", "helpful"))
    fixed = share.feedback.record(
        Feedback("a-fixed", "slack", "u1", "not_helpful", "wrong time", "The Porto kitchen closes at 15:00.")
    )
    share.feedback.decide(fixed, approved=True, reviewer="cli:admin")  # corrections train once approved
    share.feedback.record(Feedback("a-gap", "slack", "u1", "not_helpful", "that is not about a gym"))
    share.feedback.record(Feedback("a-hr", "slack", "u1", "helpful"))
    return _build(share, tmp_path_factory.mktemp("datasets"))


def test_examples_are_the_prompt_the_agent_builds(share: Share, card: DatasetCard) -> None:
    model = RecordingModel()
    agent = Agent(
        share.knowledge.retriever,
        model,
        share.agent,
        share.retrieval,
        filters_for=lambda question: SearchFilters(principals=frozenset({EVERYONE})),
        embedder=share.knowledge.embedder,
    )
    covered = [e for e in _all(card) if e.covered and e.origin == "document"]
    matches = 0
    for example in covered:
        model.prompts.clear()
        agent.answer(Question(example.question, Asker("eval"), "C", "T-" + example.question), ())
        if model.prompts:
            assert model.prompts[-1][0] == example.messages[0]  # the same system prompt
            matches += model.prompts[-1] == example.messages
    assert matches >= len(covered) // 2 > 0
    for example in _all(card):
        assert example.messages[-1].content.endswith(f"Question: {example.question}")
        if example.covered and example.source is not None:
            number = int(example.target.rsplit("[", 1)[1].rstrip("]"))
            assert f"[{number}] " in example.messages[-1].content
        if not example.covered:
            assert example.target == "not covered"
            assert example.document.split(":", 1)[1] not in example.messages[-1].content


def test_the_distractor_share_sets_how_many_examples_have_only_distractors(share: Share, tmp_path: Path) -> None:
    few = _build(share, tmp_path / "few", distractor_share=0.05)
    many = _build(share, tmp_path / "many", distractor_share=0.3)
    for card in (few, many):
        assert card.not_covered == sum(not e.covered for e in _all(card))
    assert few.not_covered < many.not_covered < sum(few.splits.values()) / 2
    assert many.not_covered > 0


def test_splits_by_document_deterministically(share: Share, card: DatasetCard, tmp_path: Path) -> None:
    documents = {
        split: {e.document for e in load_examples(card.folder, split)} for split in ("train", "validation", "test")
    }
    assert all(documents.values())
    assert not documents["train"] & documents["validation"]
    assert not documents["train"] & documents["test"]
    assert not documents["validation"] & documents["test"]
    questions = [e.question.lower() for e in _all(card)]
    assert len(questions) == len(set(questions))
    again = DatasetCard.read(_build(share, tmp_path).folder)
    assert again.hash == card.hash and again.files == card.files


def test_secrets_are_redacted_and_counted(share: Share, card: DatasetCard, tmp_path: Path) -> None:
    text = _text(card)
    assert "xoxb-" not in text and "Tr0ub4dor3" not in text
    assert "[REDACTED slack_token]" in text
    assert card.redactions["slack_token"] >= 1 and card.redactions["password"] >= 1
    assert "platform@tidewell.example" in text  # e-mails stay unless asked
    redacted = _build(share, tmp_path, redact_emails=True)
    assert "@tidewell.example" not in _text(redacted) and redacted.redactions["email"] >= 1


def test_restricted_documents_are_left_out(
    share: Share, card: DatasetCard, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = _text(card)
    assert "hr/salaries.md" not in text and "121,000" not in text and "98,000" not in text
    assert card.documents == {"used": 6, "excluded_restricted": 1}
    assert card.skipped.get("restricted") == 1  # the feedback on an answer that used an HR page
    with caplog.at_level(logging.WARNING):
        everything = _build(share, tmp_path, include_restricted=True)
    assert "NOT readable by everyone" in caplog.text
    assert "121,000" in _text(everything) and everything.documents["excluded_restricted"] == 0


def test_feedback_becomes_examples_and_gaps(card: DatasetCard) -> None:
    feedback = {e.kind: e for e in _all(card) if e.origin == "feedback"}
    assert set(feedback) == {"feedback_helpful", "feedback_correction"}
    helpful, corrected = feedback["feedback_helpful"], feedback["feedback_correction"]
    assert helpful.covered and corrected.covered  # feedback never becomes a distractor-only example
    assert helpful.target == "You get 27 days of paid time off. [1]"  # re-cited by the new prompt
    assert corrected.target.startswith("The Porto kitchen closes at 15:00.")
    assert "14:00" not in corrected.target
    assert card.gaps == [
        {"answer_id": "a-gap", "question": "Is there a gym in Rotterdam?", "feedback": "that is not about a gym"}
    ]
    assert "gym" not in _text(card)
    assert card.by_origin["feedback"] == 2


def test_card_describes_the_files(card: DatasetCard) -> None:
    data = json.loads((card.folder / "card.json").read_text(encoding="utf-8"))
    assert data["hash"] == card.hash and set(data["files"]) == {"train.jsonl", "validation.jsonl", "test.jsonl"}
    assert sum(data["splits"].values()) == sum(data["by_kind"].values()) == sum(data["by_folder"].values())
    assert set(data["by_folder"]) >= {"people", "engineering", "offices"}


def test_curated_faq_and_glossary_files(share: Share, tmp_path: Path) -> None:
    faq = tmp_path / "faq.yaml"
    faq.write_text(
        "- question: Where do I find the wifi password?\n  answer: Ask reception for the guest wifi code.\n",
        encoding="utf-8",
    )
    glossary = tmp_path / "glossary.csv"
    glossary.write_text("term,definition\nMoorings,Weekly one-to-one meetings with your manager.\n", encoding="utf-8")
    card = _build(share, tmp_path / "out", curated=(faq, glossary), use_feedback=False)
    curated = {e.kind: e for e in _all(card) if e.origin == "curated"}
    assert set(curated) <= {"curated_faq", "curated_glossary"} and card.by_origin["curated"] == 2
    assert "feedback" not in card.by_origin


def test_a_damaged_card_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "card.json").write_text('{"hash": "x"}', encoding="utf-8")
    with pytest.raises(DatasetError, match="build it again"):
        DatasetCard.read(tmp_path)
    with pytest.raises(DatasetError, match="lore customize dataset"):
        DatasetCard.read(tmp_path / "missing")


def test_an_admins_approved_correction_on_someone_elses_answer_trains(share: Share) -> None:
    everyone = frozenset({EVERYONE})
    _answer(share, "a-admin", "When does the Porto office serve lunch?", "At noon [1].", "offices/porto.md", everyone)
    right = "Lunch is served at 12:30 on Tuesdays and Thursdays."
    fixed = share.feedback.record(Feedback("a-admin", "slack", "UADMIN", "not_helpful", "wrong time", right))
    share.feedback.decide(fixed, approved=True, reviewer="cli:admin")

    def trained(admins: frozenset[str]) -> list[str]:
        return [seed.answer for seed in harvest_feedback(share.feedback, share.answers, admins=admins).seeds]

    assert right in trained(frozenset({"slack:UADMIN"}))
    assert right not in trained(frozenset({"teams:UADMIN"}))  # the id of another platform's user
