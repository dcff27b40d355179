"""Issue #14, route 6: a file on a share cannot exhaust a refresh (which runs inside
`lore serve`) by its size, by inflating, by the time or the memory its parse takes. Each
hostile file is real, made in the test; each must be reported with its path and the
reason, and the rest of the refresh must go on."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from knowledge.config import FolderSourceSettings, IndexSettings
from knowledge.errors import LoaderError
from knowledge.knowledge_base import KnowledgeBase
from knowledge.loaders import load_document
from knowledge.sources.filesystem import FilesystemSource
from knowledge.sync import RefreshReport
from tests.support.files import write_document
from tests.support.hostile_files import (
    MiB,
    write_csv_with_a_huge_header,
    write_empty_paragraphs_docx,
    write_incompressible_office_file,
    write_memory_hungry_json,
    write_nested_json,
    write_size_forging_zip_bomb,
    write_sparse_file,
    write_zip_bomb,
)
from tests.support.knowledge_index import CountingEmbedder, CountingSource, make_knowledge

GOOD_PHRASE = "the bicycle shed opens at seven"


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


def share_with_a_good_document(tmp_path: Path) -> Path:
    """A share whose good document sorts after the hostile ones (`a-...`), so it is parsed
    after them: by a replacement parser process when the hostile one killed the first."""
    share = tmp_path / "share"
    write_document(share / "z-good.md", GOOD_PHRASE)
    return share


def refresh(
    tmp_path: Path, share: Path, embedder: CountingEmbedder, **index: object
) -> tuple[KnowledgeBase, RefreshReport]:
    kb = make_knowledge(tmp_path / "home", {"share": share}, embedder, index=IndexSettings(**index))
    return kb, kb.refresh()


def failures(report: RefreshReport) -> dict[str, str]:
    return {Path(failed.path).name: failed.reason for failed in report.failed}


def assert_good_document_indexed(kb: KnowledgeBase) -> None:
    assert kb.retriever.search(GOOD_PHRASE, k=1)[0].path == "z-good.md"


def test_a_file_over_max_file_bytes_is_reported_without_being_read(tmp_path: Path, embedder: CountingEmbedder) -> None:
    share = share_with_a_good_document(tmp_path)
    write_sparse_file(share / "a-huge.txt", 60 * MiB)  # over the 50 MiB default
    kb = make_knowledge(tmp_path / "home", {"share": share}, embedder)
    source = CountingSource(FolderSourceSettings(name="share", path=share))
    report = kb.refresh_sources([source])
    reason = failures(report)["a-huge.txt"]
    assert "62,914,560 bytes" in reason and "52,428,800" in reason and "max_file_bytes" in reason
    assert source.reads == ["z-good.md"]  # never opened
    assert_good_document_indexed(kb)
    kb.close()


def test_a_file_grown_past_the_limit_after_listing_is_not_read_into_memory(tmp_path: Path) -> None:
    share = tmp_path / "share"
    write_document(share / "notes.txt", "small when listed")
    source = FilesystemSource(FolderSourceSettings(name="share", path=share, max_file_bytes=1000))
    [listed] = list(source.list_files())
    write_sparse_file(share / "notes.txt", 64 * MiB)  # swapped for a huge file before the read
    with pytest.raises(LoaderError, match="max_file_bytes"):
        source.read_bytes(listed)


@pytest.mark.parametrize("suffix", [".docx", ".pptx", ".xlsx"])
def test_an_office_zip_bomb_is_refused_before_it_is_inflated(tmp_path: Path, suffix: str) -> None:
    bomb = write_zip_bomb(tmp_path / f"bomb{suffix}", inflated_mib=100)
    assert bomb.stat().st_size < 200 * 1024
    started = time.monotonic()
    with pytest.raises(LoaderError, match=r"inflates 1\d\d\d:1 .*index\.max_compression_ratio"):
        load_document(bomb, bomb.read_bytes())
    assert time.monotonic() - started < 0.5  # declarations only: nothing was inflated


def test_an_office_file_inflating_past_the_total_cap_is_reported(tmp_path: Path, embedder: CountingEmbedder) -> None:
    share = share_with_a_good_document(tmp_path)
    write_incompressible_office_file(share / "a-archive.xlsx", inflated_mib=3)  # ratio 1:1, total 3 MiB
    kb, report = refresh(tmp_path, share, embedder, max_inflated_mb=2)
    assert "over the 2 MiB limit (index.max_inflated_mb)" in failures(report)["a-archive.xlsx"]
    assert_good_document_indexed(kb)
    kb.close()


@pytest.mark.parametrize("suffix", [".docx", ".pptx", ".xlsx"])
def test_an_office_zip_bomb_forging_its_declared_sizes_is_refused_before_it_is_opened(
    tmp_path: Path, suffix: str
) -> None:
    forged = write_size_forging_zip_bomb(tmp_path / f"forged{suffix}", inflated_mib=100)  # declares 1,000 bytes
    started = time.monotonic()
    with pytest.raises(LoaderError, match="declares 1,000 bytes but inflates to more: a forged zip"):
        load_document(forged, forged.read_bytes())
    assert time.monotonic() - started < 0.5  # stopped after the first MiB past the declaration


def test_nested_json_that_inflates_when_printed_is_refused_without_building_the_text(tmp_path: Path) -> None:
    nested = write_nested_json(tmp_path / "nested.json")  # ~100 KiB → 20 million characters
    started = time.monotonic()
    with pytest.raises(LoaderError, match=r"over 10,000,000 characters of text \(index\.max_text_chars\)"):
        load_document(nested, nested.read_bytes())
    assert time.monotonic() - started < 2


def test_a_csv_whose_huge_header_repeats_in_every_block_is_refused_at_the_text_cap(tmp_path: Path) -> None:
    table = write_csv_with_a_huge_header(tmp_path / "wide.csv")  # 300 KB → 26 million characters
    with pytest.raises(LoaderError, match=r"over the 10,000,000 limit \(index\.max_text_chars\)"):
        load_document(table, table.read_bytes())


def test_a_docx_of_empty_paragraphs_is_stopped_at_the_time_limit_and_the_refresh_goes_on(
    tmp_path: Path, embedder: CountingEmbedder
) -> None:
    share = share_with_a_good_document(tmp_path)
    write_empty_paragraphs_docx(share / "a-slow.docx")  # ~18 s of python-docx on main
    started = time.monotonic()
    kb, report = refresh(tmp_path, share, embedder, parse_timeout_seconds=1)
    assert time.monotonic() - started < 10  # main: ~18 s for the slow docx alone
    assert "longer than 1 s (index.parse_timeout_seconds)" in failures(report)["a-slow.docx"]
    assert report.added == 1
    assert_good_document_indexed(kb)  # parsed by a new parser process, after the kill
    kb.close()


def test_a_file_whose_parse_needs_more_memory_than_allowed_is_reported_and_the_refresh_goes_on(
    tmp_path: Path, embedder: CountingEmbedder
) -> None:
    share = share_with_a_good_document(tmp_path)
    write_memory_hungry_json(share / "a-objects.json")  # 6 MB; ~150 MB once parsed
    started = time.monotonic()
    kb, report = refresh(tmp_path, share, embedder, parse_memory_mb=64)
    assert time.monotonic() - started < 10
    assert "index.parse_memory_mb" in failures(report)["a-objects.json"]
    assert report.added == 1
    assert_good_document_indexed(kb)
    kb.close()


def test_a_hostile_version_of_an_indexed_file_is_reported_and_the_last_good_text_still_answers(
    tmp_path: Path, embedder: CountingEmbedder
) -> None:
    share = share_with_a_good_document(tmp_path)
    write_document(share / "a-policy.docx", "the dental plan covers two cleanings")
    kb = make_knowledge(tmp_path / "home", {"share": share}, embedder, index=IndexSettings(parse_timeout_seconds=1))
    assert kb.refresh().added == 2
    write_empty_paragraphs_docx(share / "a-policy.docx")
    report = kb.refresh()
    assert "index.parse_timeout_seconds" in failures(report)["a-policy.docx"]
    assert report.deleted == 0
    assert kb.retriever.search("dental plan cleanings", k=1)[0].path == "a-policy.docx"
    kb.close()
