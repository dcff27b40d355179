"""Roles (#18): `lore worker` runs the scheduled jobs, exactly one worker active at a time
(a PostgreSQL advisory lock, a file lock on SQLite), a waiting one taking over when the active
one dies; `lore serve --no-jobs` schedules nothing. Real processes, real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bot.store.worker_lease import _LOCK_ROW
from tests.cli.test_serve_cli import accepts, free_port
from tests.support.postgres import fresh_database

STARTUP_SECONDS = 120.0
TAKEOVER_SECONDS = 5.0
TOOK = "took the worker lease"
ACTIVE = "this worker is active"
WAITING = "another worker is active"
# No sources and no refresh for a long while: the jobs are there, and cost nothing.
CONFIG = "sources = []\n\n[refresh]\ninterval_minutes = 100000\n"


class Lore:
    """One `lore` process, its output in a file (read while it runs)."""

    def __init__(self, home: Path, database_url: str | None, *args: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        config = home / "lore.toml"
        config.write_text(CONFIG)
        env = {**os.environ, "LORE_HOME": str(home), "LORE_CONFIG": str(config)}
        for variable in [name for name in env if name.startswith(("SLACK_", "MICROSOFT_", "LORE_DATABASE"))]:
            env.pop(variable)
        if database_url is not None:
            env["LORE_DATABASE_URL"] = database_url
        self.log = home / f"lore-{len(list(home.glob('lore-*.log')))}.log"
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from bot.cli.main import cli; cli()", *args],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, line: str, seconds: float = STARTUP_SECONDS) -> float:
        """Seconds until `line` appears in the output."""
        started = time.monotonic()
        while line not in self.output:
            assert self.process.poll() is None, f"lore exited {self.process.returncode}:\n{self.output}"
            assert time.monotonic() - started < seconds, f"no {line!r} after {seconds} s:\n{self.output}"
            time.sleep(0.05)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    with fresh_database(postgres_url) as url:
        yield url


def lease_holders(url: str) -> int:
    """How many sessions hold the worker lease, as PostgreSQL itself says."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(f"SELECT count(*) FROM pg_locks l WHERE {_LOCK_ROW}")).scalar_one())
    finally:
        engine.dispose()


def workers(tmp_path: Path, database_url: str | None, shared_home: bool) -> list[Lore]:
    homes = [tmp_path / "home"] * 2 if shared_home else [tmp_path / "machine-a", tmp_path / "machine-b"]
    return [Lore(home, database_url, "worker", "--check-seconds", "0.2") for home in homes]


def active_and_waiting(pair: list[Lore]) -> tuple[Lore, Lore]:
    """Both workers started: one active, the other waiting."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        states = [(TOOK in worker.output, WAITING in worker.output) for worker in pair]
        if sorted(states) == [(False, True), (True, False)]:
            break
        for worker in pair:
            assert worker.process.poll() is None, worker.output
        assert not all(active for active, _ in states), "two workers active at once"
        assert time.monotonic() < deadline, [worker.output for worker in pair]
        time.sleep(0.05)
    active = next(worker for worker in pair if TOOK in worker.output)
    active.wait_for(ACTIVE)  # its jobs are scheduled
    return active, next(worker for worker in pair if worker is not active)


@pytest.mark.postgres
def test_two_workers_on_one_postgresql_never_hold_the_lease_together_and_one_takes_over(
    tmp_path: Path, database: str
) -> None:
    pair = workers(tmp_path, database, shared_home=False)  # two machines: one database
    try:
        active, waiting = active_and_waiting(pair)
        for _ in range(20):  # a while of both running: one holder, the waiting one still waits
            assert lease_holders(database) == 1
            assert TOOK not in waiting.output
            time.sleep(0.1)

        active.process.send_signal(signal.SIGKILL)  # dies without releasing anything itself
        took = waiting.wait_for(TOOK, seconds=TAKEOVER_SECONDS)
        waiting.wait_for(ACTIVE)
        assert lease_holders(database) == 1
        assert waiting.process.poll() is None
        print(f"took over in {took:.2f} s")
    finally:
        for worker in pair:
            worker.stop()


@pytest.mark.postgres
def test_a_worker_stopped_with_sigterm_hands_over_at_once(tmp_path: Path, database: str) -> None:
    pair = workers(tmp_path, database, shared_home=False)
    try:
        active, waiting = active_and_waiting(pair)
        active.process.send_signal(signal.SIGTERM)
        assert active.process.wait(timeout=30) == 0, active.output
        waiting.wait_for(TOOK, seconds=TAKEOVER_SECONDS)
        waiting.wait_for(ACTIVE)
    finally:
        for worker in pair:
            worker.stop()


def test_two_workers_on_sqlite_share_one_file_lock(tmp_path: Path) -> None:
    pair = workers(tmp_path, None, shared_home=True)  # SQLite: one machine, one LORE_HOME
    try:
        active, waiting = active_and_waiting(pair)
        time.sleep(1.0)
        assert TOOK not in waiting.output
        active.process.send_signal(signal.SIGKILL)
        waiting.wait_for(TOOK, seconds=TAKEOVER_SECONDS)
        waiting.wait_for(ACTIVE)
    finally:
        for worker in pair:
            worker.stop()


@pytest.mark.postgres
@pytest.mark.parametrize("jobs", [True, False], ids=["serve", "serve --no-jobs"])
def test_serve_no_jobs_schedules_nothing(tmp_path: Path, database: str, jobs: bool) -> None:
    port = free_port()
    flags = [] if jobs else ["--no-jobs"]
    # -v: APScheduler says when it starts and what it adds.
    server = Lore(tmp_path / "home", database, "-v", "serve", "--port", str(port), *flags)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not accepts("127.0.0.1", port):
            assert server.process.poll() is None, server.output
            assert time.monotonic() < deadline, server.output
            time.sleep(0.1)
        time.sleep(0.5)
        output = server.output
        if jobs:  # the baseline: the single-process default schedules its jobs
            assert "Scheduler started" in output and 'Added job "Services.purge_expired"' in output
        else:
            assert "Scheduler started" not in output and "Added job" not in output
            assert "runs no scheduled jobs" in output
        assert lease_holders(database) == 0  # serving never takes the worker lease
    finally:
        server.stop()
