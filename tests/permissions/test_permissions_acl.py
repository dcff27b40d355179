"""The ACL file: parsing, validation errors, first-match-wins, per-source sections, location."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.errors import ConfigurationError
from knowledge.permissions.acl import (
    check_acl_location,
    check_source_names,
    load_acl_file,
    normalise_pattern,
    parse_acl,
)
from knowledge.permissions.principals import may_read, parse_principal

ISSUE_EXAMPLE = """
# ACL file
default: everyone            # for paths no rule matches
rules:                       # first match wins; paths relative to the source root
  - path: "hr/**"
    allow: ["group:hr", "user:cfo@example.com"]
  - path: "board/**"
    allow: ["group:board"]
"""


def principals(acl_text: str, source: str, path: str) -> frozenset[str] | None:
    grant = parse_acl(acl_text).decide(source, path).grant
    return None if grant is None else grant.principals


def test_the_format_from_the_issue() -> None:
    assert principals(ISSUE_EXAMPLE, "share", "hr/cases/2024-17.docx") == {"group:hr", "user:cfo@example.com"}
    assert principals(ISSUE_EXAMPLE, "share", "board/minutes.pdf") == {"group:board"}
    assert principals(ISSUE_EXAMPLE, "share", "handbook/vacation.md") == {"everyone"}
    # Rules are anchored at the source root: a folder of the same name deeper down is not hr/.
    assert principals(ISSUE_EXAMPLE, "share", "teams/hr/notes.md") == {"everyone"}


def test_first_matching_rule_wins() -> None:
    text = """
rules:
  - {path: "hr/public/**", allow: everyone}
  - {path: "hr/**", allow: [group:hr]}
  - {path: "**/*.md", allow: [group:never]}
"""
    assert principals(text, "s", "hr/public/holidays.md") == {"everyone"}
    assert principals(text, "s", "hr/salaries.md") == {"group:hr"}
    assert principals(text, "s", "eng/setup.md") == {"group:never"}
    assert principals(text, "s", "eng/setup.txt") is None  # nothing matched, no default: file mode decides


def test_source_sections_come_before_global_rules_and_defaults() -> None:
    text = """
default: everyone
rules:
  - {path: "**/salaries*", allow: [group:finance]}
sources:
  hr-share:
    default: [group:hr]
    rules:
      - {path: "public/**", allow: everyone}
      - {path: "people/**", allow: filesystem}
"""
    assert principals(text, "hr-share", "public/salaries.md") == {"everyone"}  # own rules first
    assert principals(text, "hr-share", "cases/salaries.xlsx") == {"group:finance"}  # then global rules
    assert principals(text, "hr-share", "cases/x.md") == {"group:hr"}  # then own default
    assert principals(text, "other", "cases/x.md") == {"everyone"}  # then global default
    decision = parse_acl(text).decide("hr-share", "people/alice.md")
    assert decision.grant is not None and decision.grant.principals is None  # `filesystem`
    assert decision.grant.where == 'sources.hr-share.rules[2] "people/**"'


def test_principals_are_normalised_and_a_single_string_is_accepted() -> None:
    text = 'rules: [{path: "x/**", allow: "User:CFO@Example.COM"}, {path: "y/", allow: [" Group:HR "]}]'
    assert principals(text, "s", "x/a.md") == {"user:cfo@example.com"}
    assert principals(text, "s", "Y/b.md") == {"group:hr"}  # globs ignore case, like the sources'


def test_empty_allow_shares_with_nobody() -> None:
    shared = principals('rules: [{path: "secret/**", allow: []}]', "s", "secret/a.md")
    assert shared == frozenset()
    assert not may_read(shared, {"everyone", "user:ceo@example.com", "group:board"})


def test_empty_file_has_no_rules() -> None:
    assert principals("", "s", "a.md") is None
    assert principals("# only a comment\n", "s", "a.md") is None


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [("hr/", "hr/**"), ("/hr/**", "hr/**"), ("./board/*.pdf", "board/*.pdf"), (" *.xlsx ", "*.xlsx")],
)
def test_patterns_are_relative_to_the_root(pattern: str, expected: str) -> None:
    assert normalise_pattern(pattern) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [{path: 'hr/**', allow: [hr]}]", "'hr' is not a principal"),
        ("rules: [{path: 'hr/**', allow: ['user:alice']}]", "not an e-mail address"),
        ("rules: [{path: 'hr/**', allow: ['group:']}]", "group name is empty"),
        ("rules: [{path: 'hr/**'}]", "rules[1] lacks allow"),
        ("rules: [{path: '', allow: everyone}]", "rules[1].path must be a non-empty glob"),
        ("rules: [{path: 'a', allow: everyone, deny: x}]", "unknown key(s) deny in rules[1]"),
        ("rule: []", "unknown key(s) rule in the top level"),
        ("rules: {path: a}", "rules must be a list"),
        ("default: {a: b}", "default must be a principal or a list"),
        ("sources: {s: {rules: [], extra: 1}}", "unknown key(s) extra in sources.s"),
        ("- just\n- a list", "the top level must be a mapping"),
        ("rules: [\n", "is not valid YAML"),
        ("a: 1\n---\nb: 2\n", "is not valid YAML"),
    ],
)
def test_bad_files_are_refused_with_what_to_fix(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match="ACL file <acl>") as raised:
        parse_acl(text)
    assert message in str(raised.value)


def test_parse_principal_accepts_exactly_three_forms() -> None:
    assert parse_principal(" Everyone ") == "everyone"
    assert parse_principal("group:everyone") == "everyone"
    assert parse_principal("user:A@B.example") == "user:a@b.example"
    for bad in ("*", "hr", "role:admin", "user:", 42):
        with pytest.raises(ConfigurationError):
            parse_principal(bad)  # type: ignore[arg-type]  # 42 is not a string, on purpose


def test_acl_file_inside_an_indexed_folder_is_refused(tmp_path: Path) -> None:
    share = tmp_path / "share"
    (share / "admin").mkdir(parents=True)
    with pytest.raises(ConfigurationError, match="lies inside the indexed folder"):
        check_acl_location(share / "admin" / "acl.yaml", [tmp_path / "elsewhere", share])
    # Through a symlink it is still inside.
    (tmp_path / "link").symlink_to(share)
    with pytest.raises(ConfigurationError, match="Move it outside every source folder"):
        check_acl_location(tmp_path / "link" / "acl.yaml", [share])
    check_acl_location(tmp_path / "acl.yaml", [share])  # beside the share is fine
    check_acl_location(tmp_path / "share-acl.yaml", [share])  # a name prefix is not a parent


def test_unknown_source_sections_are_refused() -> None:
    acl = parse_acl("sources: {hr-shares: {default: [group:hr]}}")
    with pytest.raises(ConfigurationError, match="unknown source\\(s\\) hr-shares; configured sources: hr-share"):
        check_source_names(acl, ["hr-share"])


def test_load_acl_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist.*LORE_ACL_FILE"):
        load_acl_file(tmp_path / "missing.yaml")
    bad = tmp_path / "acl.yaml"
    bad.write_bytes(b"\xff\xfe rules")
    with pytest.raises(ConfigurationError, match=f"Cannot read ACL file {bad}"):
        load_acl_file(bad)
    bad.write_text("rules: [{path: x, allow: [nobody]}]")
    with pytest.raises(ConfigurationError, match=f"ACL file {bad}: rules\\[1\\] \"x\": 'nobody' is not a principal"):
        load_acl_file(bad)
