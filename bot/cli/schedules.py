"""The scheduled jobs: index refreshes, retraining (when configured) and a daily purge of
answers past their retention. `lore serve` runs them itself unless told not to
(`server.run_jobs`, `--no-jobs`); `lore worker` runs them and nothing else."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_SUBMITTED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.app import Services
from knowledge.refresh import schedule_refresh

if TYPE_CHECKING:
    from bot.customize.retrain import RetrainJob

log = logging.getLogger(__name__)

# How long a stopping process waits for a running job before closing the index under it.
DRAIN_SECONDS = 10.0


@dataclass
class Schedules:
    """The jobs on one scheduler; `start` (inside a running event loop) adds them and starts
    it, `stop` shuts it down."""

    services: Services
    scheduler: AsyncIOScheduler
    retraining: tuple[RetrainJob, CronTrigger] | None
    running: int = field(default=0, init=False)  # jobs started and not finished

    def __post_init__(self) -> None:
        self.scheduler.add_listener(self._count, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def _count(self, event: JobEvent) -> None:
        self.running += 1 if event.code == EVENT_JOB_SUBMITTED else -1

    @classmethod
    def of(cls, services: Services) -> Schedules:
        """The jobs `services.settings` ask for; a wrong retraining crontab raises here, before
        anything listens or runs."""
        return cls(services, AsyncIOScheduler(), _retraining(services))

    def start(self) -> None:
        services = self.services
        refresh = services.settings.refresh
        scheduler = self.scheduler
        scheduler.add_job(services.purge_expired, "interval", days=1, id="purge-answer-log", coalesce=True)
        if refresh.cron is None and refresh.interval_minutes is None:
            log.info("scheduled index refreshes are off (refresh.interval_minutes and cron unset)")
        else:
            job = schedule_refresh(scheduler, services.knowledge, refresh)
            if services.knowledge.status().last_refresh_at is None:
                # A never-indexed knowledge base would answer nothing until the first interval.
                log.info("the index has never been built: refreshing now")
                job.modify(next_run_time=datetime.now(job.trigger.timezone))
        if self.retraining is None:
            log.info("scheduled retraining is off (customize.retrain_min_feedback is 0)")
        else:
            from bot.customize.retrain import schedule_retrain

            schedule_retrain(scheduler, *self.retraining)
            log.info(
                "retraining runs at %r when %d new feedback items arrived",
                services.settings.customize.retrain_cron,
                services.settings.customize.retrain_min_feedback,
            )
        scheduler.start()

    def stop(self) -> None:
        # No new refresh starts; one in progress is cut short at exit, and the next refresh
        # catches up (sync compares the files with the index). A retraining stops at its next
        # step without promoting anything, so the exit does not wait for a whole training.
        if self.retraining is not None:
            self.retraining[0].cancel()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    async def drain(self, seconds: float) -> bool:
        """After `stop`: wait up to `seconds` for the jobs running to finish; whether they
        did (closing the index under a running refresh can crash the process)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while self.running > 0 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return self.running <= 0


def _retraining(services: Services) -> tuple[RetrainJob, CronTrigger] | None:
    """The retraining job and its trigger when `customize.retrain_min_feedback` is above 0
    (built now, so that a wrong crontab stops the process before it listens). The job measures
    candidates with a model of its own, loaded for the while: switching the serving model's
    adapters to measure them would answer users with an unproven adapter."""
    settings = services.settings
    if settings.customize.retrain_min_feedback <= 0:
        return None
    # Imported here: `lore` imports this module for every command.
    from bot.customize.inputs import evaluation_model
    from bot.customize.retrain import build_retrain_job, retrain_trigger
    from bot.platforms.admin_notices import admin_notifiers

    trigger = retrain_trigger(settings.customize)
    job = build_retrain_job(
        services, notifiers=admin_notifiers(settings), evaluation_model=lambda: evaluation_model(settings)
    )
    return job, trigger
