"""`lore ask`, `lore chat` and `lore eval`: ask the agent from a terminal, and measure it."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot.conversation.service import Notice
from bot.settings import LoreSettings
from bot.types import Answer, Asker, Question
from knowledge.errors import LoreError

if TYPE_CHECKING:
    from bot.app import Services
    from bot.core.evaluation import EvalReport

CONVERSATION = "cli"
CHAT_HELP = "Commands: /good (rate the last answer helpful), /bad <why>, /help, /quit."

adapter_option = click.option(
    "--adapter",
    metavar="NAME|base",
    default=None,
    help="Answer with this adapter, or `base` for the bare base model (default: the promoted one).",
)


@contextmanager
def _services(settings: LoreSettings, adapter: str | None) -> Iterator[Services]:
    # Imported here: building services loads the index and model libraries, which the other
    # commands do not need.
    from bot.app import build_services

    services = build_services(settings)
    try:
        if services.knowledge.status().documents == 0:
            raise LoreError("The index is empty: run `lore index` first.")
        if adapter is not None:
            services.model.use_adapter(None if adapter == "base" else adapter)
        yield services
    finally:
        services.close()


def _asker(email: str | None = None) -> Asker:
    """The person asking: `email` (`--as`), else the local login, whose e-mail the directory
    file's `accounts` may give (otherwise only `everyone` documents answer)."""
    if email is not None:
        email = email.strip()
        if "@" not in email:
            raise click.BadParameter(f"{email!r} is not an e-mail address", param_hint="--as")
        return Asker(user_id=email, display_name=email, email=email)
    user = getpass.getuser()
    return Asker(user_id=user, display_name=user)


def answer_json(answer: Answer) -> dict[str, Any]:
    """The `--json` shape of an answer."""
    return {
        "id": answer.id,
        "answer": answer.text,
        "evidence": [{"source": e.source, "quote": e.quote} for e in answer.evidence],
        "citations": [
            {"source": c.source, "title": c.title, "heading": c.heading, "url": c.url} for c in answer.citations
        ],
        "confident": answer.confident,
        "model": answer.model,
        "adapter": answer.adapter,
        "hedged": answer.hedged,
        "first_seconds": round(answer.timings.get("first", answer.timings.get("total", 0.0)), 3),
        "seconds": round(answer.timings.get("total", 0.0), 3),
    }


def answer_footer(answer: Answer) -> str:
    """Evidence and sources, as shown beneath an answer in the terminal."""
    lines: list[str] = []
    quotes_shown = answer.evidence and not all(e.quote in answer.text for e in answer.evidence)
    if quotes_shown:
        lines.append("")
        lines.append("Evidence:")
        lines.extend(f'  "{e.quote}" ({e.source})' for e in answer.evidence)
    if answer.citations:
        lines.append("")
        lines.append("Sources:")
        for citation in answer.citations:
            label = " > ".join(part for part in (citation.title, citation.heading) if part)
            lines.append(f"  [{citation.number}] {label} ({citation.source}) {citation.url}".rstrip())
    return "\n".join(lines)


@click.command("ask")
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as one JSON object.")
@click.option("--thread", "thread_id", default=None, help="Continue this thread (follow-ups see its history).")
@click.option(
    "--as",
    "as_email",
    metavar="EMAIL",
    default=None,
    help="Answer as this person would be answered in a private chat: only from what they may read.",
)
@adapter_option
@click.pass_obj
def ask(
    settings: LoreSettings,
    question: str,
    as_json: bool,
    thread_id: str | None,
    as_email: str | None,
    adapter: str | None,
) -> None:
    """Answer QUESTION from the indexed documents, with sources."""
    if not question.strip():
        raise click.BadParameter("the question is empty", param_hint="QUESTION")
    asker = _asker(as_email)
    started = time.perf_counter()
    with _services(settings, adapter) as services:
        ready = time.perf_counter()
        answer = _ask_once(services, Question(question, asker, CONVERSATION, thread_id or uuid.uuid4().hex))
    if as_json:
        # Start-up (opening the index, the database and, when it writes, the model) apart.
        shown = {**answer_json(answer), "startup_seconds": round(ready - started, 3)}
        click.echo(json.dumps(shown, ensure_ascii=False))
        return
    click.echo(answer.text)
    footer = answer_footer(answer)
    if footer:
        click.echo(footer)


def _ask_once(services: Services, question: Question) -> Answer:
    """Ask through the conversation service, as `lore chat` and the platforms do: the answer is
    recorded in the answer log and the thread. A failure ends the command with a LoreError's
    own message, else with the apology and the error id it is logged under."""
    answer = asyncio.run(services.conversation.ask(question))
    if isinstance(answer, Notice):
        if isinstance(answer.cause, LoreError):
            raise answer.cause
        raise LoreError(answer.text)
    return answer


@click.command("chat")
@adapter_option
@click.pass_obj
def chat(settings: LoreSettings, adapter: str | None) -> None:
    """Chat with Lore in the terminal; one conversation thread until you quit."""
    from bot.store.feedback import Feedback

    asker = _asker()
    thread_id = uuid.uuid4().hex
    with _services(settings, adapter) as services:
        click.echo(f"Lore ({services.model.name}, adapter: {services.model.adapter or 'none'}). {CHAT_HELP}")
        last: Answer | None = None
        while True:
            try:
                line = input("you> ").strip()
            except (EOFError, KeyboardInterrupt):
                click.echo("")
                return
            if not line:
                continue
            if line in ("/quit", "/exit"):
                return
            if line == "/help":
                click.echo(CHAT_HELP)
                continue
            if line == "/good" or line.startswith("/bad"):
                if last is None:
                    click.echo("No answer to rate yet.")
                    continue
                good = line == "/good"
                rating = Feedback(
                    answer_id=last.id,
                    platform="cli",
                    user_id=asker.user_id,
                    rating="helpful" if good else "not_helpful",
                    text="" if good else line.removeprefix("/bad").strip(),
                    conversation_id=CONVERSATION,
                )
                asyncio.run(services.conversation.record_feedback(rating))
                click.echo("Thanks, noted.")
                continue
            if line.startswith("/"):
                click.echo(f"Unknown command {line.split()[0]}. {CHAT_HELP}")
                continue
            last = _chat_turn(services, Question(line, asker, CONVERSATION, thread_id)) or last


def _chat_turn(services: Services, question: Question) -> Answer | None:
    """Ask, streaming the text as it is written; show the final text if the check replaced it."""
    shown: list[str] = []
    click.echo("lore> ", nl=False)

    def on_text(text: str) -> None:
        click.echo(text[len("".join(shown)) :], nl=False)
        shown.append(text[len("".join(shown)) :])

    answer = asyncio.run(services.conversation.ask(question, on_text))
    if isinstance(answer, Notice):  # busy, or an apology with the logged error id
        click.echo(("\n" if shown else "") + answer.text)
        return None
    if "".join(shown).strip() != answer.text.strip():
        if shown:
            click.echo("\n(That text did not check out against the documents; here is what they say:)")
        click.echo(answer.text, nl=False)
    click.echo("")
    footer = answer_footer(answer)
    if footer:
        click.echo(footer.lstrip("\n"))
    return answer


@click.command("eval")
@click.argument("questions_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N questions.")
@click.option(
    "--details",
    "details_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write one JSON line per question: rank of the right document, facts retrieved, judge score, "
    "shown answer, citations, timings.",
)
@click.option(
    "--generate",
    is_flag=True,
    help="Have the model write every answer (whatever agent.generate says) and keep the share of its "
    "text that passed the grounding check: with agent.generate = auto, that decides whether it writes.",
)
@adapter_option
@click.pass_obj
def evaluate(
    settings: LoreSettings,
    questions_file: Path,
    as_json: bool,
    limit: int | None,
    details_file: Path | None,
    generate: bool,
    adapter: str | None,
) -> None:
    """Measure retrieval, answers, citations, abstention and latency on QUESTIONS_FILE
    (JSON lines: question, source (path or null), also_ok, must_contain)."""
    from bot.core.evaluation import details, load_questions, run_questions, summarize
    from bot.model.writing import measured_writing

    questions = load_questions(questions_file)[:limit]
    progress = click.progressbar(length=len(questions), label="Asking", file=sys.stderr)
    with _services(settings, adapter) as services, progress as bar:
        if generate:
            services.agent.writes = None  # the model writes every answer
        results = run_questions(services.agent.answer, questions, on_result=lambda _: bar.update(1))
        report = summarize(results)
        if generate and report.generated_shown is not None:
            measured_writing(settings.home).record(
                services.model.name, services.model.adapter, report.generated_shown, len(results)
            )
    if details_file is not None:
        details_file.write_text(
            "".join(json.dumps(details(result), ensure_ascii=False) + "\n" for result in results),
            encoding="utf-8",
        )
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        click.echo(format_report(report))


def format_report(report: EvalReport) -> str:
    """The metrics as an aligned table."""

    def share(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    def seconds(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} s"

    rows = [
        ("questions", f"{report.count} ({report.answerable} answerable, {report.unanswerable} not)"),
        ("retrieval hit@1", share(report.hit_at_1)),
        ("retrieval hit@5", share(report.hit_at_5)),
        ("retrieval MRR", share(report.mrr)),
        ("answer accuracy", share(report.answer_accuracy)),
        ("answer + evidence accuracy", share(report.answer_evidence_accuracy)),
        ("facts in the retrieved passages", share(report.facts_retrieved)),
        ("citation accuracy", share(report.citation_accuracy)),
        ("abstention (unanswerable)", share(report.abstention)),
        ("wrong abstention (answerable)", share(report.wrong_abstention)),
        ("hedged (of answers given)", share(report.hedged)),
        ("model's own text: answer accuracy", share(report.model_answer_accuracy)),
        ("model's own text: citation accuracy", share(report.model_citation_accuracy)),
        ("model's text shown (passed the check)", share(report.generated_shown)),
        ("latency p50 / p95", f"{seconds(report.latency_p50)} / {seconds(report.latency_p95)}"),
    ]
    for stage, values in report.stages.items():
        if stage != "total":
            rows.append((f"  {stage} p50 / p95", f"{seconds(values['p50'])} / {seconds(values['p95'])}"))
    rows.append(("tokens/s", "n/a" if report.tokens_per_second is None else f"{report.tokens_per_second:.1f}"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)
