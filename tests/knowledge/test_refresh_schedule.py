"""The scheduled refresh: triggers from settings, one instance at a time, a busy index is
logged and skipped, a real run on a real scheduler refreshes the index."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from knowledge.config import RefreshSettings
from knowledge.errors import ConfigurationError
from knowledge.knowledge_base import KnowledgeBase
from knowledge.lock import RefreshLock
from knowledge.refresh import refresh_trigger, run_refresh, schedule_refresh
from tests.support.files import write_document
from tests.support.knowledge_index import CountingEmbedder, make_knowledge


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
def knowledge(tmp_path: Path, embedder: CountingEmbedder) -> KnowledgeBase:
    write_document(tmp_path / "docs/leave.md", "parental leave lasts sixteen weeks")
    kb = make_knowledge(tmp_path / "home", {"docs": tmp_path / "docs"}, embedder)
    yield kb
    kb.close()


def test_interval_and_cron_triggers() -> None:
    interval = refresh_trigger(RefreshSettings(interval_minutes=15))
    assert isinstance(interval, IntervalTrigger) and interval.interval.total_seconds() == 900
    cron = refresh_trigger(RefreshSettings(interval_minutes=15, cron="30 2 * * 1-5"))
    assert isinstance(cron, CronTrigger)  # cron wins over the interval
    assert {f.name: str(f) for f in cron.fields}["hour"] == "2"


@pytest.mark.parametrize(
    "settings",
    [RefreshSettings(cron="every hour"), RefreshSettings(interval_minutes=None), RefreshSettings(interval_minutes=0)],
)
def test_bad_schedules_are_configuration_errors(settings: RefreshSettings) -> None:
    with pytest.raises(ConfigurationError, match="refresh"):
        refresh_trigger(settings)


def test_job_runs_one_at_a_time_and_refreshes_the_index(
    knowledge: KnowledgeBase, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler = BackgroundScheduler()
    scheduler.start(paused=True)
    caplog.set_level(logging.INFO)
    try:
        job = schedule_refresh(scheduler, knowledge, RefreshSettings(interval_minutes=60))
        assert (job.max_instances, job.coalesce) == (1, True)
        assert schedule_refresh(scheduler, knowledge, RefreshSettings(interval_minutes=30)).id == job.id  # replaced
        assert len(scheduler.get_jobs()) == 1
        scheduler.get_job(job.id).modify(next_run_time=datetime.now().astimezone())
        scheduler.resume()
        deadline = time.monotonic() + 120
        while knowledge.status().documents == 0:
            assert time.monotonic() < deadline, "the scheduled refresh did not run"
            time.sleep(0.2)
    finally:
        scheduler.shutdown(wait=True)
    assert knowledge.status().last_refresh_at is not None
    assert any(
        "refresh: added=1 updated=0 deleted=0 unchanged=0 skipped=0 failed=0 in" in r.message for r in caplog.records
    )


def test_busy_index_is_logged_not_raised(knowledge: KnowledgeBase, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with RefreshLock(knowledge.lock_path):
        run_refresh(knowledge)
    assert any("refresh skipped: another refresh is running" in r.message for r in caplog.records)
    assert knowledge.status().documents == 0


def test_failing_refresh_is_logged_not_raised(
    tmp_path: Path, embedder: CountingEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    # A broken ACL file stops the whole refresh. (Any other failure to decide one file's
    # readers withdraws that file instead: tests/permissions/test_narrowing.py.)
    def broken_permissions(file: object) -> frozenset[str]:
        raise ConfigurationError("ACL file acl.yaml: 'hr' is not a principal")

    write_document(tmp_path / "docs/leave.md")
    kb = make_knowledge(tmp_path / "home", {"docs": tmp_path / "docs"}, embedder, permissions=broken_permissions)
    run_refresh(kb)
    assert any(r.levelno == logging.ERROR and "refresh failed" in r.message for r in caplog.records)
    run_refresh(kb)  # the lock was released: the next run fails the same way, not "busy"
    assert not any("refresh skipped" in r.message for r in caplog.records)
    kb.close()
