import numpy as np

from bot.core.evidence import RecentSentenceVectors, keyword_coverage, select_evidence
from bot.core.grounding import is_degenerate, ungrounded_terms, unsupported_share
from tests.core.passages import EXPENSES, LAPTOPS, VACATION


def test_evidence_picks_the_sentence_that_answers() -> None:
    quotes = select_evidence("Are contractors eligible for vacation?", [(1, VACATION), (2, EXPENSES)])
    assert quotes[0].sentence == "Contractors are not eligible for paid vacation."
    assert quotes[0].number == 1
    assert all(" ".join(q.sentence.split()) in " ".join(q.passage.text.split()) for q in quotes)


def test_evidence_is_at_most_three_verbatim_sentences_without_repeats() -> None:
    quotes = select_evidence(
        "vacation days contractors carry over expenses meals laptops",
        [(1, VACATION), (2, EXPENSES), (3, LAPTOPS)],
    )
    assert 1 <= len(quotes) <= 3
    assert len({quote.sentence for quote in quotes}) == len(quotes)


def test_evidence_from_bullet_lists_drops_the_bullet_mark() -> None:
    (quote, *_) = select_evidence("When are laptops replaced?", [(1, LAPTOPS)])
    assert quote.sentence == "Laptops are replaced every three years."


def test_quotes_come_from_the_passage_that_answers() -> None:
    numbered = [(1, VACATION), (2, EXPENSES)]
    question = "How much are travel meals reimbursed per day?"
    quotes = select_evidence(question, numbered)
    assert {quote.number for quote in quotes} == {2} and "60 EUR" in quotes[0].sentence


def test_evidence_is_empty_without_passages() -> None:
    assert select_evidence("anything", []) == []


def test_keyword_coverage() -> None:
    assert keyword_coverage("contractors vacation", VACATION.text) == 1.0
    assert keyword_coverage("submarine periscope", VACATION.text) == 0.0
    assert keyword_coverage("how do I", VACATION.text) == 0.0


def test_grounding_accepts_names_and_numbers_from_the_passages() -> None:
    text = "Full-time employees get 25 days [1]. Submit them in Expensify within 30 days [2]."
    assert ungrounded_terms(text, [VACATION.text, EXPENSES.text]) == []


def test_grounding_flags_invented_numbers_and_names() -> None:
    text = "You get 30 days of vacation, approved by Gandalf in Workday [1]."
    assert ungrounded_terms(text, [VACATION.text]) == ["30", "Gandalf", "Workday"]


def test_grounding_ignores_ordinary_sentence_openers_but_not_acronyms() -> None:
    assert ungrounded_terms("Yes. Employees get 25 days.", [VACATION.text]) == []
    assert ungrounded_terms("HRIS tracks it.", [VACATION.text]) == ["HRIS"]


def test_degenerate_output() -> None:
    assert is_degenerate("")
    assert is_degenerate("[1]")
    assert is_degenerate("the policy says the policy says the policy says the policy says")
    assert not is_degenerate("Contractors are not eligible for paid vacation [1].")


def test_grounding_checks_numbers_written_as_words() -> None:
    assert ungrounded_terms("Laptops are replaced every three years [3].", [LAPTOPS.text]) == []
    assert ungrounded_terms("Laptops are replaced every two years [3].", [LAPTOPS.text]) == ["two"]


def test_text_that_drifts_from_the_passages_is_mostly_unsupported() -> None:
    on_topic = "Contractors are not eligible for paid vacation [1]."
    drifting = "The person replied that this was answered again without further explanation."
    assert unsupported_share(on_topic, [VACATION.text]) == 0.0
    assert unsupported_share(drifting, [VACATION.text]) > 0.8


class CountingEmbedder:
    """Unit vectors from the text's length; records every text embedded as a document."""

    def __init__(self) -> None:
        self.documents: list[str] = []

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.documents.extend(texts)
        return np.array([[np.cos(len(t)), np.sin(len(t))] for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return np.array([1.0, 0.0])


def test_recent_sentence_vectors_embed_each_text_once_and_forget_the_oldest() -> None:
    inner = CountingEmbedder()
    vectors = RecentSentenceVectors(inner, capacity=3)
    first = vectors.embed_documents(["a", "bb", "a"])
    assert inner.documents == ["a", "bb"]
    np.testing.assert_array_equal(first, inner.embed_documents(["a", "bb", "a"]))
    inner.documents.clear()
    again = vectors.embed_documents(["bb", "ccc", "a"])
    assert inner.documents == ["ccc"]
    np.testing.assert_array_equal(again, np.stack([first[1], inner.embed_documents(["ccc"])[0], first[0]]))
    inner.documents.clear()
    vectors.embed_documents(["dddd"])  # over capacity: "bb", the least recently used, goes
    vectors.embed_documents(["a", "bb"])
    assert inner.documents == ["dddd", "bb"]
