"""Narrowing who may read a document never fails open: a chmod 600 with a rewrite, a password
put on a public document, Lore's account denied on a folder. Each is checked through the real
index (MiniLM, Chroma, SQLite): keyword search (catalog), dense search (Chroma's acl filter)
and the vector metadata itself. Files that keep failing are counted and surfaced.

Tests run as root, who reads every file whatever its mode, so a refusal the share would give
Lore's account is injected where the file system answers (open, scandir)."""

from __future__ import annotations

import errno
import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest

import knowledge.sources.filesystem as filesystem
from knowledge.knowledge_base import KnowledgeBase
from knowledge.permissions import FileModePermissions, PermissionPolicy
from knowledge.retrieval import Mode
from knowledge.sync import PERSISTENT_FAILURE_REFRESHES
from knowledge.types import EVERYONE, SearchFilters
from tests.support.files import pdf_bytes, write_document
from tests.support.knowledge_index import CountingEmbedder, make_knowledge

OWNER = pwd.getpwuid(os.getuid()).pw_name
STRANGER = SearchFilters(principals=frozenset({EVERYONE}))
DANA = SearchFilters(principals=frozenset({"user:dana@example.com"}))  # the files' owner
HR = SearchFilters(principals=frozenset({"group:hr"}))
DENSE_AND_KEYWORD: tuple[Mode, ...] = ("keyword", "dense")  # by the catalog and by Chroma


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
def share(tmp_path: Path) -> Path:
    folder = tmp_path / "share"
    write_document(folder / "plans/merger.docx", "the merger codename is quietheron")
    write_document(folder / "plans/board.pdf", "the board codename is silentotter")
    write_document(folder / "hr/reviews.md", "the review codename is velvetbadger")
    write_document(folder / "handbook/leave.md", "parental leave lasts sixteen weeks")
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def build(tmp_path: Path, share: Path, embedder: CountingEmbedder, acl: str | None = None) -> KnowledgeBase:
    acl_file = None
    if acl is not None:
        acl_file = tmp_path / "acl.yaml"
        acl_file.write_text(acl)
    modes = FileModePermissions(unix_users={OWNER: "dana@example.com"})
    policy = PermissionPolicy(acl_file, [("share", share)], modes)
    knowledge = make_knowledge(tmp_path / "home", {"share": share}, embedder, permissions=policy)
    report = knowledge.refresh()
    assert report.failed == [] and report.added == 4
    return knowledge


@pytest.fixture
def file_modes(tmp_path: Path, share: Path, embedder: CountingEmbedder) -> Iterator[KnowledgeBase]:
    knowledge = build(tmp_path, share, embedder)
    yield knowledge
    knowledge.close()


def found(knowledge: KnowledgeBase, query: str, filters: SearchFilters) -> set[str]:
    """Documents `query` reaches for a reader, by the catalog (keyword) and by Chroma (dense)."""
    return {
        passage.path
        for mode in DENSE_AND_KEYWORD
        for passage in knowledge.retriever.search(query, k=10, filters=filters, mode=mode)
    }


def assert_vectors_follow_catalog(knowledge: KnowledgeBase, path: str) -> None:
    ids = knowledge.catalog.file_chunk_ids("share", path)
    assert ids
    stored = knowledge.vectors._collection.get(ids=ids, include=["metadatas"])["metadatas"]
    assert {meta["acl"] for meta in stored} == {knowledge.catalog.files()[("share", path)].acl}


def refuse(monkeypatch: pytest.MonkeyPatch, *, file: str | None = None, folder: Path | None = None) -> None:
    """Make the file system refuse Lore's account: opening `file` (a name) or listing `folder`."""
    real_open, real_scandir = os.open, os.scandir

    def open_(path: str | Path, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if file is not None and str(path) == file:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, mode, dir_fd=dir_fd)

    def scandir(path: str | Path) -> Iterator[os.DirEntry[str]]:
        if folder is not None and Path(path).resolve() == folder.resolve():
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(filesystem.os, "open", open_)
    monkeypatch.setattr(filesystem.os, "scandir", scandir)


def test_chmod_600_and_a_rewrite_lore_may_not_read_withdraws_the_document(
    file_modes: KnowledgeBase, share: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = share / "plans/merger.docx"
    assert found(file_modes, "merger codename", STRANGER) >= {"plans/merger.docx"}
    path.chmod(0o600)
    write_document(path, "the merger codename is quietheron and the price is secret")
    refuse(monkeypatch, file="merger.docx")

    report = file_modes.refresh()

    assert [Path(failure.path).name for failure in report.failed] == ["merger.docx"]
    assert "Permission denied" in report.failed[0].reason
    assert report.deleted == 1
    assert "plans/merger.docx" not in found(file_modes, "merger codename", STRANGER)
    assert "plans/merger.docx" not in found(file_modes, "merger codename", DANA)
    assert ("share", "plans/merger.docx") not in file_modes.catalog.files()
    assert file_modes.vectors.count() == file_modes.catalog.counts()[1]


def test_chmod_600_and_a_corrupt_rewrite_keep_the_last_good_text_for_the_owner_only(
    file_modes: KnowledgeBase, share: Path, embedder: CountingEmbedder
) -> None:
    path = share / "plans/merger.docx"
    path.write_bytes(path.read_bytes()[:500])  # rewritten, truncated: cannot be parsed
    path.chmod(0o600)
    embedder.take()

    report = file_modes.refresh()

    assert [Path(failure.path).name for failure in report.failed] == ["merger.docx"]
    assert "plans/merger.docx" not in found(file_modes, "merger codename", STRANGER)
    assert "plans/merger.docx" in found(file_modes, "merger codename", DANA)  # last good text, owner only
    assert_vectors_follow_catalog(file_modes, "plans/merger.docx")
    assert embedder.take() == []


def test_password_protecting_a_public_pdf_withdraws_its_last_good_version(
    file_modes: KnowledgeBase, share: Path
) -> None:
    assert "plans/board.pdf" in found(file_modes, "board codename", STRANGER)
    (share / "plans/board.pdf").write_bytes(pdf_bytes("the board codename is silentotter", password="hunter2"))

    report = file_modes.refresh()

    assert [Path(failure.path).name for failure in report.failed] == ["board.pdf"]
    assert "encrypted PDF" in report.failed[0].reason and "withdrawn" in report.failed[0].reason
    assert "plans/board.pdf" not in found(file_modes, "board codename", STRANGER)
    assert ("share", "plans/board.pdf") not in file_modes.catalog.files()


def test_an_acl_narrowed_with_a_corrupt_rewrite_applies_at_once(
    tmp_path: Path, share: Path, embedder: CountingEmbedder
) -> None:
    knowledge = build(tmp_path, share, embedder, acl="default: everyone\n")
    try:
        assert "plans/merger.docx" in found(knowledge, "merger codename", STRANGER)
        (tmp_path / "acl.yaml").write_text('default: everyone\nrules: [{path: "plans/**", allow: [group:hr]}]\n')
        path = share / "plans/merger.docx"
        path.write_bytes(b"PK\x03\x04 half-saved")

        report = knowledge.refresh()

        assert [Path(failure.path).name for failure in report.failed] == ["merger.docx"]
        assert "plans/merger.docx" not in found(knowledge, "merger codename", STRANGER)
        assert "plans/merger.docx" in found(knowledge, "merger codename", HR)
        assert_vectors_follow_catalog(knowledge, "plans/merger.docx")
    finally:
        knowledge.close()


def test_denying_lores_account_on_a_folder_withdraws_its_documents(
    file_modes: KnowledgeBase, share: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "hr/reviews.md" in found(file_modes, "review codename", STRANGER)
    refuse(monkeypatch, folder=share / "hr")

    report = file_modes.refresh()

    assert [(failure.path, failure.reason) for failure in report.failed] == [("share:hr", "Permission denied")]
    assert report.deleted == 1
    assert "hr/reviews.md" not in found(file_modes, "review codename", STRANGER)
    assert "handbook/leave.md" in found(file_modes, "parental leave", STRANGER)


def test_denying_lores_account_on_one_unchanged_file_withdraws_it(
    file_modes: KnowledgeBase, share: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    denied = str(share / "hr/reviews.md")
    real_access = os.access
    monkeypatch.setattr(
        filesystem.os, "access", lambda path, mode, **kw: str(path) != denied and real_access(path, mode, **kw)
    )

    report = file_modes.refresh()

    assert [(failure.path, failure.reason) for failure in report.failed] == [
        ("share:hr/reviews.md", "Permission denied")
    ]
    assert "hr/reviews.md" not in found(file_modes, "review codename", STRANGER)


def test_denying_lores_account_on_the_whole_share_withdraws_it_but_an_unmounted_share_stays(
    file_modes: KnowledgeBase, share: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hidden = share.with_name("unmounted")
    share.rename(hidden)
    report = file_modes.refresh()
    assert report.deleted == 0 and file_modes.status().documents == 4
    hidden.rename(share)

    real_access = os.access
    monkeypatch.setattr(
        filesystem.os, "access", lambda path, mode, **kw: Path(path) != share and real_access(path, mode, **kw)
    )
    report = file_modes.refresh()

    assert report.deleted == 4 and file_modes.status().documents == 0
    assert "may not read" in report.failed[0].reason


def test_a_file_failing_refresh_after_refresh_is_surfaced_with_its_count(
    file_modes: KnowledgeBase, share: Path
) -> None:
    path = share / "plans/merger.docx"
    path.write_bytes(path.read_bytes()[:500])
    for refresh in range(1, PERSISTENT_FAILURE_REFRESHES + 1):
        report = file_modes.refresh()
        expected = [] if refresh < PERSISTENT_FAILURE_REFRESHES else [str(path)]
        assert [failing.path for failing in report.failing] == expected
    assert report.failing[0].refreshes == PERSISTENT_FAILURE_REFRESHES
    assert "zip" in report.failing[0].reason.lower()
    assert [record.path for record in file_modes.status().failing] == [str(path)]

    write_document(path, "the merger codename is quietheron")  # repaired: forgotten at once
    report = file_modes.refresh()
    assert report.failing == [] and file_modes.status().failing == ()


def test_the_report_counts_the_documents_everyone_may_read_per_source(file_modes: KnowledgeBase, share: Path) -> None:
    (share / "hr/reviews.md").chmod(0o600)

    report = file_modes.refresh()

    assert (report.documents, report.readable_by_everyone) == ({"share": 4}, {"share": 3})
    assert report.exposure() == "readable by everyone: share 3 of 4"


def test_readers_that_cannot_be_decided_for_a_file_mean_nobody_not_the_old_readers(
    tmp_path: Path, share: Path, embedder: CountingEmbedder
) -> None:
    outage = {"down": False}

    def resolver(file: object) -> frozenset[str]:
        if outage["down"]:
            raise RuntimeError("directory server unreachable")
        return frozenset({EVERYONE})

    knowledge = make_knowledge(tmp_path / "home", {"share": share}, embedder, permissions=resolver)
    try:
        knowledge.refresh()
        outage["down"] = True
        report = knowledge.refresh()

        assert len(report.failed) == 4 and "could not be decided" in report.failed[0].reason
        assert found(knowledge, "codename", STRANGER) == set()
        assert_vectors_follow_catalog(knowledge, "hr/reviews.md")
    finally:
        knowledge.close()


def test_password_protecting_a_public_docx_withdraws_its_last_good_version(
    file_modes: KnowledgeBase, share: Path
) -> None:
    # What Word writes for a password-protected .docx: an OLE2 container holding the
    # encrypted package, no longer a zip (no library here writes one; the header decides).
    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + b"E\x00n\x00c\x00r\x00y\x00p\x00t\x00e\x00d\x00"
    (share / "plans/merger.docx").write_bytes(ole2 + bytes(1024))

    report = file_modes.refresh()

    assert [Path(failure.path).name for failure in report.failed] == ["merger.docx"]
    assert "password-protected Office file" in report.failed[0].reason
    assert "plans/merger.docx" not in found(file_modes, "merger codename", STRANGER)
    assert ("share", "plans/merger.docx") not in file_modes.catalog.files()
