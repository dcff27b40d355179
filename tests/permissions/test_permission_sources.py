"""Fail-open defaults, closed: each source says who may read its documents (ACL file, file
modes or public) or Lore refuses to start; every refresh says how many documents each source
makes readable by everyone; file modes deciding on an SMB/CIFS mount are warned about loudly;
the directory, glossary and curated training files may not lie inside a share; data built
without permissions is readable by nobody."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import knowledge.sources.mounts as mounts
from bot.cli.main import cli
from bot.policies import build_permission_policy
from bot.settings import AgentSettings, CustomizeSettings, LoreSettings
from knowledge.config import FolderSourceSettings, IndexSettings, RetrievalSettings
from knowledge.errors import ConfigurationError
from knowledge.knowledge_base import KnowledgeBase
from knowledge.permissions import FileModePermissions, PermissionPolicy, may_read
from knowledge.sources.mounts import filesystem_type
from knowledge.types import EVERYONE, Passage, SourceFile
from tests.support.knowledge_index import CountingEmbedder, make_knowledge

# Two mounts of a host: the root on ext4, a Windows share on CIFS (a space in its name).
MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
95 22 0:51 / /mnt/drive\\040share rw,relatime shared:50 - cifs //fs01/share rw,file_mode=0755,dir_mode=0755
96 22 0:52 / /mnt/nfs rw,relatime shared:51 - nfs4 fs02:/export rw
"""


@pytest.fixture
def share(tmp_path: Path) -> Path:
    folder = tmp_path / "share"
    (folder / "hr").mkdir(parents=True)
    (folder / "hr" / "pay.md").write_text("# Pay\n\nthe pay codename is rubyotter.\n")
    (folder / "leave.md").write_text("# Leave\n\nparental leave lasts sixteen weeks.\n")
    (folder / "hr" / "pay.md").chmod(0o644)  # world-readable, as every file on a CIFS mount
    return folder


@pytest.fixture
def project(tmp_path: Path, share: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("LORE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LORE_CONFIG", str(tmp_path / "lore.toml"))
    return tmp_path


def write_config(project: Path, source_lines: str = "", top: str = "") -> None:
    (project / "lore.toml").write_text(
        f'home = "{project / "home"}"\n{top}\n[[sources]]\nname = "share"\npath = "{project / "share"}"\n{source_lines}\n'
    )


def lore(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


# -- an explicit choice per source ------------------------------------------------------------


def test_a_share_without_acl_file_or_permissions_choice_is_refused_at_start_up(project: Path) -> None:
    write_config(project)

    code, output = lore("index")

    assert code == 1
    assert "Source 'share'" in output and "does not say who may read its documents" in output
    assert "Set `permissions` in its [[sources]] table" in output and "added=" not in output


def test_the_quick_start_sample_is_public_by_choice(project: Path) -> None:
    (sample,) = LoreSettings().sources
    assert sample.permissions == "public"
    policy = build_permission_policy(LoreSettings())
    assert policy.choices == {"sample": "public"}


def test_acl_without_an_acl_file_is_refused(tmp_path: Path, share: Path) -> None:
    settings = LoreSettings(home=tmp_path, sources=[FolderSourceSettings(name="share", path=share, permissions="acl")])
    with pytest.raises(ConfigurationError, match='permissions = "acl" but no ACL file'):
        build_permission_policy(settings)


def test_each_permission_source_decides_and_says_so(tmp_path: Path, share: Path) -> None:
    (tmp_path / "acl.yaml").write_text('rules: [{path: "hr/**", allow: [group:hr]}]\n')
    names = ("by-acl", "by-modes", "public")
    settings = LoreSettings(
        home=tmp_path / "home",
        acl_file=tmp_path / "acl.yaml",
        sources=[
            FolderSourceSettings(name="by-acl", path=share),
            FolderSourceSettings(name="by-modes", path=share, permissions="file-modes"),
            FolderSourceSettings(name="public", path=share, permissions="public"),
        ],
    )
    policy = build_permission_policy(settings)
    pay = {
        name: SourceFile(name, str(share), "hr/pay.md", "file:///x", 1, 1.0, owner="root", mode=0o600) for name in names
    }

    assert policy.choices == {"by-acl": "acl", "by-modes": "file-modes", "public": "public"}
    assert policy(pay["by-acl"]) == {"group:hr"}
    assert policy(pay["by-modes"]) == {"user:root@localhost"}
    assert policy.explain(pay["by-modes"]).reason.startswith("source by-modes uses file modes")
    assert policy.explain(pay["public"]).decided_by == "public"
    assert policy(pay["public"]) == {EVERYONE}


# -- how many documents everyone may read --------------------------------------------------------


def test_lore_index_says_how_many_documents_each_source_lets_everyone_read(project: Path, share: Path) -> None:
    (share / "hr" / "pay.md").chmod(0o600)
    write_config(project, 'permissions = "file-modes"')

    code, output = lore("index")

    assert code == 0, output
    assert "readable by everyone: share 1 of 2" in output


# -- SMB/CIFS mounts ------------------------------------------------------------------------------


def test_the_filesystem_type_comes_from_the_longest_mount_point() -> None:
    assert filesystem_type(Path("/mnt/drive share/hr"), MOUNTINFO) == "cifs"
    assert filesystem_type(Path("/mnt/drive"), MOUNTINFO) == "ext4"
    assert filesystem_type(Path("/mnt/nfs/a"), MOUNTINFO) == "nfs4"
    assert filesystem_type(Path("/srv"), "") is None


def test_file_modes_deciding_on_a_cifs_mount_are_warned_about(tmp_path: Path, share: Path) -> None:
    cifs = MOUNTINFO + f"97 22 0:53 / {share} rw - cifs //fs01/hr rw,file_mode=0755\n"
    policy = PermissionPolicy(
        None,
        [("share", share)],
        FileModePermissions(),
        choices={"share": "file-modes"},
        smb_folder=lambda folder: mounts.is_smb(folder, cifs),
    )
    knowledge = make_knowledge(tmp_path / "home", {"share": share}, CountingEmbedder(), permissions=policy)
    try:
        report = knowledge.refresh()
    finally:
        knowledge.close()

    (warning,) = report.warnings
    assert "source share: file modes decided who may read 2 document(s) on an SMB/CIFS mount" in warning
    assert 'permissions = "acl"' in warning


def test_lore_index_warns_when_file_modes_decide_on_a_cifs_mount(
    project: Path, share: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = project / "mountinfo"
    table.write_text(MOUNTINFO + f"97 22 0:53 / {share} rw - cifs //fs01/hr rw,file_mode=0755\n")
    monkeypatch.setattr(mounts, "MOUNTINFO", table)
    write_config(project, 'permissions = "file-modes"')

    code, output = lore("index")

    assert code == 0, output
    assert "WARNING: source share: file modes decided who may read 2 document(s) on an SMB/CIFS mount" in output


def test_an_acl_source_on_a_cifs_mount_is_not_warned_about(
    project: Path, share: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = project / "mountinfo"
    table.write_text(f"97 22 0:53 / {share} rw - cifs //fs01/hr rw\n")
    monkeypatch.setattr(mounts, "MOUNTINFO", table)
    (project / "acl.yaml").write_text("default: [group:staff]\n")
    write_config(project, top=f'acl_file = "{project / "acl.yaml"}"')

    code, output = lore("index")

    assert code == 0, output
    assert "WARNING" not in output and "readable by everyone: share 0 of 2" in output


# -- side files outside the shares ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "name"),
    [
        ("directory_file", "Directory file"),
        ("glossary_file", "Glossary file"),
        ("curated_files", "Curated training file"),
    ],
)
def test_a_directory_glossary_or_curated_file_inside_a_share_is_refused_at_start_up(
    tmp_path: Path, share: Path, setting: str, name: str
) -> None:
    planted = share / "hr" / "side.yaml"
    planted.write_text("users: {}\n")
    values: dict[str, object] = {
        "directory_file": {"directory_file": planted},
        "glossary_file": {"agent": AgentSettings(glossary_file=planted)},
        "curated_files": {"customize": CustomizeSettings(curated_files=[tmp_path / "faq.yaml", planted])},
    }[setting]
    settings = LoreSettings(
        home=tmp_path / "home", sources=[FolderSourceSettings(name="share", path=share, permissions="public")], **values
    )

    with pytest.raises(ConfigurationError, match=f"{name} .* lies inside the indexed folder"):
        build_permission_policy(settings)


def test_lore_index_refuses_a_directory_file_planted_in_the_share(project: Path, share: Path) -> None:
    (share / "directory.yaml").write_text("users: {mallory@example.com: [hr]}\n")
    write_config(project, 'permissions = "file-modes"', top=f'directory_file = "{share / "directory.yaml"}"')

    code, output = lore("index")

    assert code == 1 and "Directory file" in output and "directory_file" in output


# -- data built without permissions ---------------------------------------------------------------


def test_a_passage_or_file_built_without_permissions_is_readable_by_nobody() -> None:
    passage = Passage("c1", "share", "hr/pay.md", "Pay", "", "file:///x", "text", 1.0)
    file = SourceFile("share", "/srv/share", "hr/pay.md", "file:///x", 1, 1.0, owner="root")

    assert not may_read(passage.principals, {EVERYONE})
    assert FileModePermissions()(file) == frozenset()
    assert json.dumps(sorted(passage.principals)) == "[]"


def test_an_index_built_without_a_permission_policy_shares_nothing(tmp_path: Path, share: Path) -> None:
    knowledge = KnowledgeBase(
        tmp_path / "home",
        [FolderSourceSettings(name="share", path=share)],
        IndexSettings(),
        RetrievalSettings(),
        embedder=CountingEmbedder(),
    )
    try:
        report = knowledge.refresh()
    finally:
        knowledge.close()

    assert report.documents == {"share": 2} and report.readable_by_everyone == {"share": 0}
