"""`lore ask`, `lore chat` and `lore eval` end to end: the real CLI over an index of the sample
handbook (built with `lore index`), the tiny random model, SQLite under a temporary home."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from bot.cli.main import cli
from bot.core.agent import Agent
from bot.errors import ModelEndpointError
from bot.model.writing import measured_writing
from bot.settings import LoreSettings
from bot.store.answers import answers_table
from bot.store.database import Database
from bot.store.feedback import FeedbackStore
from bot.store.threads import thread_turns
from tests.support.tiny_model import build_tiny_model

ANSWER_KEYS = {
    "id",
    "answer",
    "evidence",
    "citations",
    "confident",
    "hedged",
    "model",
    "adapter",
    "first_seconds",
    "seconds",
    "startup_seconds",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("ask-cli")
    variables = {
        "LORE_CONFIG": str(root / "no-lore.toml"),
        "LORE_HOME": str(root / "home"),
        "LORE_MODEL__BASE_MODEL": str(build_tiny_model(root / "tiny")),
        "LORE_MODEL__MAX_NEW_TOKENS": "16",
    }
    result = CliRunner().invoke(cli, ["index", "--json"], env=variables)
    assert result.exit_code == 0, result.output
    yield variables


def run(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def test_ask_json_shape(env: dict[str, str]) -> None:
    result = run(env, "ask", "--json", "How many days of paid time off do full-time employees get?")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert set(answer) == ANSWER_KEYS
    assert answer["confident"] is True
    assert isinstance(answer["answer"], str) and answer["answer"]
    assert answer["citations"] and set(answer["citations"][0]) == {"source", "title", "heading", "url"}
    assert "people/time-off.md" in [c["source"] for c in answer["citations"]]
    assert all(set(e) == {"source", "quote"} for e in answer["evidence"])
    assert any("27 days" in e["quote"] for e in answer["evidence"])
    assert answer["model"] == "tiny" and answer["adapter"] is None
    assert isinstance(answer["seconds"], float) and isinstance(answer["startup_seconds"], float)
    # The tiny model was never measured: it does not write, the excerpts are the answer.
    assert answer["first_seconds"] == answer["seconds"] and answer["hedged"] is False


def test_ask_off_topic_json_is_not_confident(env: dict[str, str]) -> None:
    answer = json.loads(run(env, "ask", "--json", "What is the best pizza topping?").stdout)
    assert answer["confident"] is False
    assert answer["answer"] == LoreSettings().agent.fallback_text
    assert answer["citations"] == [] and answer["evidence"] == []


def test_ask_plain_lists_sources(env: dict[str, str]) -> None:
    result = run(env, "ask", "What is the VPN called?")
    assert result.exit_code == 0
    assert "Sources:" in result.output
    assert "policies/it-and-security.md" in result.output


def test_ask_thread_continues_across_invocations(env: dict[str, str]) -> None:
    run(env, "ask", "--thread", "th-1", "How many days of paid time off do full-time employees get?")
    run(env, "ask", "--thread", "th-1", "And how many can I carry over?")
    settings = LoreSettings(home=Path(env["LORE_HOME"]))
    database = Database(settings.database)
    try:
        from bot.store.threads import ThreadMemory

        turns = ThreadMemory(database, 6).history("cli", "cli", "th-1")
    finally:
        database.close()
    assert [t.question for t in turns][-2:] == [
        "How many days of paid time off do full-time employees get?",
        "And how many can I carry over?",
    ]


def test_ask_records_the_answer_in_the_answer_log_and_its_thread(env: dict[str, str]) -> None:
    answer = json.loads(run(env, "ask", "--json", "--thread", "th-log", "What is the VPN called?").stdout)
    database = Database(LoreSettings(home=Path(env["LORE_HOME"])).database)
    try:
        with database.engine.connect() as connection:
            logged = connection.execute(select(answers_table.c.question).where(answers_table.c.id == answer["id"]))
            turns = connection.execute(select(thread_turns.c.answer).where(thread_turns.c.thread_id == "th-log"))
            assert logged.scalars().all() == ["What is the VPN called?"]
            assert turns.scalars().all() == [answer["answer"]]
    finally:
        database.close()


def test_a_failure_while_answering_ends_with_the_apology_and_the_error_id_in_the_log(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the index file is truncated")

    monkeypatch.setattr(Agent, "answer", broken)
    result = run(env, "ask", "What is the VPN called?")

    assert result.exit_code == 1
    [failure] = [record for record in caplog.records if "error_id=" in record.getMessage()]
    error_id = failure.getMessage().rpartition("error_id=")[2]
    assert f"error id `{error_id}`" in result.output and "Sorry, something went wrong" in result.output
    assert failure.exc_info is not None and "the index file is truncated" in str(failure.exc_info[1])


def test_a_lore_error_while_answering_shows_its_own_message(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*_args: object, **_kwargs: object) -> None:
        raise ModelEndpointError("the model endpoint is not answering: start it or fix model.openai_base_url")

    monkeypatch.setattr(Agent, "answer", unreachable)
    result = run(env, "ask", "What is the VPN called?")

    assert result.exit_code == 1
    assert "Error: the model endpoint is not answering: start it or fix model.openai_base_url" in result.output


def test_ask_with_an_unknown_adapter_is_a_clear_error(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["ask", "--adapter", "nope", "PTO?"], env=env)
    assert result.exit_code == 1
    assert "Error:" in result.output and "nope" in result.output


def test_ask_with_an_empty_index_says_to_run_index(tmp_path: Path, env: dict[str, str]) -> None:
    fresh = {**env, "LORE_HOME": str(tmp_path / "empty-home")}
    result = CliRunner().invoke(cli, ["ask", "PTO?"], env=fresh)
    assert result.exit_code == 1
    assert "lore index" in result.output


def test_chat_streams_lists_sources_and_records_ratings(env: dict[str, str]) -> None:
    result = run(
        env,
        "chat",
        input="/good\nWhat is the VPN called?\n/good\nHow do I submit expenses?\n/bad wrong tool\n/nonsense\n/quit\n",
    )
    assert result.exit_code == 0, result.output
    assert "No answer to rate yet." in result.output
    assert result.output.count("Sources:") == 2
    assert "Unknown command /nonsense" in result.output
    database = Database(LoreSettings(home=Path(env["LORE_HOME"])).database)
    try:
        ratings = [(f.rating, f.text, f.platform) for f in FeedbackStore(database).list(limit=2)]
    finally:
        database.close()
    assert ratings == [("not_helpful", "wrong tool", "cli"), ("helpful", "", "cli")]


def test_eval_reports_metrics_as_json(env: dict[str, str], tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    rows = [
        {
            "question": "How many days of paid time off do full-time employees get?",
            "source": "people/time-off.md",
            "must_contain": ["27 days"],
        },
        {
            "question": "What is the VPN called?",
            "source": "policies/it-and-security.md",
            "must_contain": ["Tidewell Connect"],
        },
        {"question": "What is the best pizza topping?", "source": None},
    ]
    questions.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    result = CliRunner().invoke(cli, ["eval", "--json", str(questions)], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["count"], report["answerable"], report["unanswerable"]) == (3, 2, 1)
    assert report["hit_at_5"] == 1.0
    assert report["citation_accuracy"] == 1.0
    assert report["abstention"] == 1.0 and report["wrong_abstention"] == 0.0
    assert report["answer_evidence_accuracy"] == 1.0
    assert report["latency_p50"] > 0
    limited = json.loads(CliRunner().invoke(cli, ["eval", "--json", "--limit", "1", str(questions)], env=env).stdout)
    assert limited["count"] == 1


def test_eval_leaves_the_answer_log_and_thread_memory_untouched(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "ask", "--thread", "th-kept", "What is the VPN called?")  # a real user's turn stays
    before = _logged(env)
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        json.dumps({"question": "What is the VPN called?", "source": "policies/it-and-security.md"}) + "\n"
    )
    assert run(env, "eval", "--json", str(questions)).exit_code == 0
    assert _logged(env) == before and before[0] > 0 and before[1] > 0


def _logged(env: dict[str, str]) -> tuple[int, int]:
    """Rows in the answer log and in thread memory."""
    database = Database(LoreSettings(home=Path(env["LORE_HOME"])).database)
    try:
        with database.engine.connect() as connection:
            return (
                connection.execute(select(func.count()).select_from(answers_table)).scalar_one(),
                connection.execute(select(func.count()).select_from(thread_turns)).scalar_one(),
            )
    finally:
        database.close()


def test_eval_details_trace_each_question_and_generate_measures_the_model(env: dict[str, str], tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    rows = [
        {
            "question": "How many days of paid time off do full-time employees get?",
            "source": "people/time-off.md",
            "must_contain": ["27 days"],
        },
        {"question": "What is the best pizza topping?", "source": None},
    ]
    questions.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    details = tmp_path / "details.jsonl"
    run(env, "eval", "--json", "--details", str(details), str(questions))
    pto, pizza = [json.loads(line) for line in details.read_text().splitlines()]
    assert pto["rank"] == 1 and pto["facts_retrieved"] is True and pto["answer_correct"] is True
    assert pto["cited_right"] is True and pto["confident"] is True and pto["evidence_score"] > 0.5
    assert "27 days" in pto["answer"] and pto["generated"] == ""  # the tiny model never measured
    assert pto["timings"]["first"] == pto["timings"]["total"] < 5
    assert pizza["confident"] is False and pizza["rank"] is None and pizza["cited_right"] is None

    writing = Path(env["LORE_HOME"]) / "model" / "writing.json"
    assert not writing.exists()
    report = json.loads(run(env, "eval", "--json", "--generate", "--details", str(details), str(questions)).stdout)
    assert json.loads(details.read_text().splitlines()[0])["generated"], "the model wrote"
    kept = measured_writing(Path(env["LORE_HOME"])).get("tiny", None)
    assert kept is not None and kept.generated_shown == report["generated_shown"] and kept.questions == 2
    writing.unlink()  # the other tests expect a model never measured


def test_eval_table_and_bad_file(env: dict[str, str], tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "What is the VPN called?", "source": "policies/it-and-security.md"}\n')
    table = run(env, "eval", str(questions)).stdout
    assert "citation accuracy" in table and "latency p50 / p95" in table
    questions.write_text("{not json\n")
    result = CliRunner().invoke(cli, ["eval", str(questions)], env=env)
    assert result.exit_code == 1 and "line 1" in result.output
