"""How fast the admin console's pages load with a big answer log (issue #17's target: < 300 ms).

    python benchmarks/console_pages.py                      # 100,000 answers, SQLite (+ PostgreSQL if it starts)
    python benchmarks/console_pages.py --answers 20000      # a smaller log
    python benchmarks/console_pages.py --postgres URL       # a running PostgreSQL server
    python benchmarks/console_pages.py --no-postgres --json

The console runs in this process behind `lore serve`'s web app (`create_web_app` +
`console_routes`) on a loopback port, over the indexed sample handbook; the answer log is
filled with `--answers` answers spread over 90 days (a tenth not covered, a quarter private,
two platforms) and one feedback item per 20 answers. Each page is fetched over HTTP with the
admin token, `--repeat` times after one warm-up, and timed client side (round trip: the query,
the template, the transfer). PostgreSQL: `--postgres URL`, else a throwaway server as the
store tests start one (initdb/pg_ctl), else skipped with the reason.

Baseline in the same run: the same pages with the console's indexes on `answers` dropped
(`created_at` alone, as before #17), to show what they buy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

from bot.app import Services, build_services  # noqa: E402
from bot.cli.serve_command import console_lookups  # noqa: E402
from bot.console.routes import console_routes  # noqa: E402
from bot.server import create_web_app  # noqa: E402
from bot.settings import SAMPLE_DOCS, ConsoleSettings, LoreSettings  # noqa: E402
from bot.store.tables import answers_table, feedback_table  # noqa: E402
from knowledge.config import FolderSourceSettings  # noqa: E402

TOKEN = "console-benchmark-token"
TARGET_MS = 300.0
WORDS = (
    "vacation expenses laptop vpn parking benefits payroll onboarding travel security badge office "
    "holiday insurance pension wifi printer desk meeting budget invoice contract"
).split()
PAGES = {
    "overview": "/admin/overview",
    "overview (JSON)": "/admin/api/overview",
    "questions, first page": "/admin/questions",
    "questions, search": "/admin/questions?q=parking+garage",
    "questions, 👎 filter": "/admin/questions?feedback=not_helpful&confident=no",
    "questions, last page": "/admin/questions?page=3000",
    # The warm-up embeds the newest 400 gap questions (seconds, once per process); then cached.
    "gaps": "/admin/gaps",
}
# The indexes the console's queries use (bot/store/tables.py); dropped for the baseline.
CONSOLE_INDEXES = ("ix_answers_console",)


def fill(services: Services, answers: int, seed: int = 7) -> None:
    """`answers` logged answers over 90 days and one feedback item per 20, in bulk."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    rows, feedback = [], []
    for n in range(answers):
        words = rng.sample(WORDS, 4)
        if n % 50 == 0:
            words.append("parking garage")
        confident = n % 10 != 0
        answer_id = uuid.UUID(int=rng.getrandbits(128)).hex
        created = now - timedelta(seconds=rng.uniform(0, 90 * 86400))
        rows.append(
            {
                "id": answer_id,
                "platform": "slack" if n % 3 else "teams",
                "user_id": f"U{n % 700:04d}",
                "display_name": "",
                "email": None,
                "conversation_id": f"C{n % 40}",
                "thread_id": answer_id,
                "place": "private" if n % 4 == 0 else "channel",
                "question": "How does " + " ".join(words) + " work here?",
                "answer": "According to the handbook, " + " ".join(reversed(words)) + " is handled by the team [1].",
                "generated": "",
                "confident": confident,
                "citations": [
                    {"number": 1, "source": "people/time-off.md", "title": "Time off", "heading": "", "url": ""}
                ],
                "evidence": [
                    {"source": "people/time-off.md", "quote": "You may carry over five days.", "title": "", "url": ""}
                ],
                "passages": [],
                "readers": None,
                "model": "SmolLM2-135M-Instruct",
                "adapter": None,
                "timings": {"retrieval": 0.1, "total": 0.9},
                "created_at": created,
            }
        )
        if n % 20 == 0:
            feedback.append(
                {
                    "answer_id": answer_id,
                    "platform": "slack",
                    "user_id": f"U{n % 700:04d}",
                    "rating": "not_helpful" if n % 40 == 0 else "helpful",
                    "text": "",
                    "correction": "",
                    "conversation_id": f"C{n % 40}",
                    "created_at": created + timedelta(minutes=1),
                }
            )
    with services.database.engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            connection.execute(insert(answers_table), rows[start : start + 5000])
        connection.execute(insert(feedback_table), feedback)
    with services.database.engine.begin() as connection:
        connection.execute(text("ANALYZE"))


async def time_pages(url: str, repeat: int) -> dict[str, dict[str, float]]:
    timings: dict[str, dict[str, float]] = {}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for name, path in PAGES.items():
            samples: list[float] = []
            first = 0.0
            for attempt in range(repeat + 1):
                started = time.perf_counter()
                async with session.get(url + path) as response:
                    await response.read()
                    assert response.status == 200, (path, response.status)
                elapsed = (time.perf_counter() - started) * 1000
                if attempt:
                    samples.append(elapsed)
                else:  # the warm-up (the first load of Gaps embeds its questions)
                    first = elapsed
            samples.sort()
            timings[name] = {
                "first_ms": first,
                "median_ms": statistics.median(samples),
                "p95_ms": samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))],
            }
    return timings


async def serve_and_time(services: Services, repeat: int) -> dict[str, dict[str, float]]:
    runner = web.AppRunner(create_web_app(services, [console_routes(services, console_lookups())]), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        return await time_pages(f"http://127.0.0.1:{port}", repeat)
    finally:
        await runner.cleanup()


def drop_console_indexes(services: Services) -> None:
    with services.database.engine.begin() as connection:
        for name in CONSOLE_INDEXES:
            connection.execute(text(f"DROP INDEX IF EXISTS {name}"))
        connection.execute(text("ANALYZE"))


def run(database_url: str | None, home: Path, answers: int, repeat: int) -> dict[str, Any]:
    settings = LoreSettings(
        home=home,
        database_url=database_url,
        sources=[FolderSourceSettings(name="handbook", path=SAMPLE_DOCS, permissions="public")],
        console=ConsoleSettings(token_sha256=hashlib.sha256(TOKEN.encode()).hexdigest()),
    )
    services = build_services(settings)
    try:
        services.knowledge.refresh()
        started = time.perf_counter()
        fill(services, answers)
        filled = time.perf_counter() - started
        with_indexes = asyncio.run(serve_and_time(services, repeat))
        drop_console_indexes(services)
        without = asyncio.run(serve_and_time(services, repeat))
    finally:
        services.close()
    return {"fill_seconds": round(filled, 1), "console": with_indexes, "baseline_without_console_indexes": without}


@contextlib.contextmanager
def postgres(url: str | None, wanted: bool) -> Iterator[str | None]:
    """A fresh database on `url`, or on a throwaway server; None (with the reason printed)."""
    if not wanted:
        yield None
        return
    from tests.support.postgres import PostgresUnavailable, ThrowawayPostgres, fresh_database

    server = None
    if url is None:
        try:
            server = ThrowawayPostgres.start()
        except PostgresUnavailable as reason:
            print(f"PostgreSQL skipped: {reason}", file=sys.stderr)
            yield None
            return
        url = server.url
    try:
        with fresh_database(url) as database:
            yield database
    finally:
        if server is not None:
            server.stop()


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"{'database':<11}{'page':<24}{'first ms':>10}{'median ms':>11}{'p95 ms':>9}{'baseline median':>17}"
        "  target < 300 ms"
    ]
    for database, result in results.items():
        for page, timing in result["console"].items():
            base = result["baseline_without_console_indexes"][page]["median_ms"]
            verdict = "ok" if timing["p95_ms"] < TARGET_MS else "SLOW"
            lines.append(
                f"{database:<11}{page:<24}{timing['first_ms']:>10.1f}{timing['median_ms']:>11.1f}"
                f"{timing['p95_ms']:>9.1f}{base:>17.1f}  {verdict}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--postgres", metavar="URL", help="a running PostgreSQL server's SQLAlchemy URL")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="lore-console-bench-") as folder:
        results["sqlite"] = run(None, Path(folder) / "sqlite", args.answers, args.repeat)
        with postgres(args.postgres, not args.no_postgres) as url:
            if url is not None:
                results["postgresql"] = run(url, Path(folder) / "postgres", args.answers, args.repeat)
    if args.json:
        print(json.dumps({"answers": args.answers, "repeat": args.repeat, **results}))
        return
    print(f"{args.answers} logged answers, {args.repeat} fetches per page after a warm-up")
    print(table(results))
    print("fill: " + ", ".join(f"{db} {result['fill_seconds']} s" for db, result in results.items()))


if __name__ == "__main__":
    main()
