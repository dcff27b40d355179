"""The catalog's contract, on SQLite and on PostgreSQL alike: writes are atomic and journal the
vectors they free, filters and permissions select exactly, and the keyword search reads a
question's terms as words, whatever syntax they contain."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge.errors import ConfigurationError, IndexUnavailableError
from knowledge.index.catalog import Catalog, ChunkFilter, ChunkRecord, FileRecord, acl_key
from knowledge.index.factory import open_catalog
from knowledge.index.keyword import keyword_terms
from knowledge.index.postgres_catalog import PostgresCatalog
from knowledge.index.sqlite_catalog import SqliteCatalog
from knowledge.types import EVERYONE
from tests.support.postgres import fresh_database

PUBLIC = frozenset({EVERYONE})
FINANCE = frozenset({"group:finance", "ceo@example.com"})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        opened: Catalog = open_catalog(tmp_path)
        assert isinstance(opened, SqliteCatalog)
        yield opened
        opened.close()
        return
    with fresh_database(request.getfixturevalue("postgres_url")) as url:
        opened = open_catalog(tmp_path, url)
        assert isinstance(opened, PostgresCatalog)
        yield opened
        opened.close()


def record(path: str, acl: str, chunks: int, source: str = "docs", title: str = "") -> FileRecord:
    return FileRecord(source, path, 10, 1.0, "sha", title or path, f"file:///{path}", None, 0o644, acl, chunks)


def chunk(path: str, ordinal: int, text: str, acl: str, source: str = "docs", heading: str = "") -> ChunkRecord:
    return ChunkRecord(f"{source}:{path}:{ordinal}:{text}", source, path, ordinal, path, heading, text, text, acl)


def write(catalog: Catalog, files: dict[str, tuple[frozenset[str], list[str]]], source: str = "docs") -> None:
    with catalog.transaction() as writer:
        for path, (principals, texts) in files.items():
            acl = writer.register_acl(principals)
            writer.replace_file(
                record(path, acl, len(texts), source),
                [chunk(path, n, text, acl, source) for n, text in enumerate(texts)],
            )


def search(catalog: Catalog, question: str, where: ChunkFilter | None = None, cap: int = 0) -> list[str]:
    hits = catalog.keyword_search(keyword_terms(question), 20, where or ChunkFilter(), cap)
    records = catalog.chunks([chunk_id for chunk_id, _ in hits])
    return [records[chunk_id].path for chunk_id, _ in hits]


def test_replacing_a_file_journals_the_vectors_it_frees(catalog: Catalog) -> None:
    acl = acl_key(PUBLIC)
    write(catalog, {"a.md": (PUBLIC, ["one", "two", "three"])})
    old = catalog.file_chunk_ids("docs", "a.md")
    assert len(old) == 3 and catalog.counts() == (1, 3)
    catalog.mark_pending(["docs:a.md:0:one", "new-vector"])
    with catalog.transaction() as writer:
        garbage = writer.replace_file(
            record("a.md", acl, 2), [chunk("a.md", 0, "one", acl), chunk("a.md", 1, "2", acl)]
        )
    assert garbage == sorted(old[1:])
    # The kept chunk is live again (no longer pending); the freed ones are garbage.
    assert catalog.journal() == {"new-vector": "pending", **{i: "garbage" for i in old[1:]}}
    assert catalog.live_ids([*old, "docs:a.md:1:2"]) == {old[0], "docs:a.md:1:2"}
    assert catalog.chunk_for_text(["one", "three"]) == {"one": old[0]}
    with catalog.transaction() as writer:
        assert writer.delete_file("docs", "a.md") == ["docs:a.md:0:one", "docs:a.md:1:2"]
    assert catalog.counts() == (0, 0) and catalog.files() == {}
    catalog.clear_journal(list(catalog.journal()))
    assert catalog.journal() == {}


def test_a_failed_transaction_leaves_everything_as_it_was(catalog: Catalog) -> None:
    write(catalog, {"a.md": (PUBLIC, ["kept text"])})
    with pytest.raises(RuntimeError), catalog.transaction() as writer:
        writer.delete_file("docs", "a.md")
        writer.register_acl(FINANCE)
        raise RuntimeError("killed half way")
    assert list(catalog.files()) == [("docs", "a.md")] and search(catalog, "kept") == ["a.md"]
    assert catalog.readable_acls(frozenset({"group:finance"})) == (acl_key(PUBLIC),)


def test_a_permission_change_moves_the_chunks_with_the_file(catalog: Catalog) -> None:
    write(catalog, {"plan.md": (PUBLIC, ["merger plan"]), "menu.md": (PUBLIC, ["lunch menu"])})
    with catalog.transaction() as writer:
        finance = writer.register_acl(FINANCE)
        writer.update_file(record("plan.md", finance, 1))
    assert catalog.files()[("docs", "plan.md")].acl == finance
    assert catalog.acls_in_use() == {finance, acl_key(PUBLIC)}
    public_only = ChunkFilter(acls=catalog.readable_acls(frozenset({"someone@example.com"})))
    assert search(catalog, "merger plan lunch", public_only) == ["menu.md"]
    finance_reader = ChunkFilter(acls=catalog.readable_acls(frozenset({"group:finance"})))
    assert sorted(search(catalog, "merger plan lunch", finance_reader)) == ["menu.md", "plan.md"]
    assert search(catalog, "merger", ChunkFilter(acls=())) == []
    assert [f.path for f in catalog.files_readable_by(PUBLIC)] == ["menu.md"]
    assert catalog.documents_per_source() == {"docs": (2, 1)}
    assert catalog.principals_of([finance, "unknown"]) == {finance: FINANCE}


def test_readable_acls_are_those_sharing_a_principal(catalog: Catalog) -> None:
    sets = [PUBLIC, FINANCE, frozenset({"group:hr"}), frozenset({"group:hr", "group:finance"}), frozenset()]
    with catalog.transaction() as writer:
        keys = [writer.register_acl(principals) for principals in sets]
    assert set(catalog.readable_acls(frozenset({"group:finance"}))) == {keys[0], keys[1], keys[3]}
    assert set(catalog.readable_acls(frozenset())) == {keys[0]}  # everyone holds `everyone`
    assert set(catalog.readable_acls(frozenset({"group:hr", "ceo@example.com"}))) == {keys[0], *keys[1:4]}


def test_source_and_path_prefix_filters_take_paths_literally(catalog: Catalog) -> None:
    write(catalog, {"100%_done/a.md": (PUBLIC, ["budget"]), "100xxdone/b.md": (PUBLIC, ["budget"])})
    write(catalog, {"100%_done/c.md": (PUBLIC, ["budget"])}, source="wiki")
    assert sorted(search(catalog, "budget", ChunkFilter(path_prefix="100%_"))) == ["100%_done/a.md", "100%_done/c.md"]
    assert search(catalog, "budget", ChunkFilter(sources=("docs",), path_prefix="100%_")) == ["100%_done/a.md"]
    assert catalog.matching_paths(ChunkFilter(sources=("wiki",))) == ["100%_done/c.md"]
    found = catalog.chunks(catalog.file_chunk_ids("docs", "100xxdone/b.md"), ChunkFilter(sources=("wiki",)))
    assert found == {}


def test_keyword_search_ranks_titles_and_rare_words_first_and_caps_per_document(catalog: Catalog) -> None:
    write(
        catalog,
        {
            "long.md": (PUBLIC, [f"the vacation policy paragraph {n}" for n in range(5)]),
            "expenses.md": (PUBLIC, ["how to file expenses for a conference", "policy"]),
        },
    )
    assert search(catalog, "expenses policy")[0] == "expenses.md"  # the rarer word weighs more
    assert search(catalog, "vacation policy", cap=2).count("long.md") == 2
    assert search(catalog, "vacation policy").count("long.md") == 5
    scores = [score for _, score in catalog.keyword_search(["vacation"], 10, ChunkFilter())]
    assert scores == sorted(scores, reverse=True) and all(score > 0 for score in scores)
    assert catalog.keyword_search([], 10, ChunkFilter()) == []


@pytest.mark.parametrize(
    "terms",
    [
        ["a&b", "c|d", "!e", "f:*", "g'h", 'i"j', "NEAR(k", "AND", "OR", "NOT", "(", ")", "*", "-", ":", "^"],
        ["'", '"', "\\", "''"],
        ["budget:*"],
    ],
)
def test_query_syntax_in_terms_is_never_interpreted(catalog: Catalog, terms: list[str]) -> None:
    write(catalog, {"budget.md": (PUBLIC, ["the budget for a and b"]), "lunch.md": (PUBLIC, ["lunch menu"])})
    catalog.keyword_search(terms, 10, ChunkFilter())  # raises on a syntax error
    assert sorted(search(catalog, 'budget & (NEAR( "travel" | !lunch:* AND \'x')) == ["budget.md", "lunch.md"]
    # Read as operators, these would match otherwise: a prefix, a negation.
    assert catalog.keyword_search(["budg:*"], 10, ChunkFilter()) == []
    assert [chunk_id.split(":")[1] for chunk_id, _ in catalog.keyword_search(["!budget"], 10, ChunkFilter())] == [
        "budget.md"
    ]


def test_meta_and_failures(catalog: Catalog) -> None:
    assert catalog.get_meta("nothing") is None
    catalog.set_meta("last_refresh_at", "then")
    catalog.set_meta("last_refresh_at", "now")
    assert catalog.get_meta("last_refresh_at") == "now"
    catalog.record_failures([("docs", "a.pdf", "broken"), ("wiki", "b.pdf", "too big")])
    catalog.record_failures([("docs", "a.pdf", "still broken")], sources=["docs"])
    assert [(f.path, f.reason, f.refreshes) for f in catalog.failures()] == [
        ("a.pdf", "still broken", 2),
        ("b.pdf", "too big", 1),
    ]
    catalog.record_failures([])
    assert catalog.failures() == []


def test_a_shared_catalog_needs_a_postgresql_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PostgreSQL URL"):
        open_catalog(tmp_path, f"sqlite:///{tmp_path / 'lore.db'}")


def test_an_unreachable_catalog_database_says_so(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(IndexUnavailableError, match=r"(?s)cannot be reached.*check database_url"):
        open_catalog(tmp_path, f"postgresql+psycopg://lore@127.0.0.1:{port}/lore")
