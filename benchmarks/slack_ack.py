"""How fast the Slack adapter acknowledges and first shows something when questions pile up.

    python benchmarks/slack_ack.py                  # 20 concurrent questions vs 1 alone
    python benchmarks/slack_ack.py --concurrent 50  # heavier burst
    python benchmarks/slack_ack.py --json
    python benchmarks/slack_ack.py --corpus sourcegraph   # a real handbook, the bundled model

The whole bot runs in this process on a loopback port (`create_web_app` + `slack_routes`, the
real agent over the indexed sample handbook, SQLite) and answers with the tiny random model
from `tests/support/tiny_model.py`: acks and placeholders do not wait for the model, so the
generator's speed matters only for the "answer" column. Signed `app_mention` callbacks go in
over HTTP, as Slack sends them; the bot's Web API calls go to the loopback mock Slack.

Per question: ack = the HTTP response to Slack's POST (Slack's limit: 3 s); first reply = from
sending the event to the placeholder's `chat.postMessage` arriving at Slack; answer = to the
final `chat.update` with the buttons. Baseline: one question alone, same process.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bot.app import Services  # noqa: E402
from bot.platforms.slack.rendering import ACTION_HELPFUL  # noqa: E402
from bot.platforms.slack.routes import slack_routes  # noqa: E402
from bot.server import create_web_app  # noqa: E402
from bot.settings import SlackSettings  # noqa: E402
from tests.support.slack_api import (  # noqa: E402
    BOT_TOKEN,
    SIGNING_SECRET,
    MockSlackApi,
    SlackSender,
    mention,
)
from tests.support.stack import build_test_services  # noqa: E402

QUESTIONS = [
    "How many days of paid time off do employees get per year?",
    "When is the Beacon on-call handoff?",
    "How many unused PTO days can I carry over?",
    "What are the Tidewell Days?",
    "How much notice do I need to give for time off longer than 3 days?",
]


@dataclass(frozen=True)
class Sample:
    ack: float
    first_reply: float
    answer: float


@dataclass(frozen=True)
class Row:
    scenario: str
    questions: int
    ack_p50: float
    ack_p99: float
    first_p50: float
    first_p99: float
    answer_p50: float
    answer_p99: float


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (p99 of 20 samples is the slowest one)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


async def burst(services: Services, count: int, round_id: int, questions: list[str] = QUESTIONS) -> list[Sample]:
    """Send `count` questions at once to a freshly started bot; time each one."""
    api = await MockSlackApi().start()
    slack = SlackSettings(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        api_url=api.base_url,
        rate_limit_per_minute=1000,
    )
    configured = dataclasses.replace(services, settings=services.settings.model_copy(update={"slack": slack}))
    runner = web.AppRunner(create_web_app(configured, [slack_routes(configured)]), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sender = SlackSender(f"http://127.0.0.1:{port}/slack/events", api)
    try:
        # Bolt checks the token once (auth.test) before its first dispatch; do that outside
        # the clock, as a running bot has long done it.
        await sender.post(b'{"type": "url_verification", "challenge": "warm"}', "application/json")
        channel = f"CBENCH{round_id}"
        events = [
            mention(questions[(round_id * count + i) % len(questions)], f"UBENCH{round_id}x{i}", channel)
            for i in range(count)
        ]

        async def one(event: dict) -> tuple[float, float]:
            started = time.monotonic()
            reply = await sender.event(event)
            if reply.status != 200:
                raise RuntimeError(f"Slack request failed with {reply.status}: {reply.body}")
            return started, reply.seconds

        sent = await asyncio.gather(*(one(event) for event in events))
        await api.wait_until(lambda: all(_answered(api, channel, e["ts"]) for e in events), timeout=1800)
        samples = []
        for event, (started, ack) in zip(events, sent, strict=True):
            placeholder = next(c for c in api.calls_to("chat.postMessage") if c.args.get("thread_ts") == event["ts"])
            message = next(m for m in api.thread(channel, event["ts"]))
            samples.append(Sample(ack, placeholder.at - started, message.updates[-1] - started))
        return samples
    finally:
        await sender.close()
        await runner.cleanup()
        await api.stop()


def _answered(api: MockSlackApi, channel: str, thread_ts: str) -> bool:
    return any(ACTION_HELPFUL in json.dumps(m.blocks) for m in api.thread(channel, thread_ts))


def summarize(scenario: str, samples: list[Sample]) -> Row:
    acks = [s.ack for s in samples]
    firsts = [s.first_reply for s in samples]
    answers = [s.answer for s in samples]
    return Row(
        scenario,
        len(samples),
        percentile(acks, 0.5),
        percentile(acks, 0.99),
        percentile(firsts, 0.5),
        percentile(firsts, 0.99),
        percentile(answers, 0.5),
        percentile(answers, 0.99),
    )


def print_table(rows: list[Row]) -> None:
    header = (
        "scenario",
        "n",
        "ack p50",
        "ack p99",
        "1st reply p50",
        "1st reply p99",
        "answer p50",
        "answer p99",
    )
    lines = [header] + [
        (
            r.scenario,
            str(r.questions),
            *(
                f"{v * 1000:.0f} ms"
                for v in (
                    r.ack_p50,
                    r.ack_p99,
                    r.first_p50,
                    r.first_p99,
                    r.answer_p50,
                    r.answer_p99,
                )
            ),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for index, line in enumerate(lines):
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


async def main(concurrent: int, as_json: bool, corpus: str | None, home: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="lore-slack-bench-") as folder:
        if corpus is None:
            services, questions, label = build_test_services(Path(folder)), QUESTIONS, "tiny random model"
        else:
            services, questions = _corpus_services(corpus, home)
            label = f"{corpus} handbook, {services.model.name}"
        try:
            # One answer first, so the model's and index's one-time warm-up is not measured.
            await burst(services, 1, 0, questions)
            alone = [sample for round_id in range(1, 11) for sample in await burst(services, 1, round_id, questions)]
            rows = [
                summarize("1 question at a time (baseline)", alone),
                summarize(f"{concurrent} at once", await burst(services, concurrent, 11, questions)),
            ]
        finally:
            services.close()
    if as_json:
        print(json.dumps([dataclasses.asdict(row) for row in rows], indent=2))
        return
    print(f"Slack adapter: time to ack, to first visible reply and to the answer ({label}, loopback)")
    print_table(rows)


def _corpus_services(corpus: str, home: Path | None) -> tuple[Services, list[str]]:
    from answer_quality import corpus_services

    loaded = corpus_services(corpus, home)
    if loaded is None:
        raise SystemExit(0)
    services, asked = loaded
    return services, [item.question.question for item in asked if item.question.answerable]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrent", type=int, default=20, help="questions sent at once")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument(
        "--corpus",
        choices=("sourcegraph", "18f"),
        default=None,
        help="answer from a real handbook's index with the configured model",
    )
    parser.add_argument("--home", type=Path, default=None, help="that index's home")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.concurrent, arguments.json, arguments.corpus, arguments.home))
