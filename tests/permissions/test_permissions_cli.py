"""`lore acl explain` and `lore acl principals` against real files and a real lore.toml."""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli.main import cli

OWNER = pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    share = tmp_path / "share"
    (share / "hr").mkdir(parents=True)
    (share / "people").mkdir()
    (share / "hr" / "pay.md").write_text("# Pay\n")
    (share / "people" / "review.md").write_text("# Review\n")
    (share / "people" / "review.md").chmod(0o600)
    (share / "logo.png").write_bytes(b"\x89PNG")
    other = tmp_path / "other"
    (other / "hr").mkdir(parents=True)
    (other / "hr" / "pay.md").write_text("# Other pay\n")
    (tmp_path / "acl.yaml").write_text('rules: [{path: "hr/", allow: [group:hr, user:cfo@example.com]}]\n')
    (tmp_path / "directory.yaml").write_text("users: {alice@example.com: [hr, board]}\n")
    (tmp_path / "lore.toml").write_text(
        f"""
home = "{tmp_path / "home"}"
acl_file = "{tmp_path / "acl.yaml"}"
directory_file = "{tmp_path / "directory.yaml"}"
[[sources]]
name = "share"
path = "{share}"
exclude = ["people/**"]
[[sources]]
name = "other"
path = "{other}"
[permissions]
unix_users = {{ {OWNER} = "owner@example.com" }}
"""
    )
    for name in list(os.environ):
        if name.startswith("LORE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LORE_CONFIG", str(tmp_path / "lore.toml"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def lore(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_explain_a_rule(project: Path) -> None:
    code, output = lore("acl", "explain", "hr/pay.md", "--source", "share")
    assert code == 0, output
    assert "readable by: group:hr, user:cfo@example.com" in output
    assert f'why: rules[1] "hr/**" of ACL file {project / "acl.yaml"}' in output


def test_explain_a_file_mode_as_json_by_absolute_path(project: Path) -> None:
    code, output = lore("acl", "explain", str(project / "share" / "people" / "review.md"), "--json")
    assert code == 0, output
    data = json.loads(output)
    assert data["principals"] == ["user:owner@example.com"]
    assert data["decided_by"] == "file-mode"
    assert "mode 0600: owner-readable" in data["reason"]
    assert data["indexed"] is False and "exclude globs" in data["note"]


def test_explain_a_path_typed_from_the_current_folder(project: Path) -> None:
    code, output = lore("acl", "explain", "share/logo.png")
    assert code == 0, output
    assert "readable by: everyone" in output and "note: not indexed: no loader" in output


def test_explain_refuses_ambiguous_and_outside_paths(project: Path) -> None:
    code, output = lore("acl", "explain", "hr/pay.md")
    assert code == 1 and "exists in several sources (share, other); pick one with --source" in output
    code, output = lore("acl", "explain", str(project / "acl.yaml"))
    assert code == 1 and "is not a file inside a configured source" in output
    code, output = lore("acl", "explain", "hr", "--source", "share")
    assert code == 1 and "is not a file" in output
    code, output = lore("acl", "explain", "hr/pay.md", "--source", "nope")
    assert code == 1 and "No source named 'nope'" in output


def test_principals_of_a_person(project: Path) -> None:
    code, output = lore("acl", "principals", "Alice@Example.com")
    assert code == 0, output
    assert output.strip() == "everyone, group:board, group:hr, user:alice@example.com"
    assert lore("acl", "principals", "zed@example.com")[1].strip() == "everyone, user:zed@example.com"


def test_a_broken_acl_file_is_one_clear_line(project: Path) -> None:
    (project / "acl.yaml").write_text("rules: [{path: x, allow: [nobody]}]\n")
    code, output = lore("acl", "explain", "hr/pay.md", "--source", "share")
    assert code == 1
    expected = (
        f"Error: ACL file {project / 'acl.yaml'}: rules[1] \"x\": 'nobody' is not a principal; write everyone, "
        "user:<email> (user:cfo@example.com) or group:<name> (group:hr)."
    )
    assert output.strip().splitlines() == [expected]
