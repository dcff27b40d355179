"""What the Google Drive source costs against a shared drive of N files on the local Drive v3
server (tests/cloud/drive_server.py), through the real google-api-python-client.

    python benchmarks/gdrive_sync.py              # 1,000 files
    python benchmarks/gdrive_sync.py --files 300 --json

Rows: the first sync (full listing, token taken first, every file downloaded, parsed and
embedded into a real Chroma index), a poll with nothing changed (the changes feed), a poll
after 10 files changed, and the baseline in the same run: a naive poll that lists the whole
drive again (files.list pages plus permissions.list for each file with sharing of its own),
as a source without the changes feed must. One file in ten has sharing of its own.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge.config import IndexSettings, RetrievalSettings  # noqa: E402
from knowledge.knowledge_base import KnowledgeBase  # noqa: E402
from knowledge.sources.gdrive.client import DriveClient  # noqa: E402
from knowledge.sources.gdrive.listing import Scope, Updater  # noqa: E402
from knowledge.sources.mirror import ListingMirror  # noqa: E402
from tests.cloud.gdrive_harness import ALICE, BOB, DRIVE, Drive, drive_server, person  # noqa: E402


def build_drive(drive: Drive, files: int) -> list[str]:
    state = drive.state
    state.add_drive(DRIVE, "HR", [person(ALICE)])
    folders = [state.folder(f"team-{number:02d}", DRIVE).id for number in range(max(1, files // 50))]
    ids = []
    for number in range(files):
        text = f"# Note {number}\n\nTeam note {number}: the rota word is word{number:05d}.\n".encode()
        shared = [person(BOB)] if number % 10 == 0 else None
        ids.append(state.add(f"note-{number:05d}.md", folders[number % len(folders)], text, "text/markdown", shared).id)
    return ids


def measure(drive: Drive, label: str, action: Callable[[], None]) -> dict[str, object]:
    drive.state.take_requests()
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    requests = [r for r in drive.state.take_requests() if not r.startswith("POST /token")]
    return {"run": label, "requests": len(requests), "seconds": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, drive_server(Path(folder)) as drive:
        ids = build_drive(drive, arguments.files)
        kb = KnowledgeBase(
            Path(folder) / "home",
            [drive.settings()],
            IndexSettings(),
            RetrievalSettings(),
            permissions=lambda file: file.principals or frozenset(),
        )

        def sync() -> None:
            source = drive.source()
            try:
                report = kb.refresh_sources([source])
                assert not report.failed, report.failed
            finally:
                source.close()

        def naive() -> None:
            client = DriveClient(drive.settings())
            mirror = ListingMirror(Path(folder) / "naive.sqlite3")
            try:
                Updater(drive.settings(), client, mirror).relist(Scope(DRIVE, DRIVE))
            finally:
                client.close()
                mirror.close()

        def change_ten() -> None:
            for item_id in ids[:10]:
                drive.state.edit(item_id, drive.state.items[item_id].content + b"\nEdited.\n")
            sync()

        rows = [
            measure(drive, f"first sync ({arguments.files} files)", sync),
            measure(drive, "no-change poll (changes feed)", sync),
            measure(drive, "no-change poll (naive full listing)", naive),
            measure(drive, "poll after 10 files changed", change_ten),
        ]
        kb.close()
    if arguments.json:
        print(json.dumps(rows))
        return
    naive = next(row for row in rows if "naive" in str(row["run"]))
    print(f"{'run':<40}{'requests':>10}{'seconds':>10}   naive listing ÷ this (requests, seconds)")
    for row in rows:
        requests, seconds = float(row["requests"]), float(row["seconds"])
        ratio = f"{float(naive['requests']) / max(requests, 1):>8.1f}× {float(naive['seconds']) / max(seconds, 1e-3):>7.1f}×"
        print(f"{row['run']:<40}{row['requests']:>10}{row['seconds']:>10}   {ratio}")


if __name__ == "__main__":
    main()
