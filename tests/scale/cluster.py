"""Real Lore processes for the scale-out tests (#18): `lore serve --no-jobs` replicas and
`lore worker`s, each with its own LORE_HOME as on machines of their own, sharing one
PostgreSQL database and one Chroma server, with Slack's Web API on loopback
(`tests/support/slack_api.py`, run on an event loop of its own in a thread so that the tests
and the harness may block).

`Cluster` writes each process's lore.toml (`write_config`), starts processes, waits until they
serve, and stops them all at the end: SIGTERM, then SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bot.platforms.slack.rendering import ACTION_HELPFUL
from knowledge.lock import REFRESH_LOCK, advisory_key
from tests.support.chroma_server import ChromaServer
from tests.support.slack_api import BOT_TOKEN, SIGNING_SECRET, Message, MockSlackApi, SlackSender, message

STARTUP_SECONDS = 120.0
STOP_SECONDS = 15.0
# The worker's one line per finished refresh (knowledge/sync.py RefreshReport.summary), after
# the log format's time stamp (bot/cli/main.py).
_REFRESHED = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO knowledge\.sync: refresh: added=(?P<added>\d+) "
    r"updated=(?P<updated>\d+) deleted=(?P<deleted>\d+) .* in (?P<seconds>[\d.]+)s$",
    re.MULTILINE,
)
# APScheduler's line when a job starts (a worker runs with -v for it).
_STARTED = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO apscheduler\.executors\.default: "
    r'Running job "refresh the knowledge index',
    re.MULTILINE,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Shared:
    """What every process of one cluster shares: the database, the vectors, the documents
    (a folder every machine mounts), the ACL file, Slack."""

    database_url: str
    chroma: ChromaServer
    collection: str
    docs: Path
    acl_file: Path
    slack_api_url: str
    refresh_minutes: float = 0.05


def write_config(home: Path, shared: Shared) -> Path:
    """lore.toml for one process with its own LORE_HOME: answers are the retrieved evidence
    (`agent.generate = "never"`: fast, and no model weights are loaded), the worker refreshes
    every `refresh_minutes`, the rate limit is out of the way of tests that ask a lot."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "lore.toml"
    config.write_text(
        f"""database_url = {json.dumps(shared.database_url)}
acl_file = {json.dumps(str(shared.acl_file))}

[[sources]]
name = "handbook"
path = {json.dumps(str(shared.docs))}
permissions = "acl"

[index]
chroma_host = {json.dumps(shared.chroma.host)}
chroma_port = {shared.chroma.port}
collection = {json.dumps(shared.collection)}

[refresh]
interval_minutes = {shared.refresh_minutes}

[agent]
generate = "never"

[console]
enabled = false

[slack]
rate_limit_per_minute = 10000
""",
        encoding="utf-8",
    )
    return config


class LoreProcess:
    """One `lore` process on its own LORE_HOME, its output in a file read while it runs."""

    def __init__(self, name: str, home: Path, shared: Shared, *args: str) -> None:
        self.name = name
        self.home = home
        config = write_config(home, shared)
        env = {key: value for key, value in os.environ.items() if not key.startswith(("LORE_", "SLACK_", "MICROSOFT_"))}
        env.update(
            {
                "LORE_HOME": str(home),
                "LORE_CONFIG": str(config),
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": shared.slack_api_url,
            }
        )
        self.log = home / f"{name}.log"
        self.killed_at: float | None = None  # when `kill` killed it (seconds since the epoch)
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from bot.cli.main import cli; cli()", *args],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def wait_for(self, condition: Callable[[str], Any], what: str, seconds: float = STARTUP_SECONDS) -> Any:
        """Poll `condition(output)` until it is truthy; its value. Fails when the process exits."""
        deadline = time.monotonic() + seconds
        while True:
            value = condition(self.output)
            if value:
                return value
            assert self.running, f"{self.name} exited {self.process.returncode} before {what}:\n{self.output[-4000:]}"
            assert time.monotonic() < deadline, f"{self.name}: no {what} after {seconds} s:\n{self.output[-4000:]}"
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, releasing nothing itself."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)
            self.killed_at = time.time()
        self.process.wait(timeout=STOP_SECONDS)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited after STOP_SECONDS."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()


class Worker(LoreProcess):
    """`lore -v worker`: -v for APScheduler's line when a refresh starts."""

    def __init__(self, name: str, home: Path, shared: Shared) -> None:
        super().__init__(name, home, shared, "-v", "worker", "--check-seconds", "0.2")

    def refreshes(self) -> list[Refresh]:
        """The refreshes this worker finished, oldest first."""
        return [Refresh.of(self.name, match) for match in _REFRESHED.finditer(self.output)]

    def started(self) -> list[float]:
        """When each refresh it ran started (finished or not), oldest first (seconds since
        the epoch)."""
        return [_time(match["at"]).timestamp() for match in _STARTED.finditer(self.output)]

    def refreshed(self, condition: Callable[[Refresh], bool], after: int = 0, seconds: float = 60.0) -> Refresh:
        """Wait for a refresh beyond the first `after` that satisfies `condition`."""
        return self.wait_for(
            lambda _output: next((r for r in self.refreshes()[after:] if condition(r)), None),
            "such a refresh",
            seconds,
        )


@dataclass(frozen=True)
class Refresh:
    """One finished refresh, from the worker's log line."""

    worker: str
    start: float  # seconds since the epoch
    end: float
    added: int
    updated: int
    deleted: int

    @classmethod
    def of(cls, worker: str, match: re.Match[str]) -> Refresh:
        end = _time(match["at"]).timestamp()
        return cls(
            worker,
            end - float(match["seconds"]),
            end,
            int(match["added"]),
            int(match["updated"]),
            int(match["deleted"]),
        )

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deleted)


def _time(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")


class Replica(LoreProcess):
    """`lore serve --no-jobs` on a port of its own, with a Slack sender for its endpoint."""

    def __init__(self, name: str, home: Path, shared: Shared, port: int, slack: SlackThread) -> None:
        super().__init__(name, home, shared, "serve", "--no-jobs", "--port", str(port))
        self.port = port
        self.sender = SlackSender(f"http://127.0.0.1:{port}/slack/events", slack.api)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self) -> dict[str, Any]:
        """Wait until /healthz answers 200; its report (loopback callers get all of it)."""

        def healthy(_output: str) -> dict[str, Any] | None:
            try:
                reply = httpx.get(f"{self.url}/healthz", timeout=2.0)
            except httpx.HTTPError:
                return None
            return reply.json() if reply.status_code == 200 else None

        return self.wait_for(healthy, "/healthz answering 200")


class SlackThread:
    """The loopback Slack Web API on an event loop of its own thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="slack-api", daemon=True)
        self._thread.start()
        self.api = self.run(MockSlackApi().start())

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        """Run `coroutine` on the Slack loop; its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def read(self, look: Callable[[MockSlackApi], T]) -> T:
        """`look(api)` on the loop's thread (the API's records change only there)."""

        async def looked() -> T:
            return look(self.api)

        return self.run(looked())

    def close(self, senders: list[SlackSender]) -> None:
        for sender in senders:
            self.run(sender.close())
        self.run(self.api.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@dataclass
class Cluster:
    """The processes of one test module, stopped together at the end."""

    root: Path
    shared: Shared
    slack: SlackThread
    processes: list[LoreProcess] = field(default_factory=list)

    def replica(self, name: str, port: int) -> Replica:
        replica = Replica(name, self.root / name, self.shared, port, self.slack)
        self.processes.append(replica)
        return replica

    def worker(self, name: str) -> Worker:
        worker = Worker(name, self.root / name, self.shared)
        self.processes.append(worker)
        return worker

    def workers(self) -> list[Worker]:
        return [process for process in self.processes if isinstance(process, Worker)]

    def ask(self, replica: Replica, text: str, user: str, *, seconds: float = 60.0) -> Message:
        """`user` asks `text` in a direct message to the bot, delivered to `replica`: the
        final answer it posts (a direct message: the asker's own documents count)."""
        channel = "D" + uuid.uuid4().hex[:10].upper()
        # An event id of its own: the senders of two replicas would both count from Ev00000001,
        # and the replicas' shared de-duplication would drop the second as a retry.
        event_id = "Ev" + uuid.uuid4().hex[:12].upper()
        reply = self.slack.run(replica.sender.event(message(text, user, channel, "im"), event_id=event_id))
        assert reply.status == 200, reply
        return self.answer_in(channel, replica, seconds)

    def answer_in(self, channel: str, replica: Replica, seconds: float = 60.0) -> Message:
        """The first final answer posted in `channel`, waiting up to `seconds` for it."""
        deadline = time.monotonic() + seconds
        while True:
            final = self.slack.read(lambda api: finals(api, channel))
            if final:
                return final[0]
            assert replica.running, replica.output[-4000:]
            assert time.monotonic() < deadline, (
                f"no answer from {replica.name} after {seconds} s:\n{replica.output[-4000:]}"
            )
            time.sleep(0.05)

    def stop(self) -> None:
        for process in self.processes:
            if process.running:
                process.process.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.stop()
        self.slack.close([p.sender for p in self.processes if isinstance(p, Replica)])


def refresh_lock_holders(database_url: str) -> list[str]:
    """Who holds the shared refresh lock (PostgreSQL's advisory lock) now, as their sessions
    name themselves ("lore refresh: <pid> on <host>")."""
    key = advisory_key(REFRESH_LOCK)
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            names = connection.execute(
                text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                    "AND l.classid::bigint = :high AND l.objid::bigint = :low"
                ),
                {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
            ).scalars()
            return [str(name) for name in names]
    finally:
        engine.dispose()


def finals(api: MockSlackApi, channel: str) -> list[Message]:
    """The answers in `channel` in their final form (with their feedback buttons: streaming
    updates come first)."""
    return [
        m
        for m in api.messages.values()
        if m.channel == channel
        and m.ephemeral_for is None
        and any(e.get("action_id") == ACTION_HELPFUL for block in m.blocks for e in block.get("elements", []))
    ]


def text_of(message: Message) -> str:
    """Everything a person reads in `message`: its text and its blocks' texts."""
    parts = [message.text]
    for block in message.blocks:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"].get("text", ""))
        parts += [e.get("text", "") for e in block.get("elements", []) if isinstance(e.get("text"), str)]
    return "\n".join(parts)
