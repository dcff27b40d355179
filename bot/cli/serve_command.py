"""`lore serve`: the bot's one long-running process. One HTTP server carries Slack (HTTP mode
on `/slack/events`, or Socket Mode), Teams (`/api/messages`) and `/healthz`; a scheduler keeps
the index fresh. SIGTERM or Ctrl-C stops accepting work, finishes the answers in flight and
exits 0."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import datetime

import click
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app import Services, build_services
from bot.server import Routes, create_web_app, run_server
from bot.settings import LoreSettings
from knowledge.refresh import schedule_refresh

log = logging.getLogger(__name__)


@click.command("serve")
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to listen on.")
@click.option("--port", default=3978, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--teams-emulator",
    is_flag=True,
    help="Serve Teams' /api/messages without MICROSOFT_APP_ID (no authentication: local "
    "testing with the Bot Framework Emulator only).",
)
@click.pass_obj
def serve(settings: LoreSettings, host: str, port: int, teams_emulator: bool) -> None:
    """Run the bot for Slack and Teams, with /healthz and scheduled index refreshes."""
    services = build_services(settings)
    try:
        asyncio.run(_serve(services, host, port, teams_emulator))
    finally:
        services.close()


def platform_routes(services: Services, teams_emulator: bool) -> list[Routes]:
    """The platforms configured in `services.settings`: Slack when it has a bot token, Teams
    when it has an app id (or when the emulator mode is asked for explicitly)."""
    routes: list[Routes] = []
    if services.settings.slack.enabled:
        from bot.adapters.slack import slack_routes

        routes.append(slack_routes(services))
    if services.settings.teams.app_id or teams_emulator:
        # Imported only when used: botbuilder is slow to import.
        from bot.adapters.teams import teams_routes

        routes.append(teams_routes(services))
    return routes


async def _serve(services: Services, host: str, port: int, teams_emulator: bool) -> None:
    routes = platform_routes(services, teams_emulator)
    if not routes:
        log.warning(
            "No chat platform is configured (set SLACK_BOT_TOKEN, or MICROSOFT_APP_ID for "
            "Teams): serving /healthz only."
        )
    app = create_web_app(services, routes)
    _add_schedules(app, services)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    await run_server(app, host, port, stop)


def _add_schedules(app: web.Application, services: Services) -> None:
    """Index refreshes (when configured) and a daily purge of answers past their retention."""
    refresh = services.settings.refresh
    scheduler = AsyncIOScheduler()

    async def start(_app: web.Application) -> None:
        scheduler.add_job(
            services.purge_expired, "interval", days=1, id="purge-answer-log", coalesce=True
        )
        if refresh.cron is None and refresh.interval_minutes is None:
            log.info("scheduled index refreshes are off (refresh.interval_minutes and cron unset)")
        else:
            job = schedule_refresh(scheduler, services.knowledge, refresh)
            if services.knowledge.status().last_refresh_at is None:
                # A never-indexed knowledge base would answer nothing until the first interval.
                log.info("the index has never been built: refreshing now")
                job.modify(next_run_time=datetime.now(job.trigger.timezone))
        scheduler.start()

    async def stop(_app: web.Application) -> None:
        # No new refresh starts; one in progress is cut short at exit, and the next refresh
        # catches up (sync compares the files with the index).
        scheduler.shutdown(wait=False)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
