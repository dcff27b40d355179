"""Two processes starting at once on a fresh database (two `lore serve` replicas, or `lore serve`
beside a CLI command) must both start: creating tables and adding columns is serialized."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.postgres import fresh_database

PROCESSES = 6
ROUNDS = 3
# Each child imports everything first, says so, waits for the go file, then opens the database
# (which creates the schema) and uses every store once.
CHILD = """
import sys, time
from pathlib import Path
from bot.store.database import Database
from bot.store.answers import AnswerLog
from bot.store.feedback import Feedback, FeedbackStore
url, go = sys.argv[1], Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
database = Database(url)
AnswerLog(database).recent(1)
FeedbackStore(database).record(Feedback(None, "cli", "U1", None, text="started"))
database.close()
print("started", flush=True)
"""


def start_at_once(url: str, folder: Path) -> list[tuple[int, str]]:
    """Start PROCESSES children on `url` released together; (exit code, output) of each."""
    go = folder / "go"
    go.unlink(missing_ok=True)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    go.touch()
    results = []
    for child in children:
        output, _ = child.communicate(timeout=120)
        results.append((child.returncode, output))
    return results


@pytest.mark.postgres
def test_processes_starting_at_once_on_a_fresh_postgresql_database_all_start(postgres_url: str, tmp_path: Path) -> None:
    for _ in range(ROUNDS):
        with fresh_database(postgres_url) as url:
            results = start_at_once(url, tmp_path)
        failed = [output for code, output in results if code != 0]
        assert not failed, failed[0]
        assert all("started" in output for _, output in results)


def test_processes_starting_at_once_on_a_fresh_sqlite_database_all_start(tmp_path: Path) -> None:
    for round_number in range(ROUNDS):
        url = f"sqlite:///{tmp_path / f'round-{round_number}' / 'lore.db'}"
        results = start_at_once(url, tmp_path)
        failed = [output for code, output in results if code != 0]
        assert not failed, failed[0]
