"""Two `lore serve --no-jobs` replicas and one `lore worker` (#18), each on a LORE_HOME of its
own as on machines of their own, sharing a real PostgreSQL database (answer log, delivery keys,
document catalog, permissions, keyword index, refresh lock, worker lease) and a real
`chroma run` server (vectors); Slack's Web API on loopback. Answers are the retrieved evidence
(`agent.generate = "never"`), so every answer names its sources without model weights.

The processes start once for the module; the tests run in order, each leaving the cluster as
the next expects (the last kills the first worker)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from bot.store.tables import answers_table
from knowledge.lock import AdvisoryLock
from tests.cli.test_serve_cli import free_port
from tests.scale.cluster import (
    Cluster,
    Replica,
    Shared,
    SlackThread,
    Worker,
    finals,
    refresh_lock_holders,
    text_of,
)
from tests.support.chroma_server import ChromaServer
from tests.support.postgres import fresh_database
from tests.support.slack_api import mention

pytestmark = pytest.mark.postgres

DOCS = {
    "benefits/leave.md": "# Parental leave\n\nParental leave lasts sixteen weeks at full pay.\n",
    "it/laptops.md": "# Laptop replacement\n\nLaptops are replaced every three years by the IT desk.\n",
    "projects/orion.md": "# Project Orion\n\nProject Orion moves billing to the new ledger platform in March.\n",
}
ALICE, BOB = "UALICE", "UBOB"  # the loopback Slack gives them ualice@example.com, ubob@example.com
ORION_READERS = ["user:ualice@example.com", "user:ubob@example.com"]
# The refresh (d) interrupts: enough files that embedding them takes a few seconds.
BULK = 300
# The worker's log lines (bot/cli/worker_command.py).
TOOK = "took the worker lease"
WAITING = "another worker is active"
SKIPPED = "refresh skipped: another refresh is running"


def acl(orion_readers: list[str]) -> str:
    return yaml.safe_dump({"default": "everyone", "rules": [{"path": "projects/orion.md", "allow": orion_readers}]})


def fruit(number: int) -> str:
    return f"The kelvra{number} orchard grows {('pears', 'plums', 'quinces', 'apricots')[number % 4]} by the river."


@pytest.fixture(scope="module")
def cluster(
    postgres_url: str, chroma_server: ChromaServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    docs = root / "share"  # one shared drive every machine mounts
    for relative, text in DOCS.items():
        (docs / relative).parent.mkdir(parents=True, exist_ok=True)
        (docs / relative).write_text(text, encoding="utf-8")
    acl_file = root / "acl.yaml"
    acl_file.write_text(acl(ORION_READERS), encoding="utf-8")
    slack = SlackThread()
    with fresh_database(postgres_url) as url:
        shared = Shared(url, chroma_server, f"scale-{uuid.uuid4().hex[:12]}", docs, acl_file, slack.api.base_url)
        cluster = Cluster(root, shared, slack)
        try:
            replicas = [cluster.replica(name, free_port()) for name in ("replica-1", "replica-2")]
            worker = cluster.worker("worker-1")
            worker.refreshed(lambda refresh: refresh.added == len(DOCS), seconds=180)
            for replica in replicas:
                replica.wait_healthy()
            yield cluster
        finally:
            cluster.stop()


def replicas(cluster: Cluster) -> list[Replica]:
    return [process for process in cluster.processes if isinstance(process, Replica)]


def cites(answer_text: str, title: str) -> bool:
    """Whether the answer's sources footer names the document titled `title`."""
    return any(line.startswith("[") and title in line for line in answer_text.splitlines())


def test_a_slack_retry_delivered_to_the_other_replica_is_answered_once(cluster: Cluster) -> None:
    first, second = replicas(cluster)
    channel, user = "C" + uuid.uuid4().hex[:10].upper(), "U" + uuid.uuid4().hex[:10].upper()
    event = mention("How long is parental leave?", user, channel)

    async def deliver_twice() -> list[int]:  # Slack's delivery and its retry, at once
        replies = await asyncio.gather(
            first.sender.event(event, event_id="EvSCALE1"), second.sender.event(event, event_id="EvSCALE1", retry=1)
        )
        return [reply.status for reply in replies]

    assert cluster.slack.run(deliver_twice()) == [200, 200]
    answer = cluster.answer_in(channel, first)
    assert cites(text_of(answer), "Parental leave")
    time.sleep(2.0)  # time for a second answer, were one coming
    posted = cluster.slack.read(
        lambda api: [call for call in api.calls_to("chat.postMessage") if call.args.get("channel") == channel]
    )
    assert len(posted) == 1, posted
    assert len(cluster.slack.read(lambda api: finals(api, channel))) == 1
    engine = create_engine(cluster.shared.database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            logged = connection.execute(select(answers_table.c.id).where(answers_table.c.user_id == user)).all()
    finally:
        engine.dispose()
    assert len(logged) == 1


def worker(cluster: Cluster) -> Worker:
    return next(w for w in cluster.workers() if w.running)


def test_a_refresh_by_the_worker_is_visible_to_both_replicas_at_once(cluster: Cluster) -> None:
    active = worker(cluster)
    before = len(active.refreshes())
    zephyr = cluster.shared.docs / "benefits/zephyr.md"
    zephyr.write_text("# Zephyr stipend\n\nThe Zephyr stipend pays 400 euros a year for home office chairs.\n")
    active.refreshed(lambda refresh: refresh.added == 1, after=before)
    for replica in replicas(cluster):  # asked right after the refresh: no waiting, no retries
        answer = text_of(cluster.ask(replica, "How much does the Zephyr stipend pay?", BOB))
        assert cites(answer, "Zephyr stipend") and "400 euros" in answer, (replica.name, answer)


def test_a_permission_change_applies_on_both_replicas(cluster: Cluster) -> None:
    question = "When does Project Orion move billing to the new ledger platform?"
    for replica in replicas(cluster):
        assert cites(text_of(cluster.ask(replica, question, ALICE)), "Project Orion"), replica.name

    active = worker(cluster)
    before = len(active.refreshes())
    cluster.shared.acl_file.write_text(acl(["user:ubob@example.com"]), encoding="utf-8")  # Alice loses access
    active.refreshed(lambda refresh: refresh.changed, after=before)
    for replica in replicas(cluster):
        assert not cites(text_of(cluster.ask(replica, question, ALICE)), "Project Orion"), replica.name
        assert cites(text_of(cluster.ask(replica, question, BOB)), "Project Orion"), replica.name


def test_a_worker_killed_mid_refresh_leaves_the_replicas_answering_and_a_second_one_finishes(cluster: Cluster) -> None:
    first = worker(cluster)
    second = cluster.worker("worker-2")  # another machine's worker: it waits for the lease
    second.wait_for(lambda output: WAITING in output, "waiting for the lease")
    for number in range(BULK):
        path = cluster.shared.docs / f"orchards/kelvra{number}.md"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"# Orchard kelvra{number}\n\n{fruit(number)}\n", encoding="utf-8")
    finished, started = len(first.refreshes()), len(first.started())

    # Mid-refresh: a refresh that started after the files were written, has not finished, and
    # holds the shared refresh lock.
    first.wait_for(lambda _output: len(first.started()) > started, "a refresh starting", 30)
    time.sleep(1.0)
    holders = refresh_lock_holders(cluster.shared.database_url)
    assert len(first.refreshes()) == finished, "the refresh ended before it could be interrupted: add files"
    assert [name.split()[2] for name in holders] == [str(first.process.pid)], holders
    first.kill()
    assert len(first.refreshes()) == finished

    question = "What does the kelvra137 orchard grow?"
    for replica in replicas(cluster):  # answering, from the index as it was
        assert not cites(text_of(cluster.ask(replica, question, BOB)), "Orchard kelvra137"), replica.name
        zephyr = text_of(cluster.ask(replica, "How much does the Zephyr stipend pay?", BOB))
        assert cites(zephyr, "Zephyr stipend"), replica.name

    second.wait_for(lambda output: TOOK in output, "taking over", 30)
    second.refreshed(lambda refresh: refresh.added == BULK, seconds=120)
    for replica in replicas(cluster):
        answer = text_of(cluster.ask(replica, question, BOB))
        assert cites(answer, "Orchard kelvra137") and "plums" in answer, (replica.name, answer)


def test_two_workers_never_refresh_at_the_same_time(cluster: Cluster) -> None:
    active = worker(cluster)
    third = cluster.worker("worker-3")
    third.wait_for(lambda output: WAITING in output, "waiting for the lease")
    before = len(active.refreshes())
    active.refreshed(lambda _refresh: True, after=before + 1)  # two more refreshes while both run
    assert TOOK not in third.output and not third.started()

    # A refresh from anywhere else (here: its lock, taken on the shared database) makes the
    # worker's next one wait for the next interval, and then it runs.
    skipped = active.output.count(SKIPPED)
    with AdvisoryLock(cluster.shared.database_url):
        active.wait_for(lambda output: output.count(SKIPPED) > skipped, "a refresh skipped", 30)
    active.refreshed(lambda _refresh: True, after=len(active.refreshes()))

    # Every refresh any worker ran, from its start to its end (the killed one: to its death).
    runs = [(r.start, r.end, r.worker) for w in cluster.workers() for r in w.refreshes()]
    runs += [(w.started()[-1], w.killed_at, w.name) for w in cluster.workers() if w.killed_at is not None]
    assert len(runs) >= 3
    runs.sort()
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier[1] <= later[0], (earlier, later)
