"""Scheduled retraining: once enough new feedback has arrived, rebuild the dataset, train an
adapter within a time budget, measure it against the base model on the new test split, and
promote it only if it beats the model answering now. `lore serve` runs it on
`customize.retrain_cron`; `lore customize retrain` runs it once.

It is the `lore customize dataset → train → eval → promote` recipe with the decisions made by
settings: the promotion is `promote()` without force, so "beats" means what it means on the
command line (the candidate's `promote_metric` strictly above the active adapter's stored
score, or the base model's when none is active). Every run, skipped or not, reports one
result to the log and to the admins (`bot.customize.notify`).

State lives in `<home>/customize/`: `retrain-state.json` holds the newest feedback id a
finished run used (written atomically, only when a run finished, so a failed run is retried
with the same feedback), and `retrain.lock` is flocked while a run works, so runs never
overlap, whether scheduled in `lore serve` or started by hand in another process.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.adapter_registry import adapter_registry
from bot.customize.evaluate import HEADLINE, compare, evaluation_record, record_writing, test_questions
from bot.customize.inputs import base_weights, dataset_inputs
from bot.customize.notify import AdminNotifier, notify
from bot.customize.promotion import PromotionError, promote, store_evaluation
from bot.customize.teacher import open_teacher
from bot.customize.training import StepReport, TrainingSettings, train_adapter
from bot.model.writing import measured_writing
from bot.settings import CustomizeSettings, LoreSettings
from bot.store.answers import AnswerLog
from bot.store.database import Database
from bot.store.feedback import FeedbackStore, may_train
from knowledge.errors import ConfigurationError, LoreError
from knowledge.lock import AdvisoryLock, RefreshLock

if TYPE_CHECKING:
    from bot.core.agent import Agent
    from bot.model.base import Model
    from knowledge.knowledge_base import KnowledgeBase

log = logging.getLogger(__name__)


class RetrainingServices(Protocol):
    """What retraining uses of the running bot (`bot.app.Services` has it all)."""

    @property
    def settings(self) -> LoreSettings: ...
    @property
    def knowledge(self) -> KnowledgeBase: ...
    @property
    def feedback(self) -> FeedbackStore: ...
    @property
    def answers(self) -> AnswerLog: ...
    @property
    def agent(self) -> Agent: ...
    @property
    def database(self) -> Database: ...


STATE_FILE = "retrain-state.json"
LOCK_FILE = "retrain.lock"
# The advisory lock's name with a PostgreSQL database (distinct from the refresh's and the worker lease's).
RETRAIN_LOCK = "lore retraining"
JOB_ID = "lore-retrain"
# A run missed by this much (the bot was down at 03:00) still runs when the bot is back.
MISFIRE_GRACE_SECONDS = 6 * 3600

Outcome = Literal["skipped", "promoted", "not_promoted", "failed"]


class RetrainBusyError(LoreError):
    """Another retraining holds the lock."""


class RetrainCancelled(LoreError):
    """The run was stopped because the bot is shutting down."""


@dataclass(frozen=True)
class RetrainResult:
    """What one run did: the one result reported to the log and the admins."""

    outcome: Outcome
    reason: str
    new_feedback: int
    min_feedback: int
    metric: str
    adapter: str | None = None  # trained by this run
    active: str | None = None  # the one it was compared with (None: the base model)
    # Headline metrics ("answer_accuracy", ...) by side: "base" and "new" measured by this run
    # on the new test split; "active" as stored by the active adapter's own evaluation.
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)
    dataset: str | None = None
    training: dict[str, Any] = field(default_factory=dict)  # steps, seconds, losses
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def headline(self) -> str:
        """One line: what happened and why."""
        if self.outcome == "promoted":
            return f"promoted {self.adapter}: {self.reason}"
        if self.outcome == "not_promoted":
            return f"trained {self.adapter}, not promoted: {self.reason}"
        return f"{self.outcome}: {self.reason}"

    def report(self) -> str:
        """The admins' message: the headline, then the metrics side by side."""
        lines = [f"Lore retraining {self.headline()}"]
        if self.outcome == "skipped":
            return lines[0]
        details = [f"new feedback items: {self.new_feedback}"]
        if self.dataset:
            details.append(f"dataset: {self.dataset}")
        if self.training:
            details.append(
                f"training: {self.training['steps']}/{self.training['total_steps']} steps in "
                f"{self.training['seconds']:.0f} s, validation loss {_num(self.training['validation_loss'])}"
            )
        lines.append("; ".join(details))
        sides = [("base", "base")]
        if "active" in self.scores:
            sides.append(("active", f"active {self.active} (stored)"))
        sides.append(("new", f"new {self.adapter}"))
        for metric in HEADLINE if self.scores else ():
            values = " · ".join(
                f"{label} {_num(self.scores[side].get(metric))}" for side, label in sides if side in self.scores
            )
            marker = " ← promote_metric" if metric == self.metric else ""
            lines.append(f"{metric}: {values}{marker}")
        lines.append(f"took {self.seconds:.0f} s")
        return "\n".join(lines)


class RetrainJob:
    """One retraining job over a running bot's services; `run` it as often as the schedule says.

    `evaluation_model` makes the model that measures the candidate; None measures with the
    services' own agent and model, which then answer nobody else for the while (the CLI). In
    `lore serve` it must be a model of its own: measuring switches adapters back and forth."""

    def __init__(
        self,
        services: RetrainingServices,
        *,
        min_feedback: int,
        training: TrainingSettings,
        notifiers: Sequence[AdminNotifier] = (),
        evaluation_model: Callable[[], Model] | None = None,
    ) -> None:
        self._services = services
        self._settings = services.settings
        self._min_feedback = min_feedback
        self._training = training
        self._notifiers = list(notifiers)
        self._evaluation_model = evaluation_model
        self._registry = adapter_registry(self._settings, services.database)
        self._folder = self._settings.home / "customize"
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop a run in progress at its next training step or evaluated question (and refuse
        later runs): for the bot's shutdown. Nothing is promoted by a cancelled run."""
        self._cancelled.set()

    def run(self) -> RetrainResult:
        """Retrain if enough new feedback arrived; never raises (a scheduled job must survive
        anything): a failure is a result, with the active adapter untouched."""
        started = time.perf_counter()
        try:
            with retrain_lock(self._folder / LOCK_FILE, self._settings.shared_database_url):
                result = self._run(started)
        except RetrainBusyError as error:
            result = self._result("skipped", str(error), 0, started)
        except Exception as error:  # reading the state or the feedback failed
            log.exception("Retraining failed before it started")
            result = self._result("failed", f"could not start: {error}", 0, started)
        level = logging.ERROR if result.outcome == "failed" else logging.INFO
        log.log(level, "Retraining %s (%.0f s)", result.headline(), result.seconds)
        notify(self._notifiers, result.report())
        return result

    def _run(self, started: float) -> RetrainResult:
        state = _read_state(self._folder / STATE_FILE)
        admins = frozenset(self._settings.customize.admins)
        stored = [item for item in self._services.feedback.list() if item.id is not None]
        newest = max((item.id for item in stored if item.id is not None), default=state.feedback_id)
        # Only feedback that may train counts toward a run: strangers' ratings of other
        # people's answers cannot start one.
        fresh = sum(
            1 for item in stored if item.id is not None and item.id > state.feedback_id and may_train(item, admins)
        )
        if fresh < self._min_feedback:
            return self._result(
                "skipped",
                f"only {fresh} new feedback item{'s' if fresh != 1 else ''} since the last retraining "
                f"(it needs {self._min_feedback})",
                fresh,
                started,
            )
        progress: dict[str, Any] = {}
        stage = "building the dataset"
        try:
            self._check_cancelled()
            dataset = self._build_dataset()
            progress["dataset"] = str(dataset)
            stage = "training"
            self._check_cancelled()
            name, progress["training"] = self._train(dataset)
            progress["adapter"] = name
            stage = "evaluating"
            record = self._evaluate(name, dataset)
            store_evaluation(self._registry, name, record)
            # Read now, not at the start: someone may have promoted another while this trained.
            progress["active"] = self._registry.active()
            progress["scores"] = self._scores(record, progress["active"])
            stage = "promoting"
            self._check_cancelled()
            outcome, reason = self._promote(name)
        except Exception as error:  # reported as the run's result
            if not isinstance(error, LoreError):
                log.exception("Retraining failed while %s", stage)
            return self._result("failed", f"{stage} failed: {error}", fresh, started, **progress)
        _write_state(self._folder / STATE_FILE, newest, outcome, name)
        return self._result(outcome, reason, fresh, started, **progress)

    def _build_dataset(self) -> Path:
        # The same inputs as `lore customize dataset` with no flags: one builder makes both.
        inputs = dataset_inputs(self._settings)
        teacher = open_teacher(self._settings.customize, self._settings.model.request_timeout_seconds)
        try:
            card = inputs.build(
                self._services.knowledge,
                self._settings.home / "datasets",
                feedback=self._services.feedback,
                answers=self._services.answers,
                teacher=teacher,
            )
        finally:
            if teacher is not None:
                teacher.close()
        return card.folder

    def _train(self, dataset: Path) -> tuple[str, dict[str, Any]]:
        from bot.model.weights import base_model_name

        def step(report: StepReport) -> None:
            self._check_cancelled()

        result = train_adapter(
            dataset,
            base_weights(self._settings),
            base_model_name(self._settings.model),
            self._registry,
            self._folder / "runs",
            self._training,
            on_step=step,
        )
        return result.adapter, {
            "steps": result.steps,
            "total_steps": result.total_steps,
            "seconds": round(result.seconds, 1),
            "train_loss": result.train_loss,
            "validation_loss": result.validation_loss,
            "stopped_early": result.stopped_early,
        }

    def _evaluate(self, name: str, dataset: Path) -> dict[str, Any]:
        questions = test_questions(dataset)
        model = self._evaluation_model() if self._evaluation_model is not None else None
        agent = self._services.agent if model is None else _agent_with_model(self._services.agent, model)
        try:
            reports = compare(agent, name, questions, lambda side, result: self._check_cancelled())
            record_writing(
                measured_writing(self._services.settings.home), agent.model.name, name, reports, len(questions)
            )
        finally:
            if model is not None:
                model.close()
        return evaluation_record(reports, dataset, len(questions))

    def _scores(self, record: dict[str, Any], active: str | None) -> dict[str, dict[str, float | None]]:
        scores = {"base": record["base"], "new": record["adapter"]}
        if active is not None:
            stored = (self._registry.info(active).metadata.get("evaluation") or {}).get("adapter")
            if stored:
                scores["active"] = {metric: stored.get(metric) for metric in HEADLINE}
        return scores

    def _promote(self, name: str) -> tuple[Outcome, str]:
        metric = self._settings.customize.promote_metric
        try:
            done = promote(self._registry, name, metric=metric)
        except PromotionError as refusal:
            return "not_promoted", str(refusal)
        return "promoted", (
            f"{metric} {_num(done.score)} beats {_num(done.beaten)} of {done.previous or 'the base model'}"
        )

    def _check_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise RetrainCancelled("the bot is shutting down; the next scheduled run starts over")

    def _result(self, outcome: Outcome, reason: str, fresh: int, started: float, **details: Any) -> RetrainResult:
        return RetrainResult(
            outcome=outcome,
            reason=reason,
            new_feedback=fresh,
            min_feedback=self._min_feedback,
            metric=self._settings.customize.promote_metric,
            seconds=time.perf_counter() - started,
            **details,
        )


def build_retrain_job(
    services: RetrainingServices,
    *,
    notifiers: Sequence[AdminNotifier],
    min_feedback: int | None = None,
    evaluation_model: Callable[[], Model] | None = None,
) -> RetrainJob:
    """The job `services.settings.customize` describes: its feedback threshold (unless
    `min_feedback` is given) and training budget; its result goes to `notifiers` (see
    `bot.platforms.admin_notices`)."""
    settings = services.settings
    customize = settings.customize
    return RetrainJob(
        services,
        min_feedback=customize.retrain_min_feedback if min_feedback is None else min_feedback,
        training=TrainingSettings(max_minutes=customize.retrain_max_minutes, device=settings.model.device),
        notifiers=notifiers,
        evaluation_model=evaluation_model,
    )


def retrain_trigger(settings: CustomizeSettings) -> CronTrigger:
    """The cron trigger of `customize.retrain_cron` (local time); ConfigurationError if invalid."""
    try:
        return CronTrigger.from_crontab(settings.retrain_cron)
    except ValueError as error:
        raise ConfigurationError(
            f"customize.retrain_cron {settings.retrain_cron!r} is not a valid crontab expression "
            f"({error}); use five fields, e.g. '0 3 * * *' for 03:00 every night."
        ) from error


def schedule_retrain(scheduler: BaseScheduler, job: RetrainJob, trigger: CronTrigger) -> Job:
    """Add (or replace) the retraining job on `scheduler`. A sync function: APScheduler's
    asyncio executor runs it in a worker thread, so training never blocks the event loop."""
    return scheduler.add_job(
        job.run,
        trigger=trigger,
        id=JOB_ID,
        name="retrain the adapter from new feedback",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
        replace_existing=True,
    )


def retrain_lock(path: Path, database_url: str | None = None) -> AbstractContextManager[object]:
    """The lock that keeps retraining runs from overlapping (in this process or another):
    an advisory lock in the PostgreSQL database at `database_url` (every machine sharing it),
    else a flock on `path`. RetrainBusyError names the holder's pid."""

    def busy(holder: str) -> RetrainBusyError:
        return RetrainBusyError(f"another retraining is running (pid {holder})")

    if database_url is not None:
        return AdvisoryLock(database_url, RETRAIN_LOCK, busy=busy)
    return RefreshLock(path, busy=busy)


@dataclass(frozen=True)
class _State:
    feedback_id: int = 0  # the newest feedback id the last finished run used


def _read_state(path: Path) -> _State:
    if not path.is_file():
        return _State()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return _State(feedback_id=int(data["feedback_id"]))
    except (ValueError, KeyError, TypeError) as error:
        raise LoreError(
            f"{path} is damaged ({error}): delete it, and the next run counts all feedback as new."
        ) from error


def _write_state(path: Path, feedback_id: int, outcome: Outcome, adapter: str) -> None:
    data = {
        "feedback_id": feedback_id,
        "finished": datetime.now(UTC).isoformat(),
        "outcome": outcome,
        "adapter": adapter,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2)
    os.replace(temporary, path)


def _agent_with_model(agent: Agent, model: Model) -> Agent:
    """The same agent (retrieval, prompt, settings, stores) answering with `model`: measuring
    switches `model`'s adapters without touching the one that answers users."""
    measuring = copy.copy(agent)
    measuring.model = model
    return measuring


def _num(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("n/a" if value is None else str(value))
