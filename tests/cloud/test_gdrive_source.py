"""The Google Drive source against a local Drive v3 server, through the real google-api-python-
client and google-auth: a first sync indexes every format under its drive path with Drive's
sharing, the changes feed brings every later change at the cost of what changed, and every
failure Drive can answer leaves the index answering."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge.config import IndexSettings, RetrievalSettings
from knowledge.errors import FileTooLargeError
from knowledge.knowledge_base import KnowledgeBase
from knowledge.permissions.principals import group, user
from knowledge.sources.gdrive import GoogleDriveSource
from knowledge.types import EVERYONE, SearchFilters
from tests.cloud.gdrive_harness import (
    ALICE,
    BOB,
    CAROL,
    DRIVE,
    HR_GROUP,
    ONBOARDING,
    PHRASE_DOCX,
    PHRASE_MD,
    PHRASE_PDF,
    PHRASE_XLSX,
    Drive,
    document,
    person,
)
from tests.support.knowledge_index import CountingEmbedder

EMBEDDER = CountingEmbedder()


@pytest.fixture
def kb(tmp_path: Path, drive: Drive) -> Iterator[KnowledgeBase]:
    base = KnowledgeBase(
        tmp_path / "home",
        [drive.settings()],
        IndexSettings(),
        RetrievalSettings(),
        embedder=EMBEDDER,
        permissions=lambda file: file.principals or frozenset(),
    )
    EMBEDDER.take()
    yield base
    base.close()


def refresh(kb: KnowledgeBase, source: GoogleDriveSource):  # type: ignore[no-untyped-def]
    try:
        return kb.refresh_sources([source])
    finally:
        source.close()


def paths(kb: KnowledgeBase) -> set[str]:
    return {record.path for record in kb.documents()}


def found(kb: KnowledgeBase, phrase: str, reader: str | None = None) -> set[str]:
    filters = SearchFilters(principals=frozenset({reader})) if reader else None
    passages = kb.retriever.search(phrase, k=10, filters=filters, mode="keyword")
    return {passage.path for passage in passages if phrase.casefold() in passage.text.casefold()}


def test_first_sync_indexes_every_format_and_a_google_doc_under_drive_paths_with_drive_sharing(
    kb: KnowledgeBase, drive: Drive
) -> None:
    report = refresh(kb, drive.source())

    assert paths(kb) == {
        "HR/Policies/leave.md",
        "HR/benefits.docx",
        "HR/desks.xlsx",
        "HR/printer.pdf",
        "HR/Onboarding.docx",
    }, report
    assert report.failed == []
    assert found(kb, PHRASE_MD) == {"HR/Policies/leave.md"}
    assert found(kb, PHRASE_DOCX) == {"HR/benefits.docx"}
    assert "HR/desks.xlsx" in found(kb, PHRASE_XLSX)
    assert found(kb, PHRASE_PDF) == {"HR/printer.pdf"}
    assert found(kb, ONBOARDING) == {"HR/Onboarding.docx"}
    passage = kb.retriever.search(PHRASE_MD, k=1, mode="keyword")[0]
    assert passage.url == f"https://drive.google.com/file/d/{drive.ids['leave.md']}/view?usp=drivesdk"
    onboarding = kb.retriever.search(ONBOARDING, k=1, mode="keyword")[0]
    assert onboarding.url == f"https://docs.google.com/document/d/{drive.ids['Onboarding']}/edit?usp=drivesdk"
    assert passage.principals == {user(ALICE), group(HR_GROUP)}
    assert found(kb, PHRASE_MD, reader=user(BOB)) == set()
    assert f"/drive/v3/files/{drive.ids['Onboarding']}/export" in " ".join(drive.state.requests)


def test_add_edit_rename_move_delete_and_trash_arrive_through_the_changes_feed(
    kb: KnowledgeBase, drive: Drive, tmp_path: Path
) -> None:
    refresh(kb, drive.source())
    state, ids = drive.state, drive.ids
    state.add("new.md", DRIVE, document(tmp_path, "new.md", "the new canteen opens at noon"))
    state.edit(ids["benefits.docx"], document(tmp_path, "benefits.docx", "dental cover now includes braces"))
    state.rename(ids["desks.xlsx"], "offices.xlsx")
    state.move(ids["leave.md"], DRIVE)
    state.rename(ids["Policies"], "Rules")  # a folder's rename moves what is below it
    archive = state.folder("Archive", ids["Policies"])
    state.move(ids["printer.pdf"], archive.id)
    state.delete(ids["Onboarding"])
    state.take_requests()

    report = refresh(kb, drive.source())

    assert paths(kb) == {
        "HR/new.md",
        "HR/benefits.docx",
        "HR/offices.xlsx",
        "HR/leave.md",
        "HR/Rules/Archive/printer.pdf",
    }
    assert found(kb, "the new canteen opens at noon") == {"HR/new.md"}
    assert found(kb, "dental cover now includes braces") == {"HR/benefits.docx"}
    assert found(kb, ONBOARDING) == set()
    # No full listing: the feed, and the children of the one folder new to the mirror.
    assert not any("/drive/v3/files?q=trashed" in request for request in state.take_requests())
    assert report.failed == []

    state.trash(ids["benefits.docx"])
    refresh(kb, drive.source())
    assert "HR/benefits.docx" not in paths(kb)


def test_a_permission_only_change_retags_without_embedding_and_a_user_who_loses_access_stops_finding_it(
    kb: KnowledgeBase, drive: Drive
) -> None:
    refresh(kb, drive.source())
    EMBEDDER.take()
    drive.state.share(drive.ids["leave.md"], [person(BOB)])

    refresh(kb, drive.source())

    assert EMBEDDER.take() == []
    assert found(kb, PHRASE_MD, reader=user(BOB)) == {"HR/Policies/leave.md"}
    assert found(kb, PHRASE_DOCX, reader=user(BOB)) == set()

    drive.state.share(drive.ids["leave.md"], [])
    refresh(kb, drive.source())
    assert EMBEDDER.take() == []
    assert found(kb, PHRASE_MD, reader=user(BOB)) == set()
    assert found(kb, PHRASE_MD, reader=user(ALICE)) == {"HR/Policies/leave.md"}


def test_a_poll_with_no_change_is_one_request_per_drive_and_a_change_of_n_files_costs_o_n(
    kb: KnowledgeBase, drive: Drive, tmp_path: Path
) -> None:
    refresh(kb, drive.source())
    EMBEDDER.take()
    drive.state.take_requests()

    report = refresh(kb, drive.source())
    requests = drive.state.take_requests()

    assert report.added == report.updated == report.deleted == 0 and EMBEDDER.take() == []
    # A new source object (a new process) asks for a token once, then one request per drive.
    assert [request.split("?")[0] for request in requests] == ["POST /token", "GET /drive/v3/changes"]

    costs = {}
    for n in (2, 8):
        for number in range(n):
            drive.state.add(f"note-{n}-{number}.md", DRIVE, document(tmp_path, "n.md", f"note {n} {number} zebra"))
        costs[n] = len([r for r in _requests_of_a_refresh(kb, drive) if not r.startswith("POST /token")])
    # The changes page and the drive's members, then one download per new file.
    assert costs == {2: 2 + 2, 8: 2 + 8}


def _requests_of_a_refresh(kb: KnowledgeBase, drive: Drive) -> list[str]:
    drive.state.take_requests()
    refresh(kb, drive.source())
    return drive.state.take_requests()


def test_a_refused_page_token_lists_the_drive_again_while_the_index_keeps_answering(
    kb: KnowledgeBase, drive: Drive, tmp_path: Path
) -> None:
    refresh(kb, drive.source())
    drive.state.expire_tokens()
    drive.state.add("late.md", DRIVE, document(tmp_path, "late.md", "the late bus leaves at nine"))
    drive.state.fail(r"/drive/v3/files\?", 500, "backendError", times=20)  # the relisting fails

    report = refresh(kb, drive.source())

    assert report.failed and found(kb, PHRASE_MD) == {"HR/Policies/leave.md"}  # previous index answers
    assert "HR/late.md" not in paths(kb)

    drive.state.failures.clear()
    refresh(kb, drive.source())
    assert found(kb, "the late bus leaves at nine") == {"HR/late.md"}
    assert len(paths(kb)) == 6


def test_rate_limits_as_429_and_as_403_user_rate_limit_are_retried_with_bounded_backoff(
    kb: KnowledgeBase, drive: Drive
) -> None:
    drive.state.fail(r"/drive/v3/files\?", 429, "rateLimitExceeded")
    drive.state.fail(r"/drive/v3/changes/startPageToken", 403, "userRateLimitExceeded")
    drive.state.fail(r"/export", 403, "rateLimitExceeded")

    report = refresh(kb, drive.source())

    assert report.failed == [] and len(paths(kb)) == 5
    assert len(drive.sleeps) == 3 and all(0 <= pause <= 2 for pause in drive.sleeps)


def test_other_403s_are_not_retried_and_lores_account_losing_the_drive_withdraws_its_documents(
    kb: KnowledgeBase, drive: Drive
) -> None:
    refresh(kb, drive.source())
    drive.state.drives[DRIVE]["forbidden"] = True

    report = refresh(kb, drive.source())

    assert paths(kb) == set()
    assert drive.sleeps == []
    assert any("refused Lore's account" in failure.reason for failure in report.failed)

    drive.state.drives[DRIVE]["forbidden"] = False
    refresh(kb, drive.source())
    assert len(paths(kb)) == 5


def test_an_unknown_drive_is_a_source_error_that_deletes_nothing(kb: KnowledgeBase, drive: Drive) -> None:
    refresh(kb, drive.source())

    report = refresh(kb, drive.source(drives=[DRIVE, "0Amissing"]))

    assert len(paths(kb)) == 5
    assert any("0Amissing was not found" in failure.reason and "member" in failure.reason for failure in report.failed)


def test_a_page_repeated_and_a_crash_mid_listing_or_mid_download_leave_no_duplicates(
    kb: KnowledgeBase, drive: Drive, tmp_path: Path
) -> None:
    drive.state.max_page_size = 2
    drive.state.repeat_on_next_page = True
    drive.state.fail(r"/drive/v3/files\?.*pageToken=4", 500, "backendError", times=20)  # page 3 fails

    first = refresh(kb, drive.source())

    assert paths(kb) == set() and first.failed  # nothing half-listed reached the index
    drive.state.failures.clear()
    refresh(kb, drive.source())
    assert len(paths(kb)) == 5
    assert sorted(r.path for r in kb.documents()) == sorted(paths(kb))

    drive.state.edit(drive.ids["benefits.docx"], document(tmp_path, "benefits.docx", "dental cover includes implants"))
    drive.state.fail(rf"/drive/v3/files/{drive.ids['benefits.docx']}\?.*alt=media", 500, "backendError", times=20)
    crashed = refresh(kb, drive.source())
    assert crashed.failed and found(kb, PHRASE_DOCX) == {"HR/benefits.docx"}  # last good version answers
    drive.state.failures.clear()
    refresh(kb, drive.source())  # the cursor moved on, but the sync still sees the new size/mtime
    assert found(kb, "dental cover includes implants") == {"HR/benefits.docx"}
    assert len(kb.documents()) == 5


def test_a_file_over_the_size_cap_is_reported_and_never_downloaded(kb: KnowledgeBase, drive: Drive) -> None:
    source = drive.source(max_file_bytes=3000)

    report = refresh(kb, source)

    too_large = {failure.path for failure in report.failed if "over the 3,000-byte limit" in failure.reason}
    assert too_large == {
        "gdrive://drive/HR/benefits.docx",
        "gdrive://drive/HR/desks.xlsx",
        "gdrive://drive/HR/Onboarding.docx",
    }
    media = [r for r in drive.state.requests if drive.ids["benefits.docx"] in r and "alt=media" in r]
    assert media == []  # its listed size was over: not even opened
    assert "HR/printer.pdf" in paths(kb)


def test_domain_shares_grant_everyone_only_when_discoverable_in_an_allowed_domain(
    kb: KnowledgeBase, drive: Drive, tmp_path: Path
) -> None:
    state = drive.state
    cases = {
        "discoverable.md": {"type": "domain", "domain": "example.com", "allowFileDiscovery": True, "role": "reader"},
        "link-only.md": {"type": "domain", "domain": "example.com", "allowFileDiscovery": False, "role": "reader"},
        "other-domain.md": {"type": "domain", "domain": "other.org", "allowFileDiscovery": True, "role": "reader"},
        "anyone.md": {"type": "anyone", "allowFileDiscovery": False, "role": "reader"},
    }
    state.add_drive("0Apub", "Pub", [])
    for name, permission in cases.items():
        state.add(name, "0Apub", document(tmp_path, name, f"{name} tapir"), permissions=[permission])

    refresh(kb, drive.source(drives=["0Apub"], everyone_domains=["Example.com"]))

    principals = {record.path: kb.catalog.principals_of([record.acl])[record.acl] for record in kb.documents()}
    assert principals == {
        "Pub/discoverable.md": frozenset({EVERYONE}),
        "Pub/link-only.md": frozenset(),
        "Pub/other-domain.md": frozenset(),
        "Pub/anyone.md": frozenset(),
    }


def test_a_member_removed_from_the_shared_drive_loses_its_documents_at_the_members_check(
    kb: KnowledgeBase, drive: Drive
) -> None:
    refresh(kb, drive.source(members_check_minutes=0.0001))
    assert found(kb, PHRASE_MD, reader=user(ALICE)) == {"HR/Policies/leave.md"}
    EMBEDDER.take()
    drive.state.drives[DRIVE]["members"] = [person(CAROL)]  # no file changes with it

    refresh(kb, drive.source(members_check_minutes=0.0001))

    assert found(kb, PHRASE_MD, reader=user(ALICE)) == set()
    assert found(kb, PHRASE_MD, reader=user(CAROL)) == {"HR/Policies/leave.md"}
    assert EMBEDDER.take() == []  # retagged, not re-embedded


def test_a_file_that_grew_past_the_cap_since_it_was_listed_stops_downloading_at_the_cap(
    kb: KnowledgeBase, drive: Drive
) -> None:
    source = drive.source(max_file_bytes=10_000)
    try:
        listed = {file.relative_path: file for file in source.list_files()}
        drive.state.items[drive.ids["leave.md"]].content = b"x" * 50_000  # grew, no change recorded yet
        drive.state.take_requests()
        with pytest.raises(FileTooLargeError, match="50,000 bytes, over the 10,000-byte limit"):
            source.read_bytes(listed["HR/Policies/leave.md"])
    finally:
        source.close()
    (download,) = drive.state.take_requests()
    assert "alt=media" in download  # one ranged request of at most the cap + 1 bytes


def test_sharing_drive_will_not_tell_makes_a_file_readable_by_nobody_not_by_its_drive(
    kb: KnowledgeBase, drive: Drive
) -> None:
    drive.state.share(drive.ids["benefits.docx"], [person(BOB)])
    drive.state.fail(rf"/files/{drive.ids['benefits.docx']}/permissions", 403, "insufficientFilePermissions")

    report = refresh(kb, drive.source())

    assert report.failed == [] and len(paths(kb)) == 5
    assert found(kb, PHRASE_DOCX, reader=user(BOB)) == found(kb, PHRASE_DOCX, reader=user(ALICE)) == set()
    assert found(kb, PHRASE_MD, reader=user(ALICE)) == {"HR/Policies/leave.md"}
