"""Scheduled retraining end to end on the tiny share: real index, real SQLite feedback, the tiny
model trained for a few steps, evaluated and promoted (or not) by the promotion rules, the
result posted to a Slack API server and a Teams-style webhook on loopback; and its wiring into
`lore serve`'s scheduler and the `lore customize retrain` command."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from apscheduler.triggers.cron import CronTrigger
from click.testing import CliRunner
from pydantic import SecretStr

from bot.app import Services, build_services
from bot.cli.main import cli
from bot.cli.serve_command import SCHEDULER, _add_schedules
from bot.conversation.memory import answer_and_remember
from bot.customize.dataset import DatasetCard
from bot.customize.inputs import evaluation_model
from bot.customize.promotion import promote, store_evaluation
from bot.customize.retrain import (
    JOB_ID,
    LOCK_FILE,
    RetrainJob,
    retrain_lock,
)
from bot.customize.training import TrainingSettings
from bot.model.adapters import AdapterRegistry
from bot.model.local import LocalModel
from bot.platforms.admin_notices import admin_notifiers
from bot.server import create_web_app
from bot.settings import CustomizeSettings, LoreSettings, ModelSettings, SlackSettings
from bot.store.feedback import Feedback
from bot.types import Asker, Question
from knowledge.config import FolderSourceSettings, RetrievalSettings
from knowledge.errors import ConfigurationError
from tests.customize.conftest import write_share
from tests.support.slack_api import BOT_TOKEN, MockSlackApi
from tests.support.teams_webhook import WEBHOOK_SECRET, teams_webhook
from tests.support.tiny_model import build_tiny_adapter, build_tiny_model

ADMIN_CHANNEL = "C0ADMINS"
# Fast settings for the tiny model: a couple of steps on short prompts.
FAST = TrainingSettings(
    rank=4,
    alpha=16,
    learning_rate=0.05,
    warmup_steps=0,
    gradient_accumulation=2,
    max_steps=2,
    checkpoint_every=2,
    max_validation_examples=2,
    max_length=512,
    max_minutes=5,
)


@asynccontextmanager
async def slack_api() -> AsyncIterator[MockSlackApi]:
    api = await MockSlackApi().start()
    try:
        yield api
    finally:
        await api.stop()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def make_services(tmp_path: Path, tiny: Path) -> Iterator[Any]:
    """Builds services over a fresh LORE_HOME with the tiny share indexed and the tiny model;
    closes them after the test."""
    built: list[Services] = []

    def make(slack: SlackSettings | None = None, **customize: Any) -> Services:
        root = tmp_path / f"stack-{len(built)}"
        settings = LoreSettings(
            home=root / "home",
            sources=[FolderSourceSettings(name="handbook", path=write_share(root / "docs"), permissions="file-modes")],
            model=ModelSettings(base_model=tiny, max_new_tokens=6),
            # Five passages: the prompts stay within FAST's max_length.
            retrieval=RetrievalSettings(k=5),
            customize=CustomizeSettings(**customize),
            slack=slack or SlackSettings(),
        )
        services = build_services(settings)
        built.append(services)
        services.knowledge.refresh()
        return services

    yield make
    for services in built:
        services.close()


def give_feedback(services: Services, count: int, correction: str = "") -> None:
    """`count` feedback items as users leave them: the asker's 👎 on a real answer, with
    `correction` (approved by an admin), or without one (a gap)."""
    for _ in range(count):
        question = Question(
            "On which day does the salary arrive?", Asker("U1"), "C1", uuid.uuid4().hex, platform="slack"
        )
        answer = answer_and_remember(services.agent, services.memory, question)
        feedback_id = services.feedback.record(
            Feedback(answer.id, "slack", "U1", "not_helpful", "wrong day", correction)
        )
        if correction:
            services.feedback.decide(feedback_id, approved=True, reviewer="cli:admin")


def stranger_ratings(services: Services, count: int) -> None:
    """`count` 👎 by someone other than the asker, and as many general feedback items."""
    for _ in range(count):
        question = Question(
            "On which day does the salary arrive?", Asker("U1"), "C1", uuid.uuid4().hex, platform="slack"
        )
        answer = answer_and_remember(services.agent, services.memory, question)
        services.feedback.record(Feedback(answer.id, "slack", "U9", "not_helpful", "spam"))
        services.feedback.record(Feedback(None, "slack", "U9", None, "retrain please"))


def add_incumbent(services: Services, tiny: Path, stored_accuracy: float) -> AdapterRegistry:
    """An adapter promoted earlier, whose stored evaluation says `stored_accuracy`."""
    registry = AdapterRegistry(services.settings.adapters_dir)
    build_tiny_adapter(
        tiny,
        registry.directory / "incumbent",
        metadata={"base_model": str(tiny), "created": "2026-01-01T00:00:00+00:00"},
    )
    set_score(registry, "incumbent", stored_accuracy)
    promote(registry, "incumbent", force=True)
    return registry


def set_score(registry: AdapterRegistry, name: str, accuracy: float) -> None:
    scores = {"answer_accuracy": accuracy, "citation_accuracy": accuracy, "abstention": None, "latency_p50": 0.1}
    store_evaluation(registry, name, {"base": scores, "adapter": scores})


async def test_retraining_follows_the_feedback_and_the_metric(
    make_services: Any, tiny: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    faq = tmp_path / "faq.yaml"
    faq.write_text(
        "- question: Where do I find the wifi password?\n  answer: Ask reception for the guest code.\n",
        encoding="utf-8",
    )
    async with slack_api() as api, teams_webhook() as webhook:
        services = make_services(
            slack=SlackSettings(bot_token=SecretStr(BOT_TOKEN), api_url=api.base_url),
            curated_files=[faq],
            retrain_min_feedback=3,
            admin_slack_channel=ADMIN_CHANNEL,
            admin_teams_webhook_url=SecretStr(webhook.url),
        )
        home = services.settings.home
        registry = add_incumbent(services, tiny, stored_accuracy=1.0)
        # As `lore serve` builds it (the settings' threshold and notifiers, a measuring model of
        # its own), with a training budget for the tiny model.
        job = RetrainJob(
            services,
            min_feedback=services.settings.customize.retrain_min_feedback,
            training=FAST,
            notifiers=admin_notifiers(services.settings),
            evaluation_model=lambda: evaluation_model(services.settings),
        )

        def posted() -> list[str]:
            texts = [call.args["text"] for call in api.calls_to("chat.postMessage")]
            assert [call.args["channel"] for call in api.calls_to("chat.postMessage")] == [ADMIN_CHANNEL] * len(texts)
            assert [post["text"] for post in webhook.posts] == [
                t.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") for t in texts
            ]
            return texts

        # Below the threshold: nothing is built or trained. Other people's ratings of U1's
        # answers and general feedback cannot train, so they do not count toward a run.
        stranger_ratings(services, 4)
        give_feedback(services, 2, correction="Salaries are paid on the 25th of every month.")
        result = await asyncio.to_thread(job.run)
        assert (result.outcome, result.new_feedback) == ("skipped", 2)
        assert "only 2 new feedback items" in result.reason and "needs 3" in result.reason
        assert registry.list() == ["incumbent"] and not (home / "datasets").exists()
        assert posted() == [f"Lore retraining skipped: {result.reason}"]

        # At the threshold: dataset, adapter, evaluation; it cannot beat the incumbent's 1.0.
        give_feedback(services, 1)
        result = await asyncio.to_thread(job.run)
        assert result.outcome == "not_promoted", result
        first = result.adapter
        assert first is not None and registry.list() == ["incumbent", first]
        assert registry.active() == "incumbent"
        assert "does not beat adapter 'incumbent' on answer_accuracy" in result.reason
        card = DatasetCard.read(Path(result.dataset or ""))
        assert registry.info(first).metadata["dataset"]["hash"] == card.hash
        assert card.by_origin.get("feedback", 0) >= 1  # the correction became an example
        assert card.by_origin.get("curated", 0) == 1  # customize.curated_files are used too
        evaluation = registry.info(first).metadata["evaluation"]
        assert result.scores["new"] == evaluation["adapter"] and result.scores["base"] == evaluation["base"]
        assert result.scores["active"]["answer_accuracy"] == 1.0
        assert result.training["steps"] == 2
        report = posted()[-1]
        assert report.startswith(f"Lore retraining trained {first}, not promoted")
        assert (
            "answer_accuracy: base " in report
            and "active incumbent (stored) 1.000" in report
            and f"new {first} " in report
        )

        # Nothing new since: skipped, and the marker survives in LORE_HOME.
        result = await asyncio.to_thread(job.run)
        assert (result.outcome, result.new_feedback) == ("skipped", 0)
        assert json.loads((home / "customize" / "retrain-state.json").read_text())["adapter"] == first

        # The incumbent's stored score is lower this time: the next adapter beats it.
        set_score(registry, "incumbent", 0.0)
        give_feedback(services, 3)
        result = await asyncio.to_thread(job.run)
        assert result.outcome == "promoted", result
        assert result.scores["new"]["answer_accuracy"] > 0.0
        assert registry.active() == result.adapter != first
        assert result.reason.startswith("answer_accuracy ") and "beats 0.000 of incumbent" in result.reason
        assert posted()[-1].startswith(f"Lore retraining promoted {result.adapter}: ")
        assert len(posted()) == 4 and len(webhook.posts) == 4

        api.assert_clean()
        assert all(call.token == BOT_TOKEN for call in api.calls)
    assert BOT_TOKEN not in caplog.text and WEBHOOK_SECRET not in caplog.text


def test_a_failed_run_changes_nothing_and_is_retried(
    make_services: Any, tiny: Path, caplog: pytest.LogCaptureFixture
) -> None:
    services = make_services(retrain_min_feedback=1)
    registry = add_incumbent(services, tiny, stored_accuracy=0.0)
    give_feedback(services, 1)
    broken = RetrainJob(services, min_feedback=1, training=TrainingSettings(target_modules=("no_such_proj",)))
    result = broken.run()
    assert result.outcome == "failed"
    assert result.reason.startswith("training failed: None of the target modules")
    assert registry.active() == "incumbent" and registry.list() == ["incumbent"]
    assert any(r.levelno == logging.ERROR and "training failed" in r.getMessage() for r in caplog.records)

    # The feedback still counts as new for the next run; another run's lock makes it wait.
    job = RetrainJob(services, min_feedback=1, training=FAST)
    with retrain_lock(services.settings.home / "customize" / LOCK_FILE):
        busy = job.run()
    assert busy.outcome == "skipped" and "another retraining is running" in busy.reason
    result = job.run()
    assert result.outcome == "promoted" and result.new_feedback == 1
    assert registry.active() == result.adapter


async def test_serve_schedules_the_job_and_runs_it_off_the_event_loop(
    make_services: Any, caplog: pytest.LogCaptureFixture
) -> None:
    services = make_services(retrain_min_feedback=5, retrain_cron="30 3 * * 1-5")
    app = create_web_app(services, [])
    _add_schedules(app, services)
    runner = web.AppRunner(app)
    await runner.setup()  # runs the startup hooks: the scheduler starts
    try:
        job = app[SCHEDULER].get_job(JOB_ID)
        assert isinstance(job.trigger, CronTrigger) and (job.max_instances, job.coalesce) == (1, True)
        assert {f.name: str(f) for f in job.trigger.fields}["hour"] == "3"
        caplog.set_level(logging.INFO, logger="bot.customize.retrain")
        job.modify(next_run_time=datetime.now(job.trigger.timezone))
        for _ in range(3000):
            done = [r for r in caplog.records if r.getMessage().startswith("Retraining skipped")]
            if done:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the scheduled run never finished")
        assert "only 0 new feedback items" in done[0].getMessage()
        assert done[0].thread != threading.get_ident()  # a worker thread, not the event loop's
    finally:
        await runner.cleanup()

    for off in (make_services(retrain_min_feedback=0),):
        app = create_web_app(off, [])
        _add_schedules(app, off)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            assert app[SCHEDULER].get_job(JOB_ID) is None
        finally:
            await runner.cleanup()
    with pytest.raises(ConfigurationError, match="customize.retrain_cron"):
        _add_schedules(web.Application(), make_services(retrain_min_feedback=5, retrain_cron="nightly"))


def test_the_retrain_command(tmp_path: Path, tiny: Path) -> None:
    docs = write_share(tmp_path / "docs")
    runner = CliRunner(
        env={
            "LORE_CONFIG": str(tmp_path / "absent.toml"),
            "LORE_HOME": str(tmp_path / "home"),
            "LORE_SOURCES": json.dumps([{"name": "handbook", "path": str(docs), "permissions": "file-modes"}]),
            "LORE_MODEL__BASE_MODEL": str(tiny),
            "LORE_MODEL__MAX_NEW_TOKENS": "6",
            "LORE_CUSTOMIZE__RETRAIN_MIN_FEEDBACK": "2",
            "LORE_CUSTOMIZE__RETRAIN_MAX_MINUTES": "0.001",  # over after the first step
        }
    )

    def lore(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.stdout

    lore("index")
    skipped = json.loads(lore("customize", "retrain", "--json"))
    assert skipped["outcome"] == "skipped" and skipped["min_feedback"] == 2
    assert "only 0 new feedback items" in lore("customize", "retrain")
    forced = json.loads(lore("customize", "retrain", "--min-feedback", "0", "--json"))
    assert forced["outcome"] in ("promoted", "not_promoted"), forced
    assert forced["adapter"] in AdapterRegistry(tmp_path / "home" / "adapters").list()
    assert forced["training"]["steps"] == 1 < forced["training"]["total_steps"]  # the time budget


def test_candidates_are_measured_on_local_base_weights_whatever_serves_users(tmp_path: Path, tiny: Path) -> None:
    registry = AdapterRegistry(tmp_path / "home" / "adapters")
    build_tiny_adapter(tiny, registry.directory / "served", metadata={"base_model": str(tiny)})
    registry.set_active("served")
    endpoint = ModelSettings(backend="openai", openai_base_url="http://127.0.0.1:9/v1", base_model=tiny)
    settings = LoreSettings(home=tmp_path / "home", model=endpoint)
    model = evaluation_model(settings)
    try:
        assert isinstance(model, LocalModel) and model.folder == tiny and model.adapter is None
    finally:
        model.close()
    with pytest.raises(ConfigurationError, match="set model.base_model"):
        evaluation_model(settings.model_copy(update={"model": endpoint.model_copy(update={"base_model": None})}))


def test_the_dataset_command_and_the_retraining_job_build_the_same_dataset(make_services: Any, tmp_path: Path) -> None:
    """Same settings, same dataset: the curated files (one listed twice), the admins' feedback
    rights, the prompt budget and the token counts all come from one builder."""
    faq = tmp_path / "faq.yaml"
    faq.write_text(
        "- question: Where do I find the wifi password?\n  answer: Ask reception for the guest code.\n",
        encoding="utf-8",
    )
    services = make_services(curated_files=[faq, faq], admins=["slack:U7"], retrain_min_feedback=1)
    give_feedback(services, 1, correction="Salaries are paid on the 25th of every month.")

    built = CliRunner().invoke(
        cli.commands["customize"], ["dataset", "--json"], obj=services.settings, catch_exceptions=False
    )
    assert built.exit_code == 0, built.output
    by_command = json.loads(built.stdout)
    # Training is made to fail at once: the dataset the job built is what this test compares.
    job = RetrainJob(services, min_feedback=1, training=TrainingSettings(target_modules=("no_such_proj",)))
    result = job.run()
    assert result.reason.startswith("training failed") and result.dataset is not None
    by_job = DatasetCard.read(Path(result.dataset)).to_dict()

    assert by_job["options"] == by_command["options"]
    assert by_job["options"]["curated"] == [str(faq)] and by_job["options"]["feedback_admins"] == ["slack:U7"]
    assert by_job["by_origin"] == by_command["by_origin"] and by_job["by_origin"]["feedback"] == 1
    assert by_job["hash"] == by_command["hash"]
