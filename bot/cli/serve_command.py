"""`lore serve`: the bot's one long-running process. One HTTP server carries Slack (HTTP mode
on `/slack/events`, or Socket Mode), Teams (`/api/messages`) and `/healthz`; a scheduler keeps
the index fresh and, when configured, retrains the adapter from new feedback. The model follows
promotions made while it runs (`bot.model.active_adapter`), by any process sharing its
database (`bot.adapter_registry`). SIGTERM or Ctrl-C stops accepting
work, finishes the answers in flight and exits 0."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

import click
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.adapter_registry import adapter_registry
from bot.app import Services, build_services
from bot.cli.schedules import DRAIN_SECONDS, Schedules
from bot.console.lookups import SourceLookups
from bot.model import lazy_model
from bot.model.active_adapter import follow_promotions
from bot.server import Routes, create_web_app, is_loopback, run_server
from bot.settings import LoreSettings
from bot.store.database import Database
from knowledge.types import SourceFile

if TYPE_CHECKING:
    from bot.customize.retrain import RetrainJob

log = logging.getLogger(__name__)

# The app's scheduler, for whoever needs to look at its jobs (tests, diagnostics).
SCHEDULER = web.AppKey("scheduler", AsyncIOScheduler)


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on; 0.0.0.0 for all (in a container, or behind no proxy).",
)
@click.option("--port", default=3978, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--teams-emulator",
    is_flag=True,
    help="Serve Teams' /api/messages without MICROSOFT_APP_ID (no authentication: local "
    "testing with the Bot Framework Emulator only).",
)
@click.option(
    "--jobs/--no-jobs",
    default=None,
    help="Run the scheduled refreshes, retraining and purges in this process (default: "
    "server.run_jobs, true). --no-jobs for replicas beside a `lore worker`.",
)
@click.pass_obj
def serve(settings: LoreSettings, host: str, port: int, teams_emulator: bool, jobs: bool | None) -> None:
    """Run the bot for Slack and Teams, with /healthz, scheduled index refreshes and retraining."""
    if teams_emulator and not settings.teams.app_id and not is_loopback(host):
        raise click.UsageError(
            f"--teams-emulator checks no tokens, so it listens on loopback only, not {host}: "
            "use --host 127.0.0.1 with the Bot Framework Emulator on this machine. For Teams "
            "itself, set MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD instead."
        )
    services = serving_services(settings)
    try:
        run_jobs = settings.server.run_jobs if jobs is None else jobs
        asyncio.run(_serve(services, host, port, teams_emulator, run_jobs))
    finally:
        services.close()


def serving_services(settings: LoreSettings) -> Services:
    """The services `lore serve` runs on: the configured model, made to follow the adapter
    promoted (or rolled back) by other processes while it runs."""
    database = Database(settings.database)
    try:
        registry = adapter_registry(settings, database)
        model = lazy_model(settings.model, settings.home, registry)
    except BaseException:
        database.close()
        raise
    try:
        following = follow_promotions(model, settings.model, registry)
        return build_services(settings, model=following, database=database)
    except BaseException:
        model.close()
        raise


@dataclass(frozen=True)
class Platform:
    """A chat platform `lore serve` can carry."""

    # Whether `settings` configure it (the flag: --teams-emulator).
    configured: Callable[[LoreSettings, bool], bool]
    # Its routes; imports the platform's SDK, so it runs only for configured platforms.
    routes: Callable[[Services], Routes]


def _slack_routes(services: Services) -> Routes:
    from bot.platforms.slack.routes import slack_routes

    return slack_routes(services)


def _teams_routes(services: Services) -> Routes:
    from bot.platforms.teams.routes import teams_routes  # botbuilder is slow to import

    return teams_routes(services)


# Every platform, by name: Slack when it has a bot token, Teams when it has an app id (or
# when the emulator mode is asked for explicitly). A new platform is one more row.
PLATFORMS: Mapping[str, Platform] = MappingProxyType(
    {
        "slack": Platform(lambda settings, _emulator: settings.slack.enabled, _slack_routes),
        "teams": Platform(lambda settings, emulator: bool(settings.teams.app_id) or emulator, _teams_routes),
    }
)


def platform_routes(services: Services, teams_emulator: bool) -> list[Routes]:
    """The routes of the platforms configured in `services.settings` (see `PLATFORMS`)."""
    return [
        platform.routes(services)
        for platform in PLATFORMS.values()
        if platform.configured(services.settings, teams_emulator)
    ]


async def _serve(services: Services, host: str, port: int, teams_emulator: bool, run_jobs: bool) -> None:
    routes = platform_routes(services, teams_emulator)
    if not routes:
        log.warning(
            "No chat platform is configured (set SLACK_BOT_TOKEN, or MICROSOFT_APP_ID for "
            "Teams): serving /healthz%s only.",
            " and the admin console (/admin)" if services.settings.console.enabled else "",
        )
    # The admin console at /admin (console.enabled = false: no such routes).
    console = _ConsoleMount.of(services) if services.settings.console.enabled else None
    if console is not None:
        routes.append(console.routes)
    app = create_web_app(services, routes)
    _add_schedules(app, services, run_jobs)
    if console is not None:
        console.attach(app)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    await run_server(app, host, port, stop)


@dataclass
class _ConsoleMount:
    """The console's routes, with what it shows of this process: the scheduler's jobs (known
    once the app has its scheduler) and its own "retrain now" job (stopped at shutdown)."""

    routes: Routes
    retraining: RetrainJob
    schedulers: list[AsyncIOScheduler]

    @classmethod
    def of(cls, services: Services) -> _ConsoleMount:
        from bot.console.routes import console_routes

        schedulers: list[AsyncIOScheduler] = []
        retraining = _console_retraining(services)
        routes = console_routes(
            services, console_lookups(), jobs=lambda: _scheduled_jobs(schedulers), retraining=retraining
        )
        return cls(routes, retraining, schedulers)

    def attach(self, app: web.Application) -> None:
        self.schedulers.append(app[SCHEDULER])

        async def stop_retraining(_app: web.Application) -> None:
            self.retraining.cancel()  # a "retrain now" stops at its next step, promoting nothing

        app.on_cleanup.append(stop_retraining)


def console_lookups() -> SourceLookups:
    """What the console's Sources page asks of `lore sources list` and `lore acl explain`."""
    from bot.cli.sources_commands import summarize

    return SourceLookups(summarize=summarize, document=_document_file)


def _document_file(settings: LoreSettings, path: str, source_name: str | None) -> tuple[SourceFile, str | None]:
    """The file `lore acl explain PATH [--source NAME]` looks at, and why it is not indexed."""
    from bot.cli.acl_commands import cloud_file, indexing_note, locate, source_file

    cloud = next((s for s in settings.sources if s.name == source_name and s.kind != "folder"), None)
    if cloud is not None:
        return cloud_file(settings, cloud, path), None
    source, relative = locate([s for s in settings.sources if s.kind == "folder"], path, source_name)
    return source_file(source, relative), indexing_note(source, relative)


def _console_retraining(services: Services) -> RetrainJob:
    """The console's "retrain now": the scheduled job's steps whatever the new feedback
    (min_feedback 0), measured with a model of its own like the scheduled one."""
    from bot.customize.inputs import evaluation_model
    from bot.customize.retrain import build_retrain_job
    from bot.platforms.admin_notices import admin_notifiers

    settings = services.settings
    return build_retrain_job(
        services,
        notifiers=admin_notifiers(settings),
        min_feedback=0,
        evaluation_model=lambda: evaluation_model(settings),
    )


def _scheduled_jobs(schedulers: list[AsyncIOScheduler]) -> list[tuple[str, datetime | None]]:
    """Each scheduled job's id and next run time, for the console's overview."""
    return [(job.id, job.next_run_time) for scheduler in schedulers for job in scheduler.get_jobs()]


def _add_schedules(app: web.Application, services: Services, run_jobs: bool = True) -> None:
    """The scheduled jobs (`bot.cli.schedules`), started and stopped with the app; none when
    `run_jobs` is off (a `lore worker` runs them)."""
    if not run_jobs:
        app[SCHEDULER] = AsyncIOScheduler()  # never started: the console lists no jobs
        log.info("this server runs no scheduled jobs (--no-jobs, server.run_jobs = false): run `lore worker`")
        return
    schedules = Schedules.of(services)
    app[SCHEDULER] = schedules.scheduler

    async def start(_app: web.Application) -> None:
        schedules.start()

    async def stop(_app: web.Application) -> None:
        schedules.stop()
        if not await schedules.drain(DRAIN_SECONDS):  # before the services close under it
            log.warning("stopping in the middle of a scheduled job: the next run catches up")

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
