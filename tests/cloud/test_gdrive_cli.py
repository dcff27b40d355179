"""The Google Drive source through Lore's commands and settings: `lore index`, `lore sources
list/test`, `lore acl explain`, domain-wide delegation, folders in a user's drive, and a
service-account key that never shows in output or logs."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli.main import cli
from knowledge.errors import SourceError
from knowledge.permissions.principals import group, user
from knowledge.sources.mirror import ListingMirror
from tests.cloud.gdrive_harness import (
    ALICE,
    BOB,
    CAROL,
    DRIVE,
    HR_GROUP,
    Drive,
    document,
    person,
)


@pytest.fixture
def configured(tmp_path: Path, drive: Drive, monkeypatch: pytest.MonkeyPatch) -> Drive:
    for name in [name for name in os.environ if name.startswith("LORE_")]:
        monkeypatch.delenv(name)
    (tmp_path / "lore.toml").write_text(
        f'home = "{tmp_path / "home"}"\n[[sources]]\nname = "drive"\nkind = "gdrive"\n'
        f'credentials_file = "{drive.key_file}"\ndrives = ["{DRIVE}"]\napi_endpoint = "{drive.root}"\n'
    )
    monkeypatch.setenv("LORE_CONFIG", str(tmp_path / "lore.toml"))
    return drive


def lore(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def key_lines(drive: Drive) -> list[str]:
    return [line for line in drive.private_key_pem.splitlines() if line and not line.startswith("-----")]


def test_lore_index_then_sources_list_test_and_acl_explain(
    configured: Drive, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code, output = lore("index", "--json")
    assert code == 0, output
    assert json.loads(output)["added"] == 5

    code, listed = lore("sources", "list", "--json")
    assert code == 0, listed
    (summary,) = json.loads(listed)
    assert (summary["name"], summary["kind"], summary["documents"], summary["failures"]) == ("drive", "gdrive", 5, 0)
    assert summary["last_sync"] is not None and 0 <= summary["cursor_age_seconds"] < 60

    mirror = ListingMirror(tmp_path / "home" / "index" / "sources" / "drive.sqlite3")
    cursor = mirror.cursor(DRIVE)
    configured.state.add("after.md", DRIVE, document(tmp_path, "after.md", "a later note"))
    code, tested = lore("sources", "test", "drive")
    assert code == 0, tested
    assert "reachable" in tested and "benefits.docx" in tested
    assert mirror.cursor(DRIVE) == cursor  # nothing saved
    mirror.close()

    code, explained = lore("acl", "explain", "--source", "drive", "HR/Policies/leave.md", "--json")
    assert code == 0, explained
    assert set(json.loads(explained)["principals"]) == {user(ALICE), group(HR_GROUP)}

    configured.state.refuse_tokens = True
    code, refused = lore("sources", "test", "drive")
    assert code == 1
    assert "refused the service account's token request" in refused and "credentials_file" in refused

    everything = output + listed + tested + explained + refused + caplog.text
    assert not any(line in everything for line in key_lines(configured))


def test_domain_wide_delegation_signs_for_the_delegated_user(drive: Drive, tmp_path: Path) -> None:
    drive.state.expected_subject = CAROL
    source = drive.source(delegated_user=CAROL)
    try:
        assert len(list(source.list_files())) == 5
    finally:
        source.close()

    wrong = drive.source(delegated_user=BOB)
    try:
        with pytest.raises(SourceError, match="domain-wide delegation") as raised:
            list(wrong.list_files())
    finally:
        wrong.close()
    assert not any(line in str(raised.value) for line in key_lines(drive))


def test_a_broken_key_file_says_so_without_quoting_it(drive: Drive) -> None:
    text = drive.key_file.read_text()
    drive.key_file.write_text(text.replace("MII", "XYZ", 1))
    source = drive.source()
    try:
        with pytest.raises(SourceError, match="is not a service-account key") as raised:
            list(source.list_files())
    finally:
        source.close()
    assert not any(line[:20] in str(raised.value) for line in key_lines(drive))


def test_folders_in_a_users_drive_list_everything_below_them_and_follow_moves_in_and_out(
    drive: Drive, tmp_path: Path
) -> None:
    state = drive.state
    team = state.folder("Team", "root", permissions=[person(CAROL, "owner"), person(BOB)])
    sub = state.folder("Plans", team.id)
    plan = state.add("plan.md", sub.id, document(tmp_path, "plan.md", "the plan is to ship"))
    state.add("elsewhere.md", "root", document(tmp_path, "elsewhere.md", "not in the folder"))
    outside = state.folder("Outside", "root", permissions=[person(CAROL, "owner")])
    state.add("moved.md", outside.id, document(tmp_path, "moved.md", "moved in later"))
    source = drive.source(drives=[], folders=[team.id])
    try:
        listed = {file.relative_path: file.principals for file in source.list_files()}
        assert listed == {"Team/Plans/plan.md": frozenset({user(CAROL), user(BOB)})}

        state.move(plan.id, "root")  # out of the folder: leaves
        state.move(outside.id, team.id)  # a folder moves in with what is below it
        state.share(sub.id, [person(ALICE)])
        listed = {file.relative_path: file.principals for file in source.list_files()}
        assert listed == {"Team/Outside/moved.md": frozenset({user(CAROL), user(BOB)})}
    finally:
        source.close()
