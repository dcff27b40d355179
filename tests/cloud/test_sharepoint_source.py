"""The SharePoint / OneDrive source against a local Graph over HTTPS (tests/cloud/graph_server.py),
driven by the real msal and httpx: first sync through `lore index` and the KnowledgeBase
(real Chroma, real loaders), incremental polls by delta, permissions from the drive's own
sharing, failures that must lose nothing, and the CLI's view of the source."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli.main import cli
from bot.policies import build_permission_policy
from bot.settings import LoreSettings
from knowledge.config import IndexSettings, RetrievalSettings, SharePointSourceSettings
from knowledge.errors import FileTooLargeError, SourceError
from knowledge.knowledge_base import KnowledgeBase
from knowledge.sources.sharepoint import SharePointSource
from knowledge.sources.sharepoint.graph import ATTEMPTS
from knowledge.types import EVERYONE, SearchFilters
from tests.cloud.graph_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    HOSTNAME,
    TENANT,
    Drive,
    GraphState,
    graph_server,
    group_grant,
    link_grant,
    user_grant,
)
from tests.support.files import write_document
from tests.support.knowledge_index import CountingEmbedder

ALICE, BOB = "alice@contoso.com", "bob@contoso.com"
HR_READER = frozenset({f"user:{ALICE}", "group:hr", "group:staff", EVERYONE})
STAFF_READER = frozenset({f"user:{BOB}", "group:staff", EVERYONE})


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
def graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphState]:
    with graph_server(tmp_path) as (state, ca):
        # httpx (and so msal, which signs in through the source's httpx client) trusts the
        # local server's certificate the way a deployment adds a corporate CA.
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        yield state


def document(tmp_path: Path, name: str, phrase: str) -> bytes:
    return write_document(tmp_path / "docs" / name, phrase).read_bytes()


def settings_for(graph: GraphState, *drives: Drive, **extra: object) -> SharePointSourceSettings:
    values: dict[str, object] = {
        "kind": "sharepoint",
        "name": "team",
        "tenant_id": TENANT,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "drives": [drive.id for drive in drives],
        "graph_url": f"{graph.base}/v1.0",
        "authority_url": graph.base,
    }
    return SharePointSourceSettings.model_validate({**values, **extra})


def company_drive(graph: GraphState, tmp_path: Path) -> Drive:
    """Documents: HR/ shared with the hr group only, Handbook/ with all staff."""
    drive = graph.add_drive("Documents", grants=[group_grant("Staff")])
    graph.add(drive, "HR", grants=[group_grant("hr")], inherits=False)
    graph.add(drive, "HR/salaries.docx", document(tmp_path, "salaries.docx", "the salary bands are frozen until June"))
    graph.add(drive, "Handbook/leave.md", document(tmp_path, "leave.md", "parental leave lasts sixteen weeks"))
    graph.add(drive, "Handbook/printer.pdf", document(tmp_path, "printer.pdf", "the pelican printer needs badge 4417"))
    return drive


def knowledge(tmp_path: Path, settings: SharePointSourceSettings, embedder: CountingEmbedder) -> KnowledgeBase:
    policy = build_permission_policy(LoreSettings(home=tmp_path / "home", sources=[settings]))
    return KnowledgeBase(
        tmp_path / "home", [settings], IndexSettings(), RetrievalSettings(), embedder=embedder, permissions=policy
    )


def readable(kb: KnowledgeBase, reader: frozenset[str]) -> set[str]:
    return {record.path for record in kb.readable_documents(reader)}


def found(kb: KnowledgeBase, query: str, reader: frozenset[str]) -> set[str]:
    return {passage.path for passage in kb.retriever.search(query, filters=SearchFilters(principals=reader))}


@pytest.fixture
def synced(
    graph: GraphState, tmp_path: Path, embedder: CountingEmbedder
) -> Iterator[tuple[GraphState, Drive, KnowledgeBase]]:
    drive = company_drive(graph, tmp_path)
    kb = knowledge(tmp_path, settings_for(graph, drive), embedder)
    report = kb.refresh()
    assert report.added == 3 and not report.failed, report
    embedder.take()
    yield graph, drive, kb
    kb.close()


# ------------------------------------------------------------------------------ first sync


def test_first_sync_indexes_the_drive_with_its_own_sharing(synced: tuple[GraphState, Drive, KnowledgeBase]) -> None:
    graph, drive, kb = synced

    assert readable(kb, HR_READER) == {
        "Documents/HR/salaries.docx",
        "Documents/Handbook/leave.md",
        "Documents/Handbook/printer.pdf",
    }
    assert readable(kb, STAFF_READER) == {"Documents/Handbook/leave.md", "Documents/Handbook/printer.pdf"}
    assert found(kb, "salary bands", HR_READER) >= {"Documents/HR/salaries.docx"}
    assert "Documents/HR/salaries.docx" not in found(kb, "salary bands", STAFF_READER)
    passage = kb.retriever.search("pelican printer badge", filters=SearchFilters(principals=STAFF_READER))[0]
    assert passage.url.startswith(f"https://{HOSTNAME}/") and passage.path == "Documents/Handbook/printer.pdf"
    # Delta never sends parentReference.path; content came through the download URL, which
    # never saw the bearer token.
    assert all("authorization" not in {k.lower() for k in headers} for headers in graph.download_headers)


def test_no_change_poll_is_one_request_per_drive_and_embeds_nothing(
    graph: GraphState, tmp_path: Path, embedder: CountingEmbedder
) -> None:
    first = company_drive(graph, tmp_path)
    second = graph.add_drive("Projects", grants=[group_grant("Staff")])
    graph.add(second, "plan.md", document(tmp_path, "plan.md", "the walrus release ships in May"))
    kb = knowledge(tmp_path, settings_for(graph, first, second), embedder)
    try:
        assert kb.refresh().added == 4
        embedder.take()
        before = len(graph.requests)

        report = kb.refresh()

        assert graph.requests[before:] == [
            f"GET /v1.0/drives/{first.id}/root/delta?token={graph.last_seq}",
            f"GET /v1.0/drives/{second.id}/root/delta?token={graph.last_seq}",
        ]
        assert report.unchanged == 4 and embedder.take() == []
    finally:
        kb.close()


# ------------------------------------------------------------------------ incremental changes


def test_add_edit_rename_move_delete_reach_the_index_at_the_next_poll(
    synced: tuple[GraphState, Drive, KnowledgeBase], tmp_path: Path, embedder: CountingEmbedder
) -> None:
    graph, drive, kb = synced
    graph.add(drive, "Handbook/travel.md", document(tmp_path, "travel.md", "a quokka is a travel request"))
    graph.edit(drive, "Handbook/leave.md", document(tmp_path, "leave2.md", "parental leave lasts twenty weeks"))
    graph.rename(drive, "Handbook/printer.pdf", "printing.pdf")
    graph.move(drive, "HR/salaries.docx", "Handbook")
    report = kb.refresh()

    assert (report.added, report.deleted, report.failed) == (3, 2, []), report
    assert readable(kb, STAFF_READER) == {
        "Documents/Handbook/leave.md",
        "Documents/Handbook/printing.pdf",
        "Documents/Handbook/salaries.docx",  # moved under Handbook: staff may read it now
        "Documents/Handbook/travel.md",
    }
    assert "twenty weeks" in " ".join(p.text for p in kb.document_passages("team", "Documents/Handbook/leave.md"))
    # Renamed and moved files keep their text: their vectors are reused, only new text is embedded.
    embedded = " ".join(embedder.take())
    assert "pelican" not in embedded and "salary" not in embedded and "quokka" in embedded

    graph.delete(drive, "Handbook")
    report = kb.refresh()

    assert report.deleted == 4 and readable(kb, HR_READER) == set()


def test_a_permission_only_change_retags_without_re_embedding(
    synced: tuple[GraphState, Drive, KnowledgeBase], embedder: CountingEmbedder
) -> None:
    graph, drive, kb = synced
    graph.share(drive, "Handbook/leave.md", [user_grant(BOB)])  # only Bob now, not all staff
    graph.share(drive, "HR", [group_grant("hr"), group_grant("Board", email="board@contoso.com")])
    before = len(graph.requests)

    report = kb.refresh()

    assert report.updated == 2 and embedder.take() == [], report
    assert readable(kb, frozenset({"group:staff", EVERYONE})) == {"Documents/Handbook/printer.pdf"}
    assert readable(kb, frozenset({f"user:{BOB}"})) == {"Documents/Handbook/leave.md"}
    assert readable(kb, frozenset({"group:board@contoso.com"})) == {"Documents/HR/salaries.docx"}
    # A folder's sharing change is one permissions read: the file below inherits it.
    assert not any("/content" in request for request in graph.requests[before:])


def test_a_user_who_loses_access_leaves_the_readable_set_at_the_next_poll(
    synced: tuple[GraphState, Drive, KnowledgeBase],
) -> None:
    graph, drive, kb = synced
    graph.share(drive, "HR", [group_grant("hr"), user_grant(BOB)])
    kb.refresh()
    assert "Documents/HR/salaries.docx" in readable(kb, frozenset({f"user:{BOB}"}))

    graph.share(drive, "HR", [group_grant("hr")])
    kb.refresh()

    assert "Documents/HR/salaries.docx" not in readable(kb, frozenset({f"user:{BOB}", EVERYONE}))
    assert found(kb, "salary bands frozen", frozenset({f"user:{BOB}", EVERYONE})) == set()


def test_a_sharing_change_delta_does_not_report_is_caught_by_the_periodic_full_resync(
    graph: GraphState, tmp_path: Path
) -> None:
    drive = graph.add_drive("Documents", grants=[group_grant("Staff")])
    graph.add(drive, "pay.md", b"# Pay\n\npay\n")
    daily = SharePointSource(settings_for(graph, drive), tmp_path / "state")
    always = SharePointSource(settings_for(graph, drive, full_resync_hours=1e-9), tmp_path / "state")
    try:
        assert [file.principals for file in daily.list_files()] == [{"group:staff"}]
        graph.share(drive, "pay.md", [group_grant("hr")], reported=False)

        assert [file.principals for file in daily.list_files()] == [{"group:staff"}]  # within the day
        assert [file.principals for file in always.list_files()] == [{"group:hr"}]  # resync due
    finally:
        daily.close()
        always.close()


def test_a_change_of_n_files_costs_o_n_requests(graph: GraphState, tmp_path: Path, embedder: CountingEmbedder) -> None:
    drive = graph.add_drive("Documents", grants=[group_grant("Staff")])
    for number in range(60):
        graph.add(drive, f"Team/Notes/note{number:02}.md", f"# Note {number}\n\nplain note {number}.\n".encode())
    source = SharePointSource(settings_for(graph, drive), tmp_path / "state")
    try:
        assert len(list(source.list_files())) == 60
        for n in (1, 10):
            for number in range(n):
                graph.edit(drive, f"Team/Notes/note{number:02}.md", f"# Note {number}\n\nedited {n}.\n".encode())
            before = len(graph.requests)
            files = {file.relative_path: file for file in source.list_files()}
            for number in range(n):
                source.read_bytes(files[f"Documents/Team/Notes/note{number:02}.md"])
            requests = graph.requests[before:]
            # one delta page + per changed file: its permissions, /content and the download;
            # the folders above it (root, Team, Notes) are reported too, once per poll.
            assert len(requests) <= 3 * n + 4, requests
            assert sum("/root/delta" in request for request in requests) == 1
    finally:
        source.close()


# ------------------------------------------------------------------------- protocol details


def test_items_before_their_parents_and_repeated_across_pages(
    graph: GraphState, tmp_path: Path, embedder: CountingEmbedder
) -> None:
    graph.children_first = True
    graph.repeat_across_pages = True
    graph.page_size = 3
    drive = graph.add_drive("Documents", grants=[group_grant("Staff")])
    for number in range(7):
        graph.add(drive, f"A/B/doc{number}.md", f"# Doc {number}\n\nbody {number}\n".encode())
    source = SharePointSource(settings_for(graph, drive), tmp_path / "state")
    try:
        listed = [file.relative_path for file in source.list_files()]
        assert listed == [f"Documents/A/B/doc{n}.md" for n in range(7)]
        assert source.problems == []
        assert len(graph.graph_requests("/root/delta")) == 4  # 10 items, 3 a page, each page repeating one

        graph.edit(drive, "A/B/doc3.md", b"# Doc 3\n\nnew\n")
        graph.move(drive, "A/B", "")
        assert [file.relative_path for file in source.list_files()] == [f"Documents/B/doc{n}.md" for n in range(7)]
    finally:
        source.close()


def test_throttling_429_and_503_honour_retry_after(
    synced: tuple[GraphState, Drive, KnowledgeBase], tmp_path: Path
) -> None:
    graph, drive, kb = synced
    graph.add(drive, "Handbook/new.md", document(tmp_path, "new.md", "the harbour office lends umbrellas"))
    graph.fail("/root/delta", 429, retry_after="1")
    graph.fail("/permissions", 503, retry_after="1")
    graph.fail("/content", 429, retry_after="1")

    report = kb.refresh()

    assert report.added == 1 and not report.failed, report
    assert all(failure.times == 0 for failure in graph.failures)


def test_throttling_without_end_fails_the_poll_and_deletes_nothing(
    synced: tuple[GraphState, Drive, KnowledgeBase],
) -> None:
    graph, drive, kb = synced
    graph.delete(drive, "Handbook/leave.md")
    graph.fail("/root/delta", 503, times=ATTEMPTS, retry_after="0")

    report = kb.refresh()

    assert report.deleted == 0 and "503" in report.failed[0].reason
    assert "Documents/Handbook/leave.md" in readable(kb, STAFF_READER)
    assert kb.refresh().deleted == 1  # the next poll, from the same deltaLink


def test_a_retry_after_longer_than_the_bound_is_not_waited_for(graph: GraphState, tmp_path: Path) -> None:
    drive = graph.add_drive("Documents")
    graph.fail("/root/delta", 429, retry_after="3600")
    waits: list[float] = []
    source = SharePointSource(settings_for(graph, drive), tmp_path / "state", sleep=waits.append)
    try:
        assert list(source.list_files()) == []
        assert "wait 3600 s" in source.problems[0].reason and waits == []
    finally:
        source.close()


def test_a_crash_in_the_middle_of_a_poll_is_redone_without_duplicates(
    graph: GraphState, tmp_path: Path, embedder: CountingEmbedder
) -> None:
    graph.page_size = 4
    drive = graph.add_drive("Documents", grants=[group_grant("Staff")])
    for number in range(12):
        graph.add(drive, f"Docs/doc{number:02}.md", f"# Doc {number}\n\nfirst text {number}\n".encode())
    kb = knowledge(tmp_path, settings_for(graph, drive), embedder)
    try:
        assert kb.refresh().added == 12
        for number in range(12):
            graph.edit(drive, f"Docs/doc{number:02}.md", f"# Doc {number}\n\nsecond text {number}\n".encode())
        graph.delete(drive, "Docs/doc00.md")
        graph.add(drive, "Docs/doc99.md", b"# Doc 99\n\nbrand new\n")
        # 16 changes (Docs and the root come first): pages of 4; the third fails.
        graph.fail("n=2", 500, times=ATTEMPTS, retry_after="0")

        failed = kb.refresh()

        assert failed.deleted == 0 and failed.failed, failed
        assert readable(kb, STAFF_READER) == {f"Documents/Docs/doc{n:02}.md" for n in range(12)}
        report = kb.refresh()
        assert not report.failed, report
        paths = sorted(record.path for record in kb.documents())
        assert paths == sorted({f"Documents/Docs/doc{n:02}.md" for n in range(1, 12)} | {"Documents/Docs/doc99.md"})
        assert all("second text" in kb.document_passages("team", path)[0].text for path in paths[:-1])
    finally:
        kb.close()


def test_an_expired_delta_link_is_a_fresh_enumeration_and_the_index_answers_meanwhile(
    synced: tuple[GraphState, Drive, KnowledgeBase], tmp_path: Path, embedder: CountingEmbedder
) -> None:
    graph, drive, kb = synced
    graph.page_size = 2
    graph.delete(drive, "Handbook/printer.pdf")
    graph.add(drive, "Handbook/new.md", document(tmp_path, "new.md", "the harbour office lends umbrellas"))
    graph.expire_delta_tokens(drive)
    # The fresh enumeration fails on its second page: the old listing stays.
    graph.fail("n=1", 500, times=ATTEMPTS, retry_after="0")

    interrupted = kb.refresh()

    assert interrupted.deleted == 0 and interrupted.added == 0 and interrupted.failed
    assert readable(kb, STAFF_READER) == {"Documents/Handbook/leave.md", "Documents/Handbook/printer.pdf"}
    assert found(kb, "parental leave", STAFF_READER) >= {"Documents/Handbook/leave.md"}

    report = kb.refresh()

    assert (report.added, report.deleted, report.failed) == (1, 1, []), report
    assert readable(kb, STAFF_READER) == {"Documents/Handbook/leave.md", "Documents/Handbook/new.md"}
    assert any(r.endswith("/root/delta") for r in graph.requests[-20:])
    assert "parental" not in " ".join(embedder.take())  # unchanged files are not embedded again


def test_a_file_over_the_size_cap_is_reported_and_never_downloaded_in_full(
    graph: GraphState, tmp_path: Path, embedder: CountingEmbedder
) -> None:
    drive = graph.add_drive("Documents", grants=[group_grant("Staff")])
    graph.add(drive, "big.md", b"# Big\n\n" + b"word " * 2000)
    graph.add(drive, "small.md", b"# Small\n\nsmall text\n")
    settings = settings_for(graph, drive, max_file_bytes=1000)
    kb = knowledge(tmp_path, settings, embedder)
    try:
        report = kb.refresh()
        assert report.added == 1 and "1,000-byte limit" in report.failed[0].reason
        assert graph.bytes_sent == len(b"# Small\n\nsmall text\n")  # the big one was not even opened
    finally:
        kb.close()
    source = SharePointSource(settings, tmp_path / "state")
    try:
        small = next(file for file in source.list_files() if file.relative_path == "Documents/small.md")
        graph.edit(drive, "small.md", b"# Small\n\n" + b"grown " * 1000)  # grew since it was listed
        sent = graph.bytes_sent
        with pytest.raises(FileTooLargeError, match="6,009 bytes"):
            source.read_bytes(small)
        assert graph.bytes_sent - sent == 1001
    finally:
        source.close()


def test_the_app_losing_access_to_a_drive_withdraws_its_documents(
    synced: tuple[GraphState, Drive, KnowledgeBase],
) -> None:
    graph, drive, kb = synced
    graph.drives[drive.id].denied = True

    report = kb.refresh()

    assert report.deleted == 3 and "grant the app read access" in report.failed[0].reason
    assert readable(kb, HR_READER) == set()
    graph.drives[drive.id].denied = False
    assert kb.refresh().added == 3  # a full enumeration when access is back


def test_a_revoked_token_is_renewed_once(graph: GraphState, tmp_path: Path) -> None:
    drive = graph.add_drive("Documents")
    graph.add(drive, "a.md", b"# A\n\na\n")
    source = SharePointSource(settings_for(graph, drive), tmp_path / "state")
    try:
        list(source.list_files())
        graph.tokens.clear()  # every issued token revoked
        list(source.list_files())
        assert len(graph.token_requests) == 2 and source.problems == []
    finally:
        source.close()


def test_sites_resolve_to_their_document_libraries(graph: GraphState, tmp_path: Path) -> None:
    documents = graph.add_drive("Documents", grants=[group_grant("hr")])
    policies = graph.add_drive("Policies", grants=[group_grant("hr")])
    other = graph.add_drive("Documents", grants=[group_grant("staff")])
    graph.sites = {"/sites/hr": [documents.id, policies.id], "/sites/all": [other.id]}
    graph.add(documents, "pay.md", b"# Pay\n\npay\n")
    graph.add(policies, "conduct.md", b"# Conduct\n\nconduct\n")
    graph.add(other, "pay.md", b"# Pay\n\nall\n")
    settings = settings_for(graph, sites=[f"https://{HOSTNAME}/sites/hr", f"https://{HOSTNAME}/sites/all"])
    source = SharePointSource(settings, tmp_path / "state")
    try:
        listed = {file.relative_path: file.principals for file in source.list_files()}
        before = len(graph.requests)
        list(source.list_files())
    finally:
        source.close()
    assert listed == {
        f"Documents ({documents.id[-6:]})/pay.md": {"group:hr"},
        "Policies/conduct.md": {"group:hr"},
        f"Documents ({other.id[-6:]})/pay.md": {"group:staff"},
    }
    assert len(graph.requests) - before == 3  # no site lookups: one delta request per drive


def test_an_unknown_drive_or_site_says_which_setting_to_fix(graph: GraphState, tmp_path: Path) -> None:
    for settings, message in [
        (settings_for(graph, drives=["b!nope"]), "no drive 'b!nope'; check `drives`"),
        (settings_for(graph, sites=[f"https://{HOSTNAME}/sites/nope"]), "no site at https://"),
    ]:
        with (
            closing(SharePointSource(settings, tmp_path / "state")) as source,
            pytest.raises(SourceError, match=message),
        ):
            list(source.list_files())


def test_sign_in_with_a_certificate(graph: GraphState, tmp_path: Path) -> None:
    from tests.cloud.graph_server import self_signed

    (tmp_path / "app").mkdir()
    cert, key = self_signed(tmp_path / "app")
    pem = tmp_path / "app" / "lore.pem"
    pem.write_text(key.read_text() + cert.read_text())
    from knowledge.sources.sharepoint.auth import certificate_credential

    graph.certificate_thumbprints.add(certificate_credential(pem, "team")["thumbprint"])
    drive = graph.add_drive("Documents")
    graph.add(drive, "a.md", b"# A\n\na\n")
    settings = settings_for(graph, drive, client_secret=None, certificate_path=str(pem))
    source = SharePointSource(settings, tmp_path / "state")
    try:
        assert [file.relative_path for file in source.list_files()] == ["Documents/a.md"]
        assert "client_secret" not in graph.token_requests[0]
    finally:
        source.close()


# ------------------------------------------------------------------------------------ sharing


@pytest.mark.parametrize(
    ("grant", "organisation_links", "principals"),
    [
        (user_grant("Alice@Contoso.com"), False, {"user:alice@contoso.com"}),
        ({"roles": ["read"], "grantedToV2": {"user": {"userPrincipalName": ALICE}}}, False, {f"user:{ALICE}"}),
        (group_grant("HR", email="hr@contoso.com"), False, {"group:hr@contoso.com"}),
        (group_grant("Team Members"), False, {"group:team members"}),
        (group_grant("Everyone"), False, set()),  # a group named Everyone is not the company
        (link_grant("organization"), False, set()),
        (link_grant("organization"), True, {EVERYONE}),
        (link_grant("anonymous"), True, set()),
        (link_grant("users", BOB), False, {f"user:{BOB}"}),
        (
            {"roles": ["read"], "grantedToV2": {"siteUser": {"loginName": "c:0-.f|rolemanager|spo-grid-all-users/x"}}},
            False,
            set(),
        ),
        ({"roles": ["sp.limited access"], "grantedToV2": {"user": {"email": ALICE}}}, False, set()),
        ({"roles": ["read"], "grantedToV2": {"application": {"id": "app"}}}, False, set()),
    ],
)
def test_graph_permissions_map_to_lore_principals(
    graph: GraphState, tmp_path: Path, grant: dict[str, object], organisation_links: bool, principals: set[str]
) -> None:
    drive = graph.add_drive("Documents")
    graph.add(drive, "a.md", b"# A\n\na\n", grants=[grant], inherits=False)
    settings = settings_for(graph, drive, organisation_links_grant_everyone=organisation_links)
    source = SharePointSource(settings, tmp_path / "state")
    try:
        (file,) = source.list_files()
    finally:
        source.close()
    assert file.principals == principals


# -------------------------------------------------------------------------------------- CLI


@pytest.fixture
def project(graph: GraphState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[GraphState, Drive]:
    for name in [name for name in os.environ if name.startswith("LORE_")]:
        monkeypatch.delenv(name)
    drive = company_drive(graph, tmp_path)
    (tmp_path / "lore.toml").write_text(
        f'home = "{tmp_path / "home"}"\n'
        "[[sources]]\n"
        'name = "team"\nkind = "sharepoint"\n'
        f'tenant_id = "{TENANT}"\nclient_id = "{CLIENT_ID}"\ndrives = ["{drive.id}"]\n'
        f'graph_url = "{graph.base}/v1.0"\nauthority_url = "{graph.base}"\n'
    )
    monkeypatch.setenv("LORE_CONFIG", str(tmp_path / "lore.toml"))
    monkeypatch.setenv("LORE_SOURCES__0__CLIENT_SECRET", CLIENT_SECRET)
    return graph, drive


def test_lore_index_sources_list_test_and_acl_explain(
    project: tuple[GraphState, Drive], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()

    indexed = runner.invoke(cli, ["index", "--json"])
    listed = runner.invoke(cli, ["sources", "list", "--json"])
    tested = runner.invoke(cli, ["sources", "test", "team"])
    explained = runner.invoke(cli, ["acl", "explain", "--source", "team", "Documents/HR/salaries.docx", "--json"])

    assert indexed.exit_code == 0, indexed.output
    assert json.loads(indexed.stdout)["added"] == 3
    assert listed.exit_code == 0, listed.output
    (summary,) = json.loads(listed.output)
    assert summary["kind"] == "sharepoint" and summary["documents"] == 3 and summary["failures"] == 0
    assert summary["last_sync"] is not None and 0 <= summary["cursor_age_seconds"] < 600
    assert tested.exit_code == 0, tested.output
    assert "Documents/HR/salaries.docx" in tested.output and "Documents/Handbook/leave.md" in tested.output
    assert explained.exit_code == 0, explained.output
    assert json.loads(explained.output)["principals"] == ["group:hr"]
    everything = caplog.text + indexed.output + listed.output + tested.output + explained.output
    assert CLIENT_SECRET not in everything
    # Download URLs carry a token to the file; httpx logs every URL, these without their query.
    assert "/download/" in caplog.text and "tempauth=ok" not in caplog.text
    assert not any(token in caplog.text for token in project[0].tokens)  # nor the access tokens


def test_lore_sources_test_fails_with_a_bad_secret_and_never_shows_it(
    project: tuple[GraphState, Drive], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("LORE_SOURCES__0__CLIENT_SECRET", "wrong-secret-value")
    graph, _ = project
    before = len(graph.requests)

    tested = CliRunner().invoke(cli, ["sources", "test", "team"])

    assert tested.exit_code == 1
    assert "invalid_client" in tested.output and "AADSTS7000215" in tested.output
    assert "wrong-secret-value" not in tested.output + caplog.text
    assert graph.requests[before:] == []  # refused at sign-in: Graph itself never asked


def test_a_refused_sign_in_fails_the_refresh_and_deletes_nothing(
    synced: tuple[GraphState, Drive, KnowledgeBase], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    graph, _, kb = synced
    graph.secret = "rotated"
    graph.tokens.clear()

    report = kb.refresh()

    assert report.deleted == 0 and "sign-in refused" in report.failed[0].reason
    assert readable(kb, HR_READER) and CLIENT_SECRET not in caplog.text + json.dumps(report.to_dict())
    with closing(SharePointSource(settings_for(graph, *graph.drives.values()), Path(kb.home) / "x")) as source:
        with pytest.raises(SourceError) as raised:
            source.check(3)
    assert CLIENT_SECRET not in str(raised.value) and CLIENT_SECRET not in repr(raised.value)


def test_a_next_link_to_another_server_is_not_followed_and_gets_no_token(
    graph: GraphState, tmp_path: Path, embedder: CountingEmbedder
) -> None:
    """A Graph answer (or something between) naming another host in @odata.nextLink would
    receive the app's bearer token: the source refuses the link and the refresh deletes
    nothing."""
    seen: list[dict[str, str]] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  (http.server's name)
            seen.append(dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"value": []}')

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    attacker = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        drive = company_drive(graph, tmp_path)
        graph.page_size = 1
        graph.next_link_base = f"http://127.0.0.1:{attacker.server_address[1]}"
        kb = knowledge(tmp_path, settings_for(graph, drive), embedder)
        try:
            report = kb.refresh()
        finally:
            kb.close()
    finally:
        attacker.shutdown()
        attacker.server_close()

    assert seen == []
    assert report.added == 0 and report.deleted == 0
    assert "outside" in report.failed[0].reason
