"""The chunker follows document structure and keeps every chunk inside the embedding model's
window, measured with the real MiniLM tokenizer."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from knowledge.chunking import Chunker
from knowledge.embeddings import bundled_embedding_model
from knowledge.loaders import load_document
from knowledge.types import Chunk, LoadedDocument, Section

SAMPLE_DOCS = Path(__file__).resolve().parents[2] / "knowledge" / "sample_docs"
MINILM_WINDOW = 256  # MiniLM's max_seq_length, [CLS] and [SEP] included
BUDGET = MINILM_WINDOW - 2

WORDS = ["parental", "leave", "laptop", "travel", "hotel", "receipt", "expenses", "budget", "approval", "VPN"]


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_embedding_model()))
    tokenizer.model_max_length = 10**6  # measuring long texts on purpose; silence the warning
    return tokenizer


@pytest.fixture(scope="module")
def count_tokens(tokenizer: PreTrainedTokenizerBase) -> Callable[[str], int]:
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))


@pytest.fixture(scope="module")
def chunker(count_tokens: Callable[[str], int]) -> Chunker:
    return Chunker(count_tokens, chunk_tokens=BUDGET)


def prose(sentences: int, start: int = 0) -> str:
    return " ".join(
        f"Sentence {number} says the {WORDS[number % len(WORDS)]} rule number {number} applies."
        for number in range(start, start + sentences)
    )


def document(*sections: Section, title: str = "Employee handbook") -> LoadedDocument:
    return LoadedDocument(title=title, sections=sections, kind="markdown")


def assert_fits_minilm(chunks: list[Chunk], tokenizer: PreTrainedTokenizerBase) -> None:
    for chunk in chunks:
        # What MiniLM will see, special tokens included: nothing may be cut off.
        assert len(tokenizer(chunk.indexed_text)["input_ids"]) <= MINILM_WINDOW, chunk.heading


def test_long_section_is_split_within_the_budget_including_title_and_headings(
    chunker: Chunker, tokenizer: PreTrainedTokenizerBase
) -> None:
    path = ("Benefits", "Parental leave", "Eligibility and how to apply for the leave")
    doc = document(Section(path, prose(120)), title="Tidewell Robotics employee handbook, edition 2026")

    chunks = chunker.chunk(doc)

    assert len(chunks) > 3
    assert_fits_minilm(chunks, tokenizer)
    assert all(chunk.heading_path == path and chunk.title == doc.title for chunk in chunks)
    assert [chunk.ordinal for chunk in chunks] == list(range(len(chunks)))
    # Cuts fall between sentences, and nothing is lost or repeated without overlap.
    assert all(chunk.text.endswith(".") for chunk in chunks)
    assert " ".join(chunk.text for chunk in chunks) == prose(120)


def test_chunks_never_span_headings_but_join_sections_under_the_same_heading(chunker: Chunker) -> None:
    doc = document(
        Section(("Benefits", "Health"), "Insurance is paid."),
        Section(("Benefits", "Parental leave"), "Twenty weeks."),
        Section(("Benefits", "Parental leave"), "Phased return."),  # e.g. the next PDF page
        Section((), "Closing words."),
    )

    chunks = chunker.chunk(doc)

    assert [(chunk.heading, chunk.text) for chunk in chunks] == [
        ("Benefits > Health", "Insurance is paid."),
        ("Benefits > Parental leave", "Twenty weeks.\n\nPhased return."),
        ("", "Closing words."),
    ]
    assert chunks[1].indexed_text == "Employee handbook > Benefits > Parental leave\nTwenty weeks.\n\nPhased return."


def test_empty_sections_and_documents_produce_no_chunks(chunker: Chunker) -> None:
    doc = document(Section(("A",), "   \n\n"), Section(("B",), ""), Section(("C",), "Real text."))

    assert [chunk.heading for chunk in chunker.chunk(doc)] == ["C"]
    assert chunker.chunk(document()) == []


def test_table_blocks_are_split_by_rows_with_the_header_repeated(
    chunker: Chunker, count_tokens: Callable[[str], int], tokenizer: PreTrainedTokenizerBase
) -> None:
    header = "Name | Team | Office | Email"
    rows = [f"Person {n} | Team {n % 7} | Office {n % 3} | person{n}@tidewell.example" for n in range(120)]
    doc = document(
        Section(("Directory",), "Intro prose."),
        Section(("Directory",), "\n".join([header, *rows]), atomic=True),
        Section(("Directory",), "Outro prose."),
    )

    chunks = chunker.chunk(doc)

    assert chunks[0].text == "Intro prose." and chunks[-1].text == "Outro prose."  # prose not merged in
    table = chunks[1:-1]
    assert len(table) > 2
    assert_fits_minilm(table, tokenizer)
    assert all(chunk.text.split("\n")[0] == header for chunk in table)
    assert [row for chunk in table for row in chunk.text.split("\n")[1:]] == rows
    # Pieces are filled: adding the next row would have broken the budget.
    for chunk, following in zip(table, table[1:], strict=False):
        next_row = following.text.split("\n")[1]
        grown = Chunk(chunk.title, chunk.heading_path, f"{chunk.text}\n{next_row}", 0)
        assert count_tokens(grown.indexed_text) > BUDGET


def test_small_table_blocks_stay_whole_and_apart(chunker: Chunker) -> None:
    doc = document(
        Section(("Offices",), "City | Desks\nPorto | 45", atomic=True),
        Section(("Offices",), "City | Desks\nMontreal | 38", atomic=True),
    )

    assert [chunk.text for chunk in chunker.chunk(doc)] == ["City | Desks\nPorto | 45", "City | Desks\nMontreal | 38"]


def test_a_row_wider_than_a_chunk_is_cut_with_the_header_on_every_piece(
    chunker: Chunker, tokenizer: PreTrainedTokenizerBase
) -> None:
    header = "Term | Definition"
    row = "Beacon | " + prose(40)
    chunks = chunker.chunk(document(Section(("Glossary",), f"{header}\n{row}", atomic=True)))

    assert len(chunks) > 1
    assert_fits_minilm(chunks, tokenizer)
    assert all(chunk.text.startswith(header + "\n") for chunk in chunks)
    assert " ".join(chunk.text.removeprefix(header + "\n") for chunk in chunks) == row


def test_overlap_repeats_the_end_of_one_piece_at_the_start_of_the_next(count_tokens: Callable[[str], int]) -> None:
    chunker = Chunker(count_tokens, chunk_tokens=128, overlap_tokens=24)

    chunks = chunker.chunk(document(Section(("Travel",), prose(40))))

    assert len(chunks) > 2
    for before, after in zip(chunks, chunks[1:], strict=False):
        first_sentence = re.match(r"Sentence \d+ [^.]*\.", after.text)
        assert first_sentence and first_sentence.group(0) in before.text


def test_a_huge_title_and_heading_path_are_shortened_to_leave_room_for_text(
    chunker: Chunker, tokenizer: PreTrainedTokenizerBase
) -> None:
    doc = document(
        Section(tuple(f"Heading level {n} " + prose(2) for n in range(6)), "The actual text."),
        title="A title " + prose(12),
    )

    chunks = chunker.chunk(doc)

    assert [chunk.text for chunk in chunks] == ["The actual text."]
    assert_fits_minilm(chunks, tokenizer)
    assert chunks[0].heading_path[-1].startswith("Heading level 5")  # the innermost heading survives


def test_invalid_sizes_are_refused(count_tokens: Callable[[str], int]) -> None:
    with pytest.raises(ValueError, match="chunk_tokens"):
        Chunker(count_tokens, chunk_tokens=8)
    with pytest.raises(ValueError, match="overlap_tokens"):
        Chunker(count_tokens, chunk_tokens=128, overlap_tokens=64)


def test_sample_handbook_chunks_fit_and_keep_their_headings(
    chunker: Chunker, tokenizer: PreTrainedTokenizerBase
) -> None:
    chunks = {
        path.relative_to(SAMPLE_DOCS).as_posix(): chunker.chunk(load_document(path, path.read_bytes()))
        for path in sorted(SAMPLE_DOCS.rglob("*"))
        if path.is_file()
    }

    for file_chunks in chunks.values():
        assert file_chunks
        assert_fits_minilm(file_chunks, tokenizer)
    (leave,) = [chunk for chunk in chunks["people/benefits.md"] if "20 weeks" in chunk.text]
    assert leave.heading == "Parental leave > How much leave"
    assert leave.indexed_text.startswith("Benefits > Parental leave > How much leave\n")


section_text = st.lists(
    st.sampled_from([*WORDS, "Tidewell", "café", "naïve", "2026", "e-mail", "#beacon", "1,500", "€55", "\n", "\n\n"]),
    min_size=0,
    max_size=400,
).map(" ".join)
sections = st.lists(
    st.builds(
        Section,
        heading_path=st.lists(st.sampled_from(["Benefits", "Travel", "IT", "Per diem"]), max_size=3).map(tuple),
        text=section_text,
        atomic=st.just(False),
    ),
    max_size=6,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sections=sections, budget=st.integers(min_value=24, max_value=BUDGET))
def test_property_no_word_lost_and_budget_kept(
    count_tokens: Callable[[str], int], sections: list[Section], budget: int
) -> None:
    chunker = Chunker(count_tokens, chunk_tokens=budget)
    loaded = document(*sections)
    chunks = chunker.chunk(loaded)

    assert all(count_tokens(chunk.indexed_text) <= budget for chunk in chunks)
    assert all(chunk.text.strip() for chunk in chunks)
    for section in sections:
        # Under its heading path, as shortened when title and path would crowd out the text
        # (a three-level path in a 24-token budget).
        _, heading_path = chunker._fit_context(loaded.title, section.heading_path)
        in_chunks = " ".join(chunk.text for chunk in chunks if chunk.heading_path == heading_path)
        assert set(section.text.split()) <= set(in_chunks.split())
    # Without overlap the words come out in order and exactly once.
    assert [word for chunk in chunks for word in chunk.text.split()] == [
        word for section in sections for word in section.text.split()
    ]
