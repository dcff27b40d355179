"""File modes → principals, and the PermissionPolicy: ACL first, then mode, re-read on edit."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

import pytest

from knowledge.config import FolderSourceSettings
from knowledge.errors import ConfigurationError
from knowledge.permissions import FileModePermissions, PermissionPolicy
from knowledge.permissions.filemode import stat_group
from knowledge.sources.filesystem import FilesystemSource
from knowledge.types import SourceFile

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def listed(root: Path, name: str = "share") -> dict[str, SourceFile]:
    """The files as the real filesystem source lists them (mode, owner)."""
    return {f.relative_path: f for f in FilesystemSource(FolderSourceSettings(name=name, path=root)).list_files()}


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    for relative, mode in {
        "handbook/vacation.md": 0o644,
        "finance/budget.md": 0o640,
        "people/alice-review.md": 0o600,
        "locked/nobody.md": 0o000,
        "team/group-only.md": 0o040,
    }.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {relative}\n")
        path.chmod(mode)
    return root


def test_file_modes_map_to_principals(share: Path) -> None:
    files = listed(share)
    modes = FileModePermissions(unix_groups={GROUP: "Finance"}, unix_users={OWNER: "Alice@Example.com"})
    assert modes(files["handbook/vacation.md"]) == {"everyone"}
    assert modes(files["finance/budget.md"]) == {"group:finance", "user:alice@example.com"}
    assert modes(files["people/alice-review.md"]) == {"user:alice@example.com"}
    assert modes(files["team/group-only.md"]) == {"group:finance"}
    assert modes(files["locked/nobody.md"]) == frozenset()
    assert "nobody may read it in Lore" in modes.decide(files["locked/nobody.md"]).reason


def test_unmapped_unix_names_keep_their_names(share: Path) -> None:
    files = listed(share)
    assert FileModePermissions()(files["finance/budget.md"]) == {f"group:{GROUP}", f"user:{OWNER}@localhost"}
    by_domain = FileModePermissions(unix_user_domain="example.com")
    assert by_domain(files["people/alice-review.md"]) == {f"user:{OWNER}@example.com"}
    # A Unix group mapped to everyone (a `staff` group holding every employee).
    assert FileModePermissions(unix_groups={GROUP: "everyone"})(files["team/group-only.md"]) == {"everyone"}


def test_unknown_owner_or_group_grants_nothing(share: Path) -> None:
    file = listed(share)["finance/budget.md"]
    orphan = SourceFile(**{**file.__dict__, "owner": None})
    modes = FileModePermissions(group_of=lambda _: None)
    decision = modes.decide(orphan)
    assert decision.principals == frozenset()
    assert "its group has no name here" in decision.reason and "its owner has no name here" in decision.reason
    assert stat_group(SourceFile(**{**file.__dict__, "relative_path": "gone.md"})) is None


def write_acl(path: Path, text: str) -> None:
    """Replace the ACL file the way editors do (a new inode), so the change is always seen."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def test_policy_order_rule_then_default_then_mode(share: Path, tmp_path: Path) -> None:
    acl = tmp_path / "acl.yaml"
    write_acl(acl, "rules: [{path: 'finance/**', allow: [group:board]}]\n")
    policy = PermissionPolicy(acl, [("share", share)], FileModePermissions(unix_users={OWNER: "alice@example.com"}))
    files = listed(share)
    rule = policy.explain(files["finance/budget.md"])
    assert (rule.principals, rule.decided_by) == ({"group:board"}, "rule")
    assert rule.reason == f'rules[1] "finance/**" of ACL file {acl}: group:board'
    mode = policy.explain(files["people/alice-review.md"])
    assert (mode.principals, mode.decided_by) == ({"user:alice@example.com"}, "file-mode")
    assert mode.reason.startswith("no ACL rule or default applies; mode 0600: owner-readable")

    write_acl(acl, "default: [group:staff]\nsources: {share: {rules: [{path: 'people/', allow: filesystem}]}}\n")
    default = policy.explain(files["finance/budget.md"])  # the edit is seen without a restart
    assert (default.principals, default.decided_by) == ({"group:staff"}, "default")
    deferred = policy.explain(files["people/alice-review.md"])
    assert (deferred.principals, deferred.decided_by) == ({"user:alice@example.com"}, "file-mode")
    assert "defers to the file system; mode 0600" in deferred.reason
    assert policy(files["handbook/vacation.md"]) == {"group:staff"}


def test_policy_without_acl_file_uses_modes_only(share: Path) -> None:
    policy = PermissionPolicy(None, [("share", share)])
    assert policy(listed(share)["handbook/vacation.md"]) == {"everyone"}
    assert policy.explain(listed(share)["people/alice-review.md"]).decided_by == "file-mode"


def test_policy_refuses_bad_configuration_at_start_and_on_edit(share: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="lies inside the indexed folder"):
        PermissionPolicy(share / "acl.yaml", [("share", share)])
    acl = tmp_path / "acl.yaml"
    with pytest.raises(ConfigurationError, match="does not exist"):
        PermissionPolicy(acl, [("share", share)])
    write_acl(acl, "sources: {shar: {default: everyone}}")
    with pytest.raises(ConfigurationError, match="unknown source"):
        PermissionPolicy(acl, [("share", share)])
    write_acl(acl, "default: everyone")
    policy = PermissionPolicy(acl, [("share", share)])
    file = listed(share)["people/alice-review.md"]
    assert policy(file) == {"everyone"}
    write_acl(acl, "default: [everyone\n")  # a broken edit stops the refresh with a clear error
    with pytest.raises(ConfigurationError, match="is not valid YAML"):
        policy(file)
    acl.unlink()
    with pytest.raises(ConfigurationError, match="does not exist"):
        policy(file)
    write_acl(acl, "default: [group:hr]")
    assert policy(file) == {"group:hr"}
    # A folder indexed ad hoc (`lore index --source PATH`) that holds the ACL file is refused too.
    ad_hoc = SourceFile(**{**file.__dict__, "source": "adhoc", "root": str(tmp_path)})
    with pytest.raises(ConfigurationError, match="lies inside the indexed folder"):
        policy(ad_hoc)


def test_modes_are_read_without_following_the_acl_when_it_is_silent(share: Path, tmp_path: Path) -> None:
    acl = tmp_path / "acl.yaml"
    write_acl(acl, "rules: [{path: 'handbook/**', allow: everyone}]")
    policy = PermissionPolicy(acl, [("share", share)])
    path = share / "handbook" / "vacation.md"
    path.chmod(0o600)
    assert policy(listed(share)["handbook/vacation.md"]) == {"everyone"}  # the rule wins over the mode
    budget = listed(share)["finance/budget.md"]
    assert stat.S_IMODE(budget.mode) == 0o640
    assert policy(budget) == {f"group:{GROUP}", f"user:{OWNER}@localhost"}
