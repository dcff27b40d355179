"""Keeps the index fresh inside the bot: an APScheduler job that refreshes on an interval
or a cron expression. One run at a time (max_instances=1, missed runs coalesced); a refresh
already running in another process is logged and skipped, not raised."""

from __future__ import annotations

import logging

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from knowledge.config import RefreshSettings
from knowledge.errors import ConfigurationError, IndexBusyError, LoreError
from knowledge.knowledge_base import KnowledgeBase

logger = logging.getLogger(__name__)

JOB_ID = "lore-knowledge-refresh"


def refresh_trigger(settings: RefreshSettings) -> BaseTrigger:
    """CronTrigger when `cron` is set (it wins), else IntervalTrigger; ConfigurationError
    when neither is set or the expression is invalid."""
    if settings.cron:
        try:
            return CronTrigger.from_crontab(settings.cron)
        except ValueError as error:
            raise ConfigurationError(
                f"refresh.cron {settings.cron!r} is not a valid crontab expression ({error}); "
                "use five fields, e.g. '0 * * * *' for hourly."
            ) from error
    if settings.interval_minutes is None or settings.interval_minutes <= 0:
        raise ConfigurationError("Set refresh.interval_minutes (> 0) or refresh.cron to schedule index refreshes.")
    return IntervalTrigger(seconds=settings.interval_minutes * 60)


def run_refresh(knowledge: KnowledgeBase) -> None:
    """One scheduled refresh. Errors are logged, never raised: the scheduler keeps going."""
    try:
        knowledge.refresh()  # logs its own one-line summary
    except IndexBusyError as error:
        logger.info("refresh skipped: %s", error)
    except LoreError as error:
        logger.error("refresh failed: %s", error)
    except Exception:  # a scheduled job must survive anything
        logger.exception("refresh failed unexpectedly")


def schedule_refresh(scheduler: BaseScheduler, knowledge: KnowledgeBase, settings: RefreshSettings) -> Job:
    """Add (or replace) the refresh job on `scheduler` and return it."""
    return scheduler.add_job(
        run_refresh,
        trigger=refresh_trigger(settings),
        args=[knowledge],
        id=JOB_ID,
        name="refresh the knowledge index",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )
