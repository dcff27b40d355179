from bot.core.citations import cited_numbers, drop_invalid_citations
from bot.core.followup import resolve_followup
from bot.core.text import content_terms, split_sentences, stem
from bot.types import Turn


def test_split_sentences_keeps_verbatim_substrings_and_drops_bullets() -> None:
    text = "- First item here.\n- Second item. It has two sentences!\n\n## Heading\nPlain line"
    sentences = split_sentences(text)
    assert sentences == [
        "First item here.",
        "Second item.",
        "It has two sentences!",
        "Heading",
        "Plain line",
    ]
    assert all(sentence in text for sentence in sentences)


def test_split_sentences_joins_hard_wrapped_lines() -> None:
    text = "Every parent gets 20 weeks of leave, whatever\ntheir gender. It is paid.\n- A list item\n  wrapped here."
    assert split_sentences(text) == [
        "Every parent gets 20 weeks of leave, whatever their gender.",
        "It is paid.",
        "A list item wrapped here.",
    ]


def test_split_sentences_does_not_split_decimals() -> None:
    assert split_sentences("Costs rose 2.5 percent. Then fell.") == ["Costs rose 2.5 percent.", "Then fell."]


def test_stem_matches_plurals_and_verb_forms() -> None:
    assert stem("policies") == stem("policy")
    assert stem("contractors") == stem("contractor")
    assert stem("booked") == stem("booking") == "book"
    assert content_terms("How do I book the rooms?") == ["book", "room"]


def test_cited_numbers_in_order_without_repeats() -> None:
    assert cited_numbers("Yes [2]. Also [1, 3] and [2].") == [2, 1, 3]
    assert cited_numbers("No markers at all, 2024.") == []


def test_drop_invalid_citations_removes_only_unknown_numbers() -> None:
    assert drop_invalid_citations("Yes [1] and [7]. See [2, 9].", {1, 2}) == "Yes [1] and. See [2]."


def test_followup_combines_elliptic_question_with_previous_one() -> None:
    history = [Turn("u1", "How many vacation days do employees get?", "25 days [1]")]
    assert resolve_followup("And for contractors?", history) == (
        "How many vacation days do employees get? And for contractors?"
    )
    assert resolve_followup("Can I carry it over?", history).startswith("How many vacation days")


def test_followup_leaves_self_contained_questions_and_fresh_threads_alone() -> None:
    history = [Turn("u1", "How many vacation days do employees get?", "25 days [1]")]
    question = "How are travel meals reimbursed for sales staff?"
    assert resolve_followup(question, history) == question
    assert resolve_followup("And for contractors?", []) == "And for contractors?"
