"""Questions answered per minute by 1 and by 2 `lore serve --no-jobs` replicas sharing one
PostgreSQL and one Chroma server on this machine, with and without the model; and, in the same
run, keyword-index quality on PostgreSQL against SQLite (benchmarks/keyword_index.py).

    python benchmarks/replicas_throughput.py                    # sample handbook, both modes
    python benchmarks/replicas_throughput.py --askers 8 --retrieval-questions 96
    python benchmarks/replicas_throughput.py --corpus ../shared/corpora/sourcegraph-handbook/content
    python benchmarks/replicas_throughput.py --modes retrieval --no-keyword-quality
    python benchmarks/replicas_throughput.py --json

Everything is real and on loopback: a throwaway PostgreSQL (as tests/support/postgres.py starts
one, or --postgres-url), `chroma run`, and `lore` processes. `lore index` builds the index once
(catalog and keyword index in PostgreSQL, vectors in the Chroma server); then, per mode and
replica count, that many `lore serve --no-jobs` processes start (each with its own LORE_HOME,
as on separate machines), each answers one warm-up question (untimed: the model loads lazily),
and N askers send signed Slack `app_mention` events over HTTP to the replicas in turn, each
waiting for its final answer (the last `chat.update` of its message at the loopback Slack Web
API of tests/support/slack_api.py, once the replica has logged the answer) before asking the
next. Every question comes from its own
user, so no rate limit applies.

Modes: retrieval (`agent.generate = "never"`: the answer is the evidence) and model
(`"always"`: the bundled SmolLM2-135M writes each answer, `model.max_new_tokens` 120).
Printed per mode: questions/minute with 1 and 2 replicas and their ratio, p50/p95 seconds from
sending the event to the final answer. The replicas share this machine's cores: on a 2-core
machine two replicas compete for the same CPU, so the ratio measures the software's
scale-out overhead and contention, not what two machines would give.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bot.settings import SAMPLE_DOCS  # noqa: E402
from tests.support.knowledge_index import chroma_server  # noqa: E402
from tests.support.lore_processes import LoreProcess, lore_environment  # noqa: E402
from tests.support.slack_api import BOT_TOKEN, SIGNING_SECRET, MockSlackApi, SlackSender, mention  # noqa: E402

# The sample handbook's questions (tests/slack/test_slack_conversations.py), asked in turn.
SAMPLE_QUESTIONS = [
    "How many days of paid time off do employees get per year?",
    "When is the Beacon on-call handoff?",
    "How many unused PTO days can I carry over?",
    "What are the Tidewell Days?",
    "How much notice do I need to give for time off longer than 3 days?",
]
# Question files for the corpora of ../shared/corpora (by the corpus folder's parent name).
CORPUS_QUESTIONS = {
    "sourcegraph-handbook": "sourcegraph_employees.jsonl",
    "18f-handbook": "18f_handbook.jsonl",
}
MODES = {"retrieval": "never", "model": "always"}
ANSWER_TIMEOUT = 600.0


@dataclass
class Run:
    mode: str
    replicas: int
    questions: int
    answered: int
    seconds: float
    latencies: list[float]

    @property
    def per_minute(self) -> float:
        return 60.0 * self.answered / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def questions_for(corpus: Path) -> list[str]:
    for name, file in CORPUS_QUESTIONS.items():
        if name in corpus.parts:
            lines = (ROOT / "benchmarks" / "questions" / file).read_text(encoding="utf-8").splitlines()
            return [json.loads(line)["question"] for line in lines if line.strip()]
    return SAMPLE_QUESTIONS


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[str]:
    """A fresh database on `url`'s server, or on a throwaway server started for the run."""
    from tests.support.postgres import ThrowawayPostgres, fresh_database

    server = None if url else ThrowawayPostgres.start()
    try:
        with fresh_database(url or server.url) as database:  # type: ignore[union-attr]
            yield database
    finally:
        if server is not None:
            server.stop()


@dataclass
class Deployment:
    """What every `lore` process of the run is told."""

    work: Path
    database_url: str
    chroma_port: int
    corpus: Path
    slack_api_url: str = ""

    @property
    def config(self) -> Path:
        path = self.work / "lore.toml"
        path.write_text(
            f'[[sources]]\nname = "documents"\npath = "{self.corpus}"\npermissions = "public"\n\n'
            f'[index]\nchroma_host = "127.0.0.1"\nchroma_port = {self.chroma_port}\n'
            f'collection = "bench_{uuid.uuid4().hex[:8]}"\n'
            if not path.exists()
            else path.read_text()
        )
        return path

    def environment(self, generate: str) -> dict[str, str]:
        return {
            "LORE_DATABASE_URL": self.database_url,
            "LORE_AGENT__GENERATE": generate,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": self.slack_api_url,
        }

    def home(self, name: str) -> Path:
        """A LORE_HOME of its own, sharing only the bundled model's converted copy (a cache)."""
        home = self.work / name
        home.mkdir(parents=True, exist_ok=True)
        models = self.work / "models"
        models.mkdir(exist_ok=True)
        if not (home / "models").exists():
            (home / "models").symlink_to(models)
        return home


def build_index(deployment: Deployment) -> float:
    """`lore index` once, as the worker would; its wall-clock seconds."""
    home = deployment.home("indexer")
    env = lore_environment(home, deployment.config, deployment.environment("never"))
    started = time.perf_counter()
    process = LoreProcess.start(["index"], env, home / "index.log")
    code = process.process.wait()
    if code != 0:
        raise SystemExit(f"lore index failed ({code}):\n{process.output[-4000:]}")
    return time.perf_counter() - started


async def ask(sender: SlackSender, api: MockSlackApi, replica: LoreProcess, question: str) -> float | None:
    """Seconds from sending the event to the final answer; None if it never came.

    The final answer is the last `chat.update` of the question's message: the replica logs its
    `slack answer ... channel=<C>` line right after it (when the model writes, an earlier
    update already shows the excerpts with the feedback buttons, so the buttons alone do not
    say the answer is final)."""
    channel, user = "C" + uuid.uuid4().hex[:10].upper(), "U" + uuid.uuid4().hex[:10].upper()
    event = mention(question, user, channel)
    started = time.monotonic()
    # Event ids unique across senders: PostgreSQL drops a repeated id as Slack's retry.
    reply = await sender.event(event, event_id="Ev" + uuid.uuid4().hex[:16].upper())
    if reply.status != 200:
        return None
    logged = "slack answer id="
    deadline = started + ANSWER_TIMEOUT
    while time.monotonic() < deadline:
        if any(logged in line and f"channel={channel} " in line for line in replica.output.splitlines()):
            updates = [c.at for c in api.calls_to("chat.update") if c.args.get("channel") == channel]
            return (max(updates) if updates else time.monotonic()) - started
        await asyncio.sleep(0.05)
    return None


async def measure(
    deployment: Deployment, api: MockSlackApi, mode: str, replicas: int, questions: list[str], askers: int
) -> Run:
    generate = MODES[mode]
    processes = [
        LoreProcess.serve(
            deployment.home(f"{mode}-{replicas}-{n}"), deployment.config, deployment.environment(generate), "--no-jobs"
        )
        for n in range(replicas)
    ]
    senders = [SlackSender(f"{p.url}/slack/events", api) for p in processes]
    try:
        await asyncio.gather(*(asyncio.to_thread(p.wait_healthy) for p in processes))
        # Warm-up, untimed: each replica answers once (the model and the ONNX session load).
        await asyncio.gather(*(ask(sender, api, p, questions[0]) for sender, p in zip(senders, processes, strict=True)))
        turn = itertools.count()
        queue = list(questions)
        latencies: list[float] = []
        failures = 0

        async def asker() -> None:
            nonlocal failures
            while queue:
                question = queue.pop(0)
                n = next(turn) % len(senders)
                seconds = await ask(senders[n], api, processes[n], question)
                if seconds is None:
                    failures += 1
                else:
                    latencies.append(seconds)

        started = time.perf_counter()
        await asyncio.gather(*(asker() for _ in range(askers)))
        elapsed = time.perf_counter() - started
        return Run(mode, replicas, len(questions), len(latencies), elapsed, latencies)
    finally:
        for sender in senders:
            await sender.close()
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in processes))


async def throughput(deployment: Deployment, modes: list[str], counts: dict[str, int], askers: int) -> list[Run]:
    api = await MockSlackApi().start()
    deployment.slack_api_url = api.base_url
    pool = questions_for(deployment.corpus)
    runs = []
    try:
        for mode in modes:
            questions = [pool[n % len(pool)] for n in range(counts[mode])]
            for replicas in (1, 2):
                run = await measure(deployment, api, mode, replicas, questions, askers)
                print(
                    f"  {mode}, {replicas} replica(s): {run.answered}/{run.questions} answered in {run.seconds:.1f} s",
                    file=sys.stderr,
                )
                runs.append(run)
    finally:
        await api.stop()
    return runs


def keyword_quality_figures(postgres_url: str) -> dict[str, object] | str:
    """benchmarks/keyword_index.py's SQLite-vs-PostgreSQL keyword quality, or why not."""
    try:
        from keyword_index import keyword_quality
    except ImportError as error:  # the catalog benchmark has not landed in this checkout
        return f"benchmarks/keyword_index.py keyword_quality is not available here ({error})"
    from sqlalchemy.engine import make_url

    server = make_url(postgres_url).set(database="postgres").render_as_string(hide_password=False)
    return keyword_quality(server, log=True)


def table(runs: list[Run]) -> str:
    lines = [
        f"{'mode':<10} {'replicas':>8} {'answered':>9} {'q/min':>7} {'p50 s':>7} {'p95 s':>7}",
    ]
    for run in runs:
        lines.append(
            f"{run.mode:<10} {run.replicas:>8} {run.answered:>4}/{run.questions:<4} {run.per_minute:>7.1f}"
            f" {run.percentile(0.5):>7.2f} {run.percentile(0.95):>7.2f}"
        )
    for mode in dict.fromkeys(run.mode for run in runs):
        one, two = (next(r for r in runs if r.mode == mode and r.replicas == n) for n in (1, 2))
        ratio = two.per_minute / one.per_minute if one.per_minute else float("nan")
        lines.append(f"{mode}: 2 replicas / 1 replica = {ratio:.2f}x questions per minute")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus", type=Path, default=SAMPLE_DOCS, help="documents folder (default: the sample handbook)"
    )
    parser.add_argument("--modes", default="retrieval,model", help="retrieval, model or both (comma-separated)")
    parser.add_argument("--retrieval-questions", type=int, default=48)
    parser.add_argument("--model-questions", type=int, default=12)
    parser.add_argument("--askers", type=int, default=4, help="concurrent askers")
    parser.add_argument("--postgres-url", default=None, help="a server to create a scratch database on")
    parser.add_argument("--no-keyword-quality", action="store_true", help="skip the keyword-index comparison")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown mode(s) {sorted(unknown)}: use retrieval and/or model")
    if not args.corpus.is_dir():
        print(f"skipped: corpus {args.corpus} absent")
        return 0
    counts = {"retrieval": args.retrieval_questions, "model": args.model_questions}
    with (
        tempfile.TemporaryDirectory(prefix="lore-replicas-") as work,
        postgres(args.postgres_url) as database_url,
        chroma_server(Path(work) / "chroma") as chroma_port,
    ):
        deployment = Deployment(Path(work), database_url, chroma_port, args.corpus.resolve())
        index_seconds = build_index(deployment)
        print(f"  index built in {index_seconds:.1f} s", file=sys.stderr)
        runs = asyncio.run(throughput(deployment, modes, counts, args.askers))
        quality = None if args.no_keyword_quality else keyword_quality_figures(database_url)
    cores = os.cpu_count()
    if args.json:
        print(
            json.dumps(
                {
                    "cores": cores,
                    "corpus": str(args.corpus),
                    "askers": args.askers,
                    "index_seconds": round(index_seconds, 1),
                    "runs": [
                        {
                            **asdict(run),
                            "per_minute": run.per_minute,
                            "p50": run.percentile(0.5),
                            "p95": run.percentile(0.95),
                        }
                        for run in runs
                    ],
                    "keyword_quality": quality,
                },
                indent=2,
            )
        )
        return 0
    print(f"corpus {args.corpus}, {args.askers} concurrent askers, {cores} CPU cores shared by every process")
    print(table(runs))
    if quality is not None:
        from keyword_index import report

        print("keyword index, SQLite FTS5 vs PostgreSQL full-text search:")
        print(quality if isinstance(quality, str) else report(quality))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
