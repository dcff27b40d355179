"""`lore customize train`: a LoRA adapter (peft) trained on a dataset's train split.

A short manual loop rather than transformers' Trainer: the run needs exactly four things done
its way (loss on answer tokens only, checkpoints that resume mid-epoch with optimizer, schedule
and random state, early stopping on validation loss, a versioned adapter written atomically
with Lore's metadata), and each of them is a few lines here but a callback, a subclass or an
argument that changes between transformers releases there.

Runs live in `<runs_dir>/<key>/` (key: dataset, base model and hyperparameters), holding
`checkpoint/` (the latest adapter weights and `trainer.pt`), `best/` (the weights with the
lowest validation loss) and `state.json` (see `bot.customize.checkpoints`). The finished adapter goes to the registry's folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.customize.checkpoints import (
    RunState,
    TrainingError,
    load_weights,
    publish_adapter,
    restore_checkpoint,
    save_checkpoint,
    save_weights,
    write_state,
)
from bot.customize.dataset import DatasetCard, load_examples
from bot.customize.tokenize import IGNORE, ExampleTokenizer, TokenizedExample
from bot.model.adapters import AdapterRegistry
from bot.model.weights import base_model_fingerprint
from bot.private_files import private_folder
from knowledge.errors import ConfigurationError

log = logging.getLogger(__name__)

TIME_PROBE_STEPS = 5  # steps timed before a time budget first plans the run
TIME_BUDGET_MARGIN = 0.95  # share of the time left planned for steps (the pace includes validations)


@dataclass(frozen=True)
class TrainingSettings:
    """Hyperparameters. The defaults suit the bundled 135M model on 2 CPU cores (about
    4 s per 500-token example there)."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )
    # LoRA only in the last N decoder layers (None: all). Backpropagation then stops at the
    # lowest adapted layer, so each step costs less and more examples fit a time budget.
    top_layers: int | None = None
    learning_rate: float = 3e-4
    epochs: int = 2
    max_steps: int | None = None  # optimizer steps; caps epochs when set
    max_length: int = 1280  # tokens of prompt plus answer; longer examples are skipped
    batch_size: int = 1  # examples per forward pass
    gradient_accumulation: int = 4  # forward passes per optimizer step
    warmup_steps: int = 5
    checkpoint_every: int = 20  # optimizer steps between checkpoints (and validations)
    patience: int = 3  # validations without improvement before stopping early
    max_validation_examples: int = 48
    seed: int = 42
    device: str = "auto"
    # Wall-clock budget: after the first steps the run is shortened to fit it (so the learning
    # rate still decays to zero), and it stops at the budget, keeping its best weights.
    max_minutes: float | None = None

    def key(self) -> str:
        """A short hash of the settings that change what is learned (not the device, nor the
        time budget, so an interrupted run resumes on another machine)."""
        values = asdict(self)
        values.pop("device")
        values.pop("max_minutes")
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class StepReport:
    step: int
    total_steps: int
    loss: float
    learning_rate: float
    validation_loss: float | None  # set on the steps that validate


@dataclass(frozen=True)
class TrainingResult:
    adapter: str
    path: Path
    steps: int
    total_steps: int
    train_loss: float | None  # mean over the last checkpoint interval
    validation_loss: float | None  # the best one; its weights are the adapter's
    stopped_early: bool
    resumed_from: int  # the step a resumed run started at (0: from scratch)
    seconds: float
    examples: int
    skipped_too_long: int
    metadata: dict[str, Any] = field(default_factory=dict)


def train_adapter(
    dataset: Path,
    base_folder: Path,
    base_name: str,
    registry: AdapterRegistry,
    runs_dir: Path,
    settings: TrainingSettings = TrainingSettings(),
    *,
    name: str | None = None,
    resume: bool = False,
    on_step: Callable[[StepReport], None] | None = None,
    show_progress: bool = False,
    now: datetime | None = None,
) -> TrainingResult:
    """Train a LoRA adapter for the model in `base_folder` on the dataset in `dataset` and add it
    to `registry` as `name` (default `lore-<UTC time>`). With `resume`, continue the matching
    interrupted run from its last checkpoint; without, such a run starts over."""
    started = time.perf_counter()
    run = _plan_run(dataset, base_folder, registry, runs_dir, settings, name, resume, now or datetime.now(UTC))
    session = _load_session(run, base_folder, settings, resume)
    ending = _train_loop(session, run.folder, settings, started, on_step, show_progress)
    return _publish(run, session, ending, base_name, base_folder, registry, settings, started)


@dataclass(frozen=True)
class _Run:
    """Where a run lives and what it publishes, decided before any weights are loaded."""

    dataset: Path
    card: DatasetCard
    fingerprint: str  # the base model's
    folder: Path  # <runs_dir>/<key>: checkpoints, best weights, state
    name: str  # the adapter's
    created: datetime


@dataclass
class _Session:
    """A loaded run: the model, its data, optimizer and progress."""

    model: Any
    device: Any
    train: list[TokenizedExample]
    validation: list[TokenizedExample]
    skipped_too_long: int
    pad: int
    schedule: list[list[int]]  # micro-batches of every epoch, in order
    planned_steps: int  # before any time budget
    plan: _Plan
    trainable: list[Any]
    optimizer: Any
    scheduler: Any
    state: RunState
    resumed_from: int
    earlier: float  # seconds spent before an interruption


@dataclass(frozen=True)
class _Ending:
    stopped_early: bool
    out_of_time: bool


def _plan_run(
    dataset: Path,
    base_folder: Path,
    registry: AdapterRegistry,
    runs_dir: Path,
    settings: TrainingSettings,
    name: str | None,
    resume: bool,
    created: datetime,
) -> _Run:
    """The run's folder (emptied unless resuming) and the adapter's name (free in `registry`)."""
    card = DatasetCard.read(dataset)
    fingerprint = base_model_fingerprint(base_folder)
    folder = runs_dir / f"{card.hash[:12]}-{fingerprint[:8]}-{settings.key()}"
    if not resume and folder.exists():
        shutil.rmtree(folder)
    private_folder(folder)  # checkpoints are adapters too
    if name is None:  # two runs within one second (tests, a quick retry) get -2, -3, ...
        stamp = f"lore-{created.strftime('%Y%m%d-%H%M%S')}"
        name = next(
            n for n in (stamp, *(f"{stamp}-{i}" for i in range(2, 1000))) if not (registry.directory / n).exists()
        )
    if (registry.directory / name).exists():
        raise ConfigurationError(f"An adapter named {name!r} already exists: choose another --name.")
    return _Run(dataset, card, fingerprint, folder, name, created)


def _load_session(run: _Run, base_folder: Path, settings: TrainingSettings, resume: bool) -> _Session:
    """The base model with fresh LoRA weights (or the checkpoint's, resuming), the tokenized
    splits, the step plan, optimizer and schedule."""
    import torch

    _seed_everything(settings.seed)
    device = _device(settings.device)
    tokenizer, model = _load(base_folder, settings, device)
    encoder = ExampleTokenizer(tokenizer)
    train, skipped = _encode(encoder, load_examples(run.dataset, "train"), settings.max_length)
    validation, _ = _encode(encoder, load_examples(run.dataset, "validation"), settings.max_length)
    if not train:
        raise TrainingError(
            f"The train split of {run.dataset} has no example within {settings.max_length} tokens: "
            "raise --max-length or build the dataset with a smaller prompt budget."
        )
    schedule = _micro_batches(len(train), settings)
    planned_steps = math.ceil(len(schedule) / settings.gradient_accumulation)
    if settings.max_steps is not None:
        planned_steps = min(planned_steps, settings.max_steps)
    plan = _Plan(planned_steps)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(settings.warmup_steps, plan))
    state = restore_checkpoint(run.folder, model, optimizer, scheduler, device) if resume else RunState()
    return _Session(
        model=model,
        device=device,
        train=train,
        validation=validation[: settings.max_validation_examples],
        skipped_too_long=skipped,
        pad=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        schedule=schedule,
        planned_steps=planned_steps,
        plan=plan,
        trainable=trainable,
        optimizer=optimizer,
        scheduler=scheduler,
        state=state,
        resumed_from=state.step,
        earlier=state.seconds,
    )


def _train_loop(
    session: _Session,
    run: Path,
    settings: TrainingSettings,
    started: float,
    on_step: Callable[[StepReport], None] | None,
    show_progress: bool,
) -> _Ending:
    """Optimizer steps until the plan, early stopping or the time budget ends the run;
    validates and checkpoints every `checkpoint_every` steps and at the end."""
    model, state, plan = session.model, session.state, session.plan
    model.train()
    window: list[float] = []
    stopped_early = out_of_time = False
    validation_seconds = 0.0
    budget = settings.max_minutes * 60 if settings.max_minutes is not None else None
    with _progress_bar(show_progress, plan.total_steps, state.step) as advance:
        while state.step < plan.total_steps and not stopped_early and not out_of_time:
            step_loss = _optimizer_step(session, settings)
            window.append(step_loss)
            state.losses.append([state.step, round(step_loss, 5)])
            if budget is not None:
                spent = time.perf_counter() - started
                # The last validation's length is kept in hand for the one that ends the run.
                out_of_time = spent + validation_seconds >= budget
                done_here = state.step - session.resumed_from
                if done_here == TIME_PROBE_STEPS or (
                    done_here > TIME_PROBE_STEPS and state.step % settings.checkpoint_every == 0
                ):
                    # The pace so far (validations included) decides how many steps fit; the
                    # first estimate is refined at every checkpoint, in either direction.
                    plan.fit(state.step, spent / done_here, budget - spent)
            validation_loss = None
            if state.step % settings.checkpoint_every == 0 or state.step == plan.total_steps or out_of_time:
                if session.validation:
                    validating = time.perf_counter()
                    validation_loss = _validation_loss(
                        model, session.validation, session.pad, session.device, settings.batch_size
                    )
                    validation_seconds = time.perf_counter() - validating
                    state.validations.append([state.step, round(validation_loss, 5)])
                    if state.best_loss is None or validation_loss < state.best_loss - 1e-4:
                        state.best_loss, state.best_step, state.bad = validation_loss, state.step, 0
                        save_weights(model, run / "best")
                    else:
                        state.bad += 1
                        stopped_early = state.bad >= settings.patience
                state.train_loss = sum(window) / len(window)
                state.seconds = session.earlier + time.perf_counter() - started
                window = []
                save_checkpoint(run, model, session.optimizer, session.scheduler, state)
            advance(step_loss, validation_loss, plan.total_steps)
            if on_step is not None:
                on_step(
                    StepReport(
                        state.step, plan.total_steps, step_loss, session.scheduler.get_last_lr()[0], validation_loss
                    )
                )
    return _Ending(stopped_early, out_of_time)


def _optimizer_step(session: _Session, settings: TrainingSettings) -> float:
    """One optimizer step over the next `gradient_accumulation` micro-batches; its mean loss."""
    import torch

    first = session.state.step * settings.gradient_accumulation
    batches = session.schedule[first : first + settings.gradient_accumulation]
    session.optimizer.zero_grad(set_to_none=True)
    losses = []
    for indices in batches:
        inputs = _collate([session.train[i] for i in indices], session.pad, session.device)
        loss = _answer_loss(session.model, inputs) / len(batches)
        loss.backward()
        losses.append(loss.item() * len(batches))
    torch.nn.utils.clip_grad_norm_(session.trainable, 1.0)
    session.optimizer.step()
    session.scheduler.step()
    session.state.step += 1
    return float(sum(losses) / len(losses))


def _publish(
    run: _Run,
    session: _Session,
    ending: _Ending,
    base_name: str,
    base_folder: Path,
    registry: AdapterRegistry,
    settings: TrainingSettings,
    started: float,
) -> TrainingResult:
    """The best weights, with Lore's metadata, into the registry as `run.name`; the run is
    marked done."""
    state = session.state
    if state.best_step is not None and (run.folder / "best").is_dir():
        load_weights(session.model, run.folder / "best", session.device)
    seconds = session.earlier + time.perf_counter() - started
    metadata = {
        "base_model": base_name,
        "base_model_path": str(base_folder),
        "base_model_hash": run.fingerprint,
        "created": run.created.isoformat(),
        "dataset": {"path": str(run.dataset.resolve()), "hash": run.card.hash, "splits": run.card.splits},
        "hyperparameters": {**asdict(settings), "target_modules": list(settings.target_modules)},
        "metrics": {
            "train_loss": state.train_loss,
            "validation_loss": state.best_loss,
            "best_step": state.best_step,
            "steps": state.step,
            "total_steps": session.plan.total_steps,
            "planned_steps": session.planned_steps,
            "stopped_early": ending.stopped_early,
            "stopped_for_time": ending.out_of_time,
            "train_examples": len(session.train),
            "skipped_too_long": session.skipped_too_long,
            "seconds": round(seconds, 2),
        },
        "loss_curve": state.losses,
        "validation_curve": state.validations,
        "device": str(session.device),
    }
    path = publish_adapter(session.model, registry.directory, run.name, metadata)
    state.done = True
    write_state(run.folder, state)
    log.info(
        "Trained adapter %s: %d steps, train loss %s, validation loss %s, %.0f s",
        run.name,
        state.step,
        _fmt(state.train_loss),
        _fmt(state.best_loss),
        seconds,
    )
    return TrainingResult(
        adapter=run.name,
        path=path,
        steps=state.step,
        total_steps=session.plan.total_steps,
        train_loss=state.train_loss,
        validation_loss=state.best_loss,
        stopped_early=ending.stopped_early,
        resumed_from=session.resumed_from,
        seconds=seconds,
        examples=len(session.train),
        skipped_too_long=session.skipped_too_long,
        metadata=metadata,
    )


def _load(base_folder: Path, settings: TrainingSettings, device: Any) -> tuple[Any, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_folder)
    base = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
    present = {name.rsplit(".", 1)[-1] for name, _ in base.named_modules()}
    targets = [module for module in settings.target_modules if module in present]
    if not targets:
        raise ConfigurationError(
            f"None of the target modules {list(settings.target_modules)} exist in {base_folder}: "
            f"pick some of {sorted(m for m in present if m.endswith('proj'))} with --target-modules."
        )
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets,
        layers_to_transform=_top_layers(base, settings.top_layers),
        task_type="CAUSAL_LM",
    )
    return tokenizer, get_peft_model(base, config).to(device)


def _top_layers(model: Any, count: int | None) -> list[int] | None:
    """The indices of the last `count` decoder layers (None: every layer)."""
    if count is None:
        return None
    total = int(model.config.num_hidden_layers)
    if not 1 <= count <= total:
        raise ConfigurationError(f"top_layers must be between 1 and {total} (the model's layer count), not {count}.")
    return list(range(total - count, total))


def _encode(encoder: ExampleTokenizer, examples: Sequence[Any], max_length: int) -> tuple[list[TokenizedExample], int]:
    encoded = [encoder.encode(example) for example in examples]
    kept = [e for e in encoded if len(e.input_ids) <= max_length]
    return kept, len(encoded) - len(kept)


def _micro_batches(count: int, settings: TrainingSettings) -> list[list[int]]:
    """Every epoch's shuffled order (seeded: a resumed run sees the same order), in batches."""
    rng = random.Random(settings.seed)
    batches: list[list[int]] = []
    for _ in range(settings.epochs):
        order = list(range(count))
        rng.shuffle(order)
        batches.extend(order[i : i + settings.batch_size] for i in range(0, count, settings.batch_size))
    return batches


def _collate(items: Sequence[TokenizedExample], pad: int, device: Any) -> dict[str, Any]:
    import torch

    width = max(len(item.input_ids) for item in items)
    ids = [list(item.input_ids) + [pad] * (width - len(item.input_ids)) for item in items]
    labels = [list(item.labels) + [IGNORE] * (width - len(item.labels)) for item in items]
    mask = [[1] * len(item.input_ids) + [0] * (width - len(item.input_ids)) for item in items]
    return {
        "input_ids": torch.tensor(ids, device=device),
        "attention_mask": torch.tensor(mask, device=device),
        "labels": torch.tensor(labels, device=device),
    }


def _answer_loss(model: Any, inputs: dict[str, Any]) -> Any:
    """Mean cross-entropy over the answer tokens (labels not IGNORE), as the model's own loss
    computes it, but with the vocabulary projection run only for the positions from the first
    answer token on: the prompt is most of each example, and its logits were thrown away."""
    import torch

    labels = inputs["labels"]
    answer = (labels != IGNORE).any(dim=0).nonzero()
    first = int(answer[0]) if len(answer) else labels.shape[1] - 1
    keep = labels.shape[1] - first + 1  # the logit at position p predicts token p + 1
    output = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], logits_to_keep=keep)
    logits = output.logits[:, :-1, :].float()
    targets = labels[:, labels.shape[1] - keep + 1 :]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE
    )


def _validation_loss(model: Any, items: Sequence[TokenizedExample], pad: int, device: Any, batch: int) -> float:
    import torch

    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(items), batch):
            part = items[start : start + batch]
            count = sum(item.answer_tokens for item in part)
            total += _answer_loss(model, _collate(part, pad, device)).item() * count
            tokens += count
    model.train()
    return total / max(tokens, 1)


@dataclass
class _Plan:
    """How many optimizer steps the run will take: `planned` (epochs, max_steps), or fewer when
    a time budget allows fewer."""

    planned: int
    total_steps: int = 0

    def __post_init__(self) -> None:
        self.total_steps = self.total_steps or self.planned

    def fit(self, step: int, seconds_per_step: float, seconds_left: float) -> None:
        """Plan the steps that fit in `seconds_left` at `seconds_per_step` (with a margin),
        at most `planned` and never below the next step."""
        affordable = step + int(seconds_left * TIME_BUDGET_MARGIN / max(seconds_per_step, 1e-6))
        fitted = max(step + 1, min(self.planned, affordable))
        if fitted != self.total_steps:
            log.info("Time budget: training planned for %d steps (was %d)", fitted, self.total_steps)
            self.total_steps = fitted


def _lr_lambda(warmup: int, plan: _Plan) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (plan.total_steps - step) / max(1, plan.total_steps - warmup))

    return factor


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def _device(choice: str) -> Any:
    import torch

    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigurationError("--device cuda was asked for but no CUDA GPU is available: use auto or cpu.")
    return torch.device(choice)


@contextmanager
def _progress_bar(show: bool, total: int, done: int) -> Iterator[Callable[[float, float | None, int], None]]:
    if not show:
        yield lambda loss, validation, total: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[loss]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ) as bar:
        task = bar.add_task("training", total=total, completed=done, loss="")

        def advance(loss: float, validation: float | None, total: int) -> None:
            text = f"loss {loss:.3f}" + (f" val {validation:.3f}" if validation is not None else "")
            bar.update(task, advance=1, total=total, loss=text)

        yield advance


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
