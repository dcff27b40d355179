"""`lore worker`: runs the scheduled jobs (index refreshes, retraining, purges) and nothing
else, so that any number of `lore serve --no-jobs` replicas can answer beside it. Exactly one
worker is active at a time (`bot.store.worker_lease`): a second one waits and takes over when
the first dies. SIGTERM or Ctrl-C stops it; a worker that loses its lease (its database
connection broke) stops its jobs and exits 1, for its supervisor to start it again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import click

from bot.app import Services, build_services
from bot.cli.schedules import Schedules
from bot.settings import LoreSettings
from bot.store.worker_lease import WorkerLease, worker_lease
from knowledge.errors import LoreError

log = logging.getLogger(__name__)


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
    lease = worker_lease(settings.database, settings.home)
    try:
        services = build_services(settings)
        try:
            asyncio.run(_work(services, lease, check_seconds))
        finally:
            services.close()
    finally:
        lease.release()


async def _work(services: Services, lease: WorkerLease, check_seconds: float) -> None:
    schedules = Schedules.of(services)  # a wrong crontab stops the worker before it waits
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    waited = False
    while not await asyncio.to_thread(lease.try_acquire):
        if not waited:  # said once, not at every try
            log.info("another worker is active (%s): waiting to take over", await asyncio.to_thread(lease.holder))
            waited = True
        if await _stopped(stop, check_seconds):
            return
    log.info("this worker is active: running the scheduled jobs")
    schedules.start()
    try:
        while not await _stopped(stop, check_seconds):
            if not await asyncio.to_thread(lease.held):
                raise LeaseLostError(
                    "this worker lost its lease (its database connection closed): it stopped its jobs, "
                    "and another worker may be running them now; start it again to wait for its turn."
                )
    finally:
        schedules.stop()
    log.info("stopped")


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds` or until `stop` is set; whether it is."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
