"""`lore worker`: runs the scheduled jobs (index refreshes, retraining, purges) and nothing
else, so that any number of `lore serve --no-jobs` replicas can answer beside it. Exactly one
worker is active at a time (`bot.store.worker_lease`): a second one waits and takes over when
the first dies. SIGTERM or Ctrl-C stops it; a worker that loses its lease (its database
connection broke) stops its jobs and exits 1, for its supervisor to start it again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

import click

from bot.app import build_services
from bot.cli.schedules import DRAIN_SECONDS, Schedules
from bot.settings import LoreSettings
from bot.store.worker_lease import WorkerLease, worker_lease
from knowledge.errors import LoreError
from knowledge.refresh import refresh_trigger

log = logging.getLogger(__name__)

# How long a stopping worker lets a running job finish before it exits anyway.


class LeaseLostError(LoreError):
    """The worker's lease went away while it ran the jobs."""


@click.command("worker")
@click.option(
    "--check-seconds",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="How often a waiting worker tries to take over, and an active one checks its lease.",
)
@click.pass_obj
def worker(settings: LoreSettings, check_seconds: float) -> None:
    """Run the scheduled refreshes, retraining and purges; one active worker at a time."""
    _check_schedules(settings)  # a wrong crontab stops the worker before it waits
    lease = worker_lease(settings.database, settings.home)
    try:
        asyncio.run(_work(settings, lease, check_seconds))
    finally:
        lease.release()


def _check_schedules(settings: LoreSettings) -> None:
    """ConfigurationError for a refresh or retraining schedule that cannot run."""
    if settings.refresh.cron is not None or settings.refresh.interval_minutes is not None:
        refresh_trigger(settings.refresh)
    if settings.customize.retrain_min_feedback > 0:
        from bot.customize.retrain import retrain_trigger

        retrain_trigger(settings.customize)


async def _work(settings: LoreSettings, lease: WorkerLease, check_seconds: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    if not await _take_turn(lease, stop, check_seconds):
        return
    # Built only now: a waiting worker holds no index, model or database connections (and two
    # workers starting on one fresh LORE_HOME do not both create its stores).
    services = build_services(settings)
    schedules = Schedules.of(services)
    try:
        await _run_jobs(schedules, lease, stop, check_seconds)
    finally:
        schedules.stop()
        if not await schedules.drain(DRAIN_SECONDS):
            # Closing the index under the running job could crash; cutting the job short is
            # safe (the next refresh catches up; a retraining promotes nothing unfinished).
            log.warning("stopped in the middle of a job: the next run catches up")
            logging.shutdown()
            os._exit(0)
        services.close()
    log.info("stopped")


async def _take_turn(lease: WorkerLease, stop: asyncio.Event, check_seconds: float) -> bool:
    """Wait for the lease; False when stopped first."""
    waited = False
    while not await asyncio.to_thread(lease.try_acquire):
        if not waited:  # said once, not at every try
            log.info("another worker is active (%s): waiting to take over", await asyncio.to_thread(lease.holder))
            waited = True
        if await _stopped(stop, check_seconds):
            return False
    log.info("took the worker lease")
    return True


async def _run_jobs(schedules: Schedules, lease: WorkerLease, stop: asyncio.Event, check_seconds: float) -> None:
    schedules.start()
    log.info("this worker is active: running the scheduled jobs")
    while not await _stopped(stop, check_seconds):
        if not await asyncio.to_thread(lease.held):
            raise LeaseLostError(
                "this worker lost its lease (its database connection closed): it stopped its jobs, "
                "and another worker may be running them now; start it again to wait for its turn."
            )


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds` or until `stop` is set; whether it is."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
