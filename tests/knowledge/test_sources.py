"""The filesystem source lists the right files, with clickable links and metadata, safely."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from knowledge.config import FolderSourceSettings
from knowledge.errors import SourceError
from knowledge.sources import FilesystemSource, Source

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def make_tree(root: Path, names: list[str]) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {name}", encoding="utf-8")


def listed(source: FilesystemSource) -> list[str]:
    return [file.relative_path for file in source.list_files()]


def source_for(root: Path, **settings: object) -> FilesystemSource:
    return FilesystemSource(FolderSourceSettings(name="handbook", path=root, **settings))


def test_lists_nested_files_sorted_with_posix_paths(tmp_path: Path) -> None:
    make_tree(tmp_path, ["b.md", "a/z.txt", "a/deep/er/c.pdf", "A.md"])

    assert listed(source_for(tmp_path)) == ["A.md", "a/deep/er/c.pdf", "a/z.txt", "b.md"]


def test_hidden_and_temporary_files_are_skipped(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        [
            "policy.docx",
            "~$policy.docx",
            "~WRL0001.tmp",
            "notes.md.swp",
            ".~lock.budget.xlsx#",
            "draft.md~",
            ".DS_Store",
            ".hidden.md",
            ".git/config.md",
            "team/.obsidian/workspace.json",
            "team/Thumbs.db",
            "team/plan.md",
        ],
    )

    assert listed(source_for(tmp_path)) == ["policy.docx", "team/plan.md"]


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        (["**/*"], [], ["archive/old.md", "docs/a.md", "docs/drafts/wip.md", "docs/sub/b.pdf", "top.md"]),
        (["*.md"], [], ["archive/old.md", "docs/a.md", "docs/drafts/wip.md", "top.md"]),
        (["docs/**/*.md"], [], ["docs/a.md", "docs/drafts/wip.md"]),
        (["docs/*"], [], ["docs/a.md"]),
        (["**/*.{md,pdf}"], ["archive", "**/drafts/**"], ["docs/a.md", "docs/sub/b.pdf", "top.md"]),
        (["**/*"], ["*.PDF"], ["archive/old.md", "docs/a.md", "docs/drafts/wip.md", "top.md"]),
    ],
)
def test_include_and_exclude_globs_match_relative_paths(
    tmp_path: Path, include: list[str], exclude: list[str], expected: list[str]
) -> None:
    make_tree(tmp_path, ["top.md", "docs/a.md", "docs/sub/b.pdf", "docs/drafts/wip.md", "archive/old.md"])

    assert listed(source_for(tmp_path, include=include, exclude=exclude)) == expected


def test_links_are_not_followed_so_a_link_cannot_rename_a_folder_or_reach_outside_the_share(tmp_path: Path) -> None:
    root = tmp_path / "share"
    outside = tmp_path / "elsewhere"
    make_tree(root, ["team/plan.md", "hr/pay.md"])
    make_tree(outside, ["shared.md", "id_rsa.md"])
    (root / "a-notes").symlink_to(root / "hr", target_is_directory=True)  # hr/ under another name
    (root / "team" / "loop").symlink_to(root, target_is_directory=True)
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "key.md").symlink_to(outside / "id_rsa.md")

    source = source_for(root)

    # Each document once, at its real path; nothing outside the share.
    assert listed(source) == ["hr/pay.md", "team/plan.md"]
    assert source.problems == []
    with pytest.raises(SourceError, match="symbolic link"):
        source.file("a-notes/pay.md")  # what `lore acl explain` asks
    with pytest.raises(SourceError, match="symbolic link"):
        source.file("key.md")


def test_dangling_and_looping_links_are_skipped_quietly(tmp_path: Path) -> None:
    make_tree(tmp_path, ["ok.md"])
    (tmp_path / "gone.md").symlink_to(tmp_path / "missing.md")
    (tmp_path / "spin.md").symlink_to(tmp_path / "spin.md")
    source = source_for(tmp_path)

    assert listed(source) == ["ok.md"]
    assert source.problems == []  # links are not documents: nothing to report or keep


def test_a_folder_or_file_swapped_for_a_link_after_listing_cannot_be_read_through(tmp_path: Path) -> None:
    root = tmp_path / "share"
    outside = tmp_path / "elsewhere"
    make_tree(root, ["team/plan.md", "notes.md"])
    make_tree(outside, ["plan.md", "notes.md"])
    (outside / "plan.md").write_text("outside secret")
    source = source_for(root)
    plan, notes = sorted(source.list_files(), key=lambda f: f.relative_path)[::-1]
    assert source.read_bytes(plan) and source.read_bytes(notes)

    (root / "team").rename(root / "team-old")
    (root / "team").symlink_to(outside, target_is_directory=True)
    (root / "notes.md").unlink()
    (root / "notes.md").symlink_to(outside / "notes.md")

    for swapped in (plan, notes):
        with pytest.raises(SourceError, match="symbolic link"):
            source.read_bytes(swapped)


@pytest.mark.skipif(IS_ROOT, reason="root reads every folder whatever its permissions")
def test_unreadable_folder_is_reported_and_skipped(tmp_path: Path) -> None:  # pragma: no cover - non-root CI
    make_tree(tmp_path, ["ok.md", "locked/secret.md"])
    (tmp_path / "locked").chmod(0)
    try:
        source = source_for(tmp_path)
        assert listed(source) == ["ok.md"]
        assert [problem.path for problem in source.problems] == ["locked"]
    finally:
        (tmp_path / "locked").chmod(0o755)


def test_file_metadata(tmp_path: Path) -> None:
    make_tree(tmp_path, ["team/plan.md"])
    path = tmp_path / "team" / "plan.md"
    path.chmod(0o640)
    os.utime(path, (1_700_000_000, 1_700_000_000.5))

    (file,) = source_for(tmp_path).list_files()

    assert file.source == "handbook"
    assert file.root == str(tmp_path)
    assert file.absolute_path == str(path)
    assert file.size == len("content of team/plan.md")
    assert file.mtime == pytest.approx(1_700_000_000.5)
    assert file.mode == 0o640
    assert file.owner == pwd.getpwuid(os.getuid()).pw_name
    assert file.url == path.as_uri()


@pytest.mark.skipif(not IS_ROOT, reason="only root can give a file to a uid with no account")
def test_owner_without_an_account_is_none(tmp_path: Path) -> None:
    make_tree(tmp_path, ["nfs.md"])
    unknown_uid = 54_321
    assert unknown_uid not in {entry.pw_uid for entry in pwd.getpwall()}
    os.chown(tmp_path / "nfs.md", unknown_uid, -1)

    (file,) = source_for(tmp_path).list_files()

    assert file.owner is None


@pytest.mark.parametrize("prefix", ["https://drive.example.com/handbook/", "https://drive.example.com/handbook"])
def test_url_prefix_quotes_spaces_and_unicode(tmp_path: Path, prefix: str) -> None:
    make_tree(tmp_path, ["Team Docs/Ünïcode plan #1.md"])

    (file,) = source_for(tmp_path, url_prefix=prefix).list_files()

    assert file.relative_path == "Team Docs/Ünïcode plan #1.md"
    assert file.url == "https://drive.example.com/handbook/Team%20Docs/%C3%9Cn%C3%AFcode%20plan%20%231.md"


def test_file_url_without_prefix_is_a_valid_file_uri(tmp_path: Path) -> None:
    make_tree(tmp_path, ["Team Docs/plan #1.md"])

    (file,) = source_for(tmp_path).list_files()

    assert file.url.startswith("file:///")
    assert file.url.endswith("/Team%20Docs/plan%20%231.md")


def test_read_bytes_reads_the_listed_file(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a/b.md"])
    source = source_for(tmp_path)
    (file,) = source.list_files()

    assert source.read_bytes(file) == b"content of a/b.md"


def test_read_bytes_of_a_vanished_file_raises_source_error(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a/b.md"])
    source = source_for(tmp_path)
    (file,) = source.list_files()
    (tmp_path / "a" / "b.md").unlink()

    with pytest.raises(SourceError, match="Cannot read .*b.md"):
        source.read_bytes(file)


def test_read_bytes_refuses_another_sources_file(tmp_path: Path) -> None:
    make_tree(tmp_path / "one", ["a.md"])
    make_tree(tmp_path / "two", ["a.md"])
    one = FilesystemSource(FolderSourceSettings(name="one", path=tmp_path / "one"))
    two = FilesystemSource(FolderSourceSettings(name="two", path=tmp_path / "two"))
    (file,) = one.list_files()

    with pytest.raises(SourceError, match="belongs to source 'one'"):
        two.read_bytes(file)
    assert [f.source for f in two.list_files()] == ["two"]


def test_missing_root_raises_a_clear_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"does not exist\. Mount the share"):
        list(source_for(tmp_path / "unmounted").list_files())


def test_root_that_is_a_file_raises_source_error(tmp_path: Path) -> None:
    make_tree(tmp_path, ["file.md"])

    with pytest.raises(SourceError, match="is not a folder"):
        list(source_for(tmp_path / "file.md").list_files())


def test_filesystem_source_satisfies_the_source_protocol(tmp_path: Path) -> None:
    source: Source = source_for(tmp_path)  # checked by the type checker; runtime smoke below

    assert source.name == "handbook"
    assert list(source.list_files()) == []
