"""The [[sources]] table's `kind` picks the settings and the class that reads a source; a
cloud drive's own sharing reaches the permission policy; its secret can stay out of
lore.toml; `lore sources list/test` report on every kind. (The cloud sources themselves are
tested against their local servers in tests/cloud/.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli.main import cli
from bot.policies import build_permission_policy
from bot.settings import LoreSettings
from knowledge.config import FolderSourceSettings, SharePointSourceSettings
from knowledge.errors import ConfigurationError
from knowledge.sources.registry import SOURCE_KINDS
from knowledge.types import EVERYONE, SourceFile

SHAREPOINT = 'name = "team-files"\nkind = "sharepoint"\ntenant_id = "contoso"\nclient_id = "app"\ndrives = ["b!1"]\n'


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("LORE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LORE_CONFIG", str(tmp_path / "lore.toml"))
    (tmp_path / "share").mkdir()
    (tmp_path / "share" / "leave.md").write_text("# Leave\n\nparental leave lasts sixteen weeks.\n")
    return tmp_path


def write_config(project: Path, *tables: str) -> None:
    body = "".join(f"[[sources]]\n{table}\n" for table in tables)
    (project / "lore.toml").write_text(f'home = "{project / "home"}"\n{body}')


def folder_table(project: Path) -> str:
    return f'name = "share"\npath = "{project / "share"}"\npermissions = "public"\n'


def test_a_sources_table_without_kind_is_a_folder_and_kind_picks_the_settings(project: Path) -> None:
    write_config(project, folder_table(project), SHAREPOINT)

    folder, drive = LoreSettings().sources

    assert isinstance(folder, FolderSourceSettings) and folder.kind == "folder"
    assert isinstance(drive, SharePointSourceSettings) and drive.permissions == "source"
    assert set(SOURCE_KINDS) >= {"folder"}


def test_an_unknown_kind_is_refused_with_the_kinds_there_are(project: Path) -> None:
    write_config(project, 'name = "x"\nkind = "dropbox"\n')

    result = CliRunner().invoke(cli, ["sources", "list"])

    assert result.exit_code != 0
    assert "'folder', 'sharepoint', 'gdrive'" in result.output


def test_a_cloud_secret_comes_from_the_environment_by_the_sources_position(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(project, folder_table(project), SHAREPOINT)
    monkeypatch.setenv("LORE_SOURCES__1__CLIENT_SECRET", "s3cret-value")

    drive = LoreSettings().sources[1]

    assert isinstance(drive, SharePointSourceSettings)
    assert drive.client_secret is not None and drive.client_secret.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(LoreSettings())


def test_a_secret_for_a_source_that_is_not_configured_is_an_error(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(project, folder_table(project))
    monkeypatch.setenv("LORE_SOURCES__4__CLIENT_SECRET", "s3cret-value")

    with pytest.raises(ValueError, match="no \\[\\[sources\\]\\] table number 4"):
        LoreSettings()


def test_the_drives_own_sharing_decides_and_an_unreadable_sharing_is_nobody(project: Path) -> None:
    settings = LoreSettings(
        home=project / "home",
        sources=[SharePointSourceSettings(kind="sharepoint", name="team-files", tenant_id="t", client_id="c")],
    )
    policy = build_permission_policy(settings)

    def listed(principals: frozenset[str] | None) -> SourceFile:
        return SourceFile(
            "team-files", "sharepoint://team-files", "HR/pay.docx", "https://x", 1, 1.0, principals=principals
        )

    shared = policy.explain(listed(frozenset({"group:hr@contoso.com"})))
    assert shared.principals == {"group:hr@contoso.com"} and shared.decided_by == "source"
    assert policy(listed(None)) == frozenset()


def test_an_acl_file_can_override_a_drives_sharing_and_defers_to_it_elsewhere(project: Path) -> None:
    (project / "acl.yaml").write_text('sources:\n  team-files:\n    rules: [{path: "HR/**", allow: [group:hr]}]\n')
    settings = LoreSettings(
        home=project / "home",
        acl_file=project / "acl.yaml",
        sources=[
            SharePointSourceSettings(
                kind="sharepoint", name="team-files", tenant_id="t", client_id="c", permissions="acl"
            )
        ],
    )
    policy = build_permission_policy(settings)
    everyone = frozenset({EVERYONE})

    def listed(path: str) -> SourceFile:
        return SourceFile("team-files", "sharepoint://team-files", path, "https://x", 1, 1.0, principals=everyone)

    assert policy(listed("HR/pay.docx")) == {"group:hr"}
    assert policy(listed("Handbook/leave.docx")) == everyone
    assert policy.explain(listed("Handbook/leave.docx")).decided_by == "source"


def test_permission_sources_a_kind_cannot_give_are_refused(project: Path) -> None:
    with pytest.raises(ConfigurationError, match="has no sharing of its own"):
        build_permission_policy(
            LoreSettings(
                home=project, sources=[FolderSourceSettings(name="share", path=project / "share", permissions="source")]
            )
        )
    drive = SharePointSourceSettings(
        kind="sharepoint", name="d", tenant_id="t", client_id="c", permissions="file-modes"
    )
    with pytest.raises(ConfigurationError, match="has no file modes"):
        build_permission_policy(LoreSettings(home=project, sources=[drive]))


def test_lore_sources_list_and_test_report_a_folder(project: Path) -> None:
    write_config(project, folder_table(project))
    runner = CliRunner()
    assert runner.invoke(cli, ["index"]).exit_code == 0

    listed = runner.invoke(cli, ["sources", "list", "--json"])
    tested = runner.invoke(cli, ["sources", "test", "share"])
    missing = runner.invoke(cli, ["sources", "test", "nope"])

    assert listed.exit_code == 0, listed.output
    (summary,) = json.loads(listed.output)
    assert summary["name"] == "share" and summary["kind"] == "folder" and summary["documents"] == 1
    assert summary["last_sync"] is not None and summary["cursor_age_seconds"] is None and summary["failures"] == 0
    assert tested.exit_code == 0 and "leave.md" in tested.output
    assert missing.exit_code == 2 and "configured sources: share" in missing.output


def test_lore_sources_test_fails_when_the_source_cannot_be_listed(project: Path) -> None:
    write_config(project, folder_table(project).replace(str(project / "share"), str(project / "unmounted")))

    result = CliRunner().invoke(cli, ["sources", "test", "share"])

    assert result.exit_code == 1
    assert "does not exist" in result.output
