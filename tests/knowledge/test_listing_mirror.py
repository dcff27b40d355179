"""The SQLite copy of a cloud listing: paths from parent ids (so a folder rename is one row),
inherited principals, changes and cursors committed together, whole-drive replacement after
a cursor expired, and names from the drive that cannot climb out of their folder."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from knowledge.sources.mirror import ListingMirror, MirrorItem

HR = frozenset({"group:hr"})
ALICE = frozenset({"user:alice@example.com"})


def folder(
    item_id: str, parent: str | None, name: str, own: frozenset[str] = frozenset(), inherits: bool = True
) -> MirrorItem:
    return MirrorItem(item_id, "d1", parent, name, True, own_principals=own, inherits=inherits)


def file(item_id: str, parent: str, name: str, own: frozenset[str] | None = frozenset()) -> MirrorItem:
    return MirrorItem(item_id, "d1", parent, name, False, size=10, modified=1.0, own_principals=own)


@pytest.fixture
def mirror(tmp_path: Path) -> ListingMirror:
    listing = ListingMirror(tmp_path / "sources" / "drive.sqlite3")
    listing.replace_drive(
        "d1",
        [
            folder("root", None, "Team Files", frozenset({"group:staff"})),
            folder("hr", "root", "HR", HR, inherits=False),
            file("pay", "hr", "pay.docx"),
            file("leave", "root", "leave.md", ALICE),
        ],
        cursor="c1",
    )
    return listing


def paths(mirror: ListingMirror) -> dict[str, frozenset[str] | None]:
    return {f.path: f.principals for f in mirror.listing().files}


def test_paths_come_from_parents_and_principals_from_the_inheriting_chain(mirror: ListingMirror) -> None:
    assert paths(mirror) == {
        "Team Files/HR/pay.docx": HR,  # the folder stops inheriting the root's staff group
        "Team Files/leave.md": frozenset({"group:staff"}) | ALICE,
    }
    assert mirror.cursor("d1") == "c1"


def test_renaming_a_folder_moves_every_file_below_it_with_one_change(mirror: ListingMirror) -> None:
    mirror.apply("d1", [folder("hr", "root", "People", HR, inherits=False)], cursor="c2")

    assert "Team Files/People/pay.docx" in paths(mirror)
    assert mirror.cursor("d1") == "c2"


def test_removing_a_folder_removes_what_lies_below_it(mirror: ListingMirror) -> None:
    mirror.apply("d1", removals=["hr"])

    assert list(paths(mirror)) == ["Team Files/leave.md"]
    assert mirror.item("pay") is None


def test_an_item_before_its_parent_is_listed_once_the_parent_arrives(mirror: ListingMirror) -> None:
    mirror.apply("d1", [file("plan", "eng", "plan.md")])
    assert mirror.listing().detached == ["plan"]

    mirror.apply("d1", [folder("eng", "root", "Engineering")])

    assert "Team Files/Engineering/plan.md" in paths(mirror)
    assert mirror.listing().detached == []


def test_the_same_item_twice_keeps_the_last_version(mirror: ListingMirror) -> None:
    mirror.apply("d1", [file("leave", "root", "leave.md", ALICE), file("leave", "root", "leave-v2.md", ALICE)])

    assert "Team Files/leave-v2.md" in paths(mirror) and "Team Files/leave.md" not in paths(mirror)


def test_unreadable_own_permissions_mean_nobody_whatever_the_parents_grant(mirror: ListingMirror) -> None:
    mirror.apply("d1", [file("leave", "root", "leave.md", None)])

    assert paths(mirror)["Team Files/leave.md"] is None


def test_a_failed_page_changes_nothing_and_keeps_the_cursor(mirror: ListingMirror) -> None:
    broken = file("new", "root", "new.md")
    with pytest.raises(sqlite3.Error):
        mirror.apply("d1", [broken, MirrorItem("x", "d1", "root", None, False)], cursor="c9")  # type: ignore[arg-type]  # a row SQLite refuses

    assert "Team Files/new.md" not in paths(mirror)
    assert mirror.cursor("d1") == "c1"


def test_a_fresh_enumeration_replaces_the_drive(mirror: ListingMirror) -> None:
    mirror.replace_drive("d1", [folder("root", None, "Team Files"), file("only", "root", "only.md")], cursor="c5")

    assert list(paths(mirror)) == ["Team Files/only.md"]
    assert mirror.cursor("d1") == "c5"


def test_names_from_the_drive_cannot_climb_or_make_folders(mirror: ListingMirror) -> None:
    mirror.apply("d1", [file("a", "root", "../../etc/passwd.md"), file("b", "root", ".."), file("c", "hr", "x/y.md")])

    listed = paths(mirror)
    assert "Team Files/..∕..∕etc∕passwd.md" in listed
    assert "Team Files/_" in listed and "Team Files/HR/x∕y.md" in listed
    assert all(".." not in path.split("/") for path in listed)


def test_two_files_at_one_path_get_distinct_paths(mirror: ListingMirror) -> None:
    mirror.apply("d1", [file("zz-second", "root", "Leave.md")])

    listed = paths(mirror)
    assert "Team Files/leave.md" in listed and "Team Files/Leave~zz-secon.md" in listed


def test_a_loop_in_the_parents_is_detached_not_followed(mirror: ListingMirror) -> None:
    mirror.apply("d1", [folder("a", "b", "A"), folder("b", "a", "B"), file("f", "a", "f.md")])

    assert mirror.listing().detached == ["f"]


def test_sync_state_and_forgotten_drives(mirror: ListingMirror) -> None:
    when = datetime(2026, 12, 1, tzinfo=UTC)
    mirror.mark_synced(when)
    mirror.apply("d2", [MirrorItem("r2", "d2", None, "Other", True)], cursor="k", now=when)

    state = mirror.sync_state()
    assert state.last_sync_at == when and state.cursor_saved_at == when
    mirror.keep_drives(["d2"])
    assert paths(mirror) == {} and mirror.cursor("d1") is None and mirror.item("r2") is not None
