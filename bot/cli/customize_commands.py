"""`lore customize dataset|train|eval|promote|list|rollback|export|retrain`: the customization
pipeline over what `lore index` built in LORE_HOME. `lore customize dataset && lore customize
train` is the whole recipe; `eval` measures the adapter against the base model, `promote` puts
it in service, `export` writes it for an OpenAI-compatible engine (llama.cpp, vLLM), `retrain`
runs all of it once as `lore serve`'s schedule does."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, Unpack

import click

from bot.settings import LoreSettings
from knowledge.errors import LoreError

if TYPE_CHECKING:
    from bot.model.adapters import AdapterRegistry


@click.group("customize")
def customize() -> None:
    """Build a training set from the documents and feedback, train a LoRA adapter, measure it, promote it."""


@customize.command("dataset")
@click.option(
    "--include-restricted",
    is_flag=True,
    help="Also use documents NOT readable by everyone (dangerous: the adapter may repeat them to anyone).",
)
@click.option("--redact-emails", is_flag=True, help="Also replace e-mail addresses (secrets are always redacted).")
@click.option("--redact-phones", is_flag=True, help="Also replace phone numbers.")
@click.option(
    "--curated",
    "curated",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An FAQ or glossary file (YAML or CSV), besides customize.curated_files; repeatable.",
)
@click.option("--no-feedback", is_flag=True, help="Leave the users' feedback out.")
@click.option(
    "--distractor-share",
    type=click.FloatRange(0.0, 0.9),
    default=0.05,
    show_default=True,
    help="Share of examples with only distractor passages and the 'not covered' reply (more teaches the adapter to refuse).",
)
@click.option(
    "--max-prompt-tokens",
    type=click.IntRange(min=128),
    default=None,
    help="Token budget of each example's prompt (default: the agent's, min(1024, the model's context window - model.max_new_tokens)).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the dataset card as JSON.")
@click.pass_obj
def dataset(
    settings: LoreSettings,
    include_restricted: bool,
    redact_emails: bool,
    redact_phones: bool,
    curated: tuple[Path, ...],
    no_feedback: bool,
    distractor_share: float,
    max_prompt_tokens: int | None,
    as_json: bool,
) -> None:
    """Build a training set under LORE_HOME/datasets/ from the indexed documents, curated files and feedback.

    With customize.teacher_base_url set, a teacher model also writes questions about every chunk used."""
    from bot.app import build_knowledge
    from bot.customize.inputs import DatasetChoices, dataset_inputs
    from bot.customize.teacher import open_teacher
    from bot.store.answers import AnswerLog
    from bot.store.database import Database
    from bot.store.feedback import FeedbackStore

    if include_restricted:
        click.secho(
            "WARNING: --include-restricted puts documents that not everyone may read into the training set; "
            "an adapter trained on it can repeat them to ANY employee.",
            fg="red",
            bold=True,
            err=True,
        )
    inputs = dataset_inputs(
        settings,
        DatasetChoices(
            include_restricted=include_restricted,
            redact_emails=redact_emails,
            redact_phones=redact_phones,
            distractor_share=distractor_share,
            max_prompt_tokens=max_prompt_tokens,
            curated=curated,
            use_feedback=not no_feedback,
        ),
    )
    teacher = open_teacher(settings.customize, settings.model.request_timeout_seconds)
    if include_restricted and teacher is not None:
        click.secho(
            f"WARNING: the restricted documents' text is also sent to the teacher model {teacher.name!r} "
            "(customize.teacher_base_url).",
            fg="red",
            bold=True,
            err=True,
        )
    knowledge = build_knowledge(settings)
    database = Database(settings.database)
    try:
        card = inputs.build(
            knowledge,
            settings.home / "datasets",
            feedback=FeedbackStore(database),
            answers=AnswerLog(database),
            teacher=teacher,
        )
    finally:
        knowledge.close()
        database.close()
        if teacher is not None:
            teacher.close()
    if as_json:
        click.echo(json.dumps(card.to_dict()))
        return
    click.echo(f"Dataset {card.folder}")
    click.echo(
        f"  examples: train {card.splits['train']}, validation {card.splits['validation']}, test {card.splits['test']}"
    )
    click.echo(f"  by kind: {_counts(card.by_kind)}; by folder: {_counts(card.by_folder)}")
    click.echo(
        f"  documents used: {card.documents['used']} (restricted left out: {card.documents['excluded_restricted']})"
    )
    click.echo(f"  redactions: {_counts(card.redactions) or 'none'}; gaps (👎 without a correction): {len(card.gaps)}")
    if card.teacher:
        counts = {key: value for key, value in card.teacher.items() if key != "model"}
        click.echo(f"  teacher {card.teacher['model']}: {_counts(counts)}")
    click.echo(f"  hash: {card.hash}")


class _TrainingOptions(TypedDict):
    """The `train` options that are `TrainingSettings` fields of the same name."""

    epochs: int
    max_steps: int | None
    learning_rate: float
    rank: int
    alpha: int
    dropout: float
    top_layers: int | None
    max_length: int
    batch_size: int
    gradient_accumulation: int
    checkpoint_every: int
    patience: int
    seed: int
    device: str
    max_minutes: float | None


@customize.command("train")
@click.option(
    "--dataset",
    "dataset_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Dataset folder (default: the newest under LORE_HOME/datasets).",
)
@click.option("--name", default=None, help="Adapter name (default: lore-<UTC time>).")
@click.option(
    "--resume", is_flag=True, help="Continue the interrupted run of this dataset and settings from its last checkpoint."
)
@click.option("--epochs", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after this many optimizer steps.")
@click.option("--learning-rate", type=float, default=3e-4, show_default=True)
@click.option("--rank", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--alpha", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--dropout", type=click.FloatRange(0.0, 0.9), default=0.05, show_default=True)
@click.option("--target-modules", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", show_default=True)
@click.option(
    "--top-layers",
    type=click.IntRange(min=1),
    default=None,
    help="Adapt only the last N decoder layers (faster steps; default: all).",
)
@click.option(
    "--max-length", type=click.IntRange(min=64), default=1280, show_default=True, help="Longest example in tokens."
)
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--gradient-accumulation", type=click.IntRange(min=1), default=4, show_default=True)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Optimizer steps between checkpoints and validations.",
)
@click.option(
    "--patience",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Validations without improvement before stopping.",
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option(
    "--max-minutes",
    type=click.FloatRange(min=0.01),
    default=None,
    help="Time budget: the run is shortened to fit it and stops there, keeping its best weights.",
)
@click.pass_obj
def train(
    settings: LoreSettings,
    /,
    dataset_dir: Path | None,
    name: str | None,
    resume: bool,
    target_modules: str,
    **hyper: Unpack[_TrainingOptions],
) -> None:
    """Train a LoRA adapter on the base model; it lands in LORE_HOME/adapters/ (not yet promoted)."""
    from bot.customize.dataset import latest_dataset
    from bot.customize.inputs import base_weights
    from bot.customize.training import TrainingSettings, train_adapter
    from bot.model.weights import base_model_name

    training = TrainingSettings(
        target_modules=tuple(m.strip() for m in target_modules.split(",") if m.strip()),
        **hyper,
    )
    result = train_adapter(
        dataset_dir or latest_dataset(settings.home / "datasets"),
        base_weights(settings),
        base_model_name(settings.model),
        _registry(settings),
        settings.home / "customize" / "runs",
        training,
        name=name,
        resume=resume,
        show_progress=True,
    )
    click.echo(
        f"Adapter {result.adapter} in {result.path}: {result.steps}/{result.total_steps} steps"
        f"{' (stopped early)' if result.stopped_early else ''}, train loss {_num(result.train_loss)}, "
        f"validation loss {_num(result.validation_loss)}, {result.seconds:.0f} s. "
        f"Next: `lore customize eval --adapter {result.adapter}`."
    )


@customize.command("eval")
@click.option("--adapter", default=None, help="Adapter to measure (default: the newest).")
@click.option(
    "--dataset",
    "dataset_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Dataset whose test split to ask (default: the adapter's).",
)
@click.option(
    "--questions",
    "questions_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Also ask these `lore eval` questions (e.g. unanswerable ones).",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N test questions.")
@click.option("--json", "as_json", is_flag=True, help='Print {"base": {...}, "adapter": {...}}.')
@click.pass_obj
def evaluate(
    settings: LoreSettings,
    adapter: str | None,
    dataset_dir: Path | None,
    questions_file: Path | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Base model vs adapter on the held-out test split, same retrieval; the result is kept in the adapter's lore.json."""
    from bot.app import build_services
    from bot.core.evaluation import load_questions
    from bot.customize.chart import CHART_FILE, save_evaluation_chart
    from bot.customize.dataset import latest_dataset
    from bot.customize.evaluate import (
        HEADLINE,
        MODEL_VIEW,
        compare,
        evaluation_record,
        record_writing,
        test_questions,
    )
    from bot.customize.promotion import store_evaluation
    from bot.model.writing import measured_writing

    registry = _registry(settings)
    name = adapter or _newest(registry)
    if dataset_dir is None:
        recorded = (registry.info(name).metadata.get("dataset") or {}).get("path")
        dataset_dir = (
            Path(recorded) if recorded and Path(recorded).is_dir() else latest_dataset(settings.home / "datasets")
        )
    questions = test_questions(dataset_dir)[:limit]
    if questions_file is not None:
        questions += load_questions(questions_file)
    services = build_services(settings)
    try:
        if services.knowledge.status().documents == 0:
            raise LoreError("The index is empty: run `lore index` first.")
        with click.progressbar(length=2 * len(questions), label="Asking", file=sys.stderr) as bar:
            reports = compare(services.agent, name, questions, lambda side, result: bar.update(1))
        record_writing(measured_writing(settings.home), services.model.name, name, reports, len(questions))
    finally:
        services.close()
    record = evaluation_record(reports, dataset_dir, len(questions))
    store_evaluation(registry, name, record)
    chart = save_evaluation_chart(registry.info(name).metadata, registry.path(name) / CHART_FILE, name)
    if as_json:
        click.echo(json.dumps({"base": record["base"], "adapter": record["adapter"]}))
        click.echo(f"Chart: {chart}", err=True)  # stdout stays the JSON
        return
    click.echo(f"{'':26}{'base':>10}{name:>28}")
    for metric in (*HEADLINE, *MODEL_VIEW):
        click.echo(f"{metric:26}{_num(record['base'][metric]):>10}{_num(record['adapter'][metric]):>28}")
    click.echo(f"Chart: {chart}")


@customize.command("promote")
@click.argument("name", required=False)
@click.option("--force", is_flag=True, help="Promote even if it does not beat the active model.")
@click.option(
    "--metric",
    type=click.Choice(["answer_accuracy", "citation_accuracy", "abstention"]),
    default="answer_accuracy",
    show_default=True,
)
@click.pass_obj
def promote_command(settings: LoreSettings, name: str | None, force: bool, metric: str) -> None:
    """Make adapter NAME (default: the newest) answer, if it beats the active model on METRIC."""
    from bot.customize.promotion import promote
    from bot.model import BACKENDS

    registry = _registry(settings)
    done = promote(registry, name or _newest(registry), metric=metric, force=force)
    note = " (forced)" if done.forced else ""
    click.echo(
        f"Promoted {done.name}{note}: {metric} {_num(done.score)} vs {_num(done.beaten)} before (was: {done.previous or 'base'})."
    )
    click.echo("A running `lore serve` answers with it from its next answer (unless model.adapter pins one).")
    if not BACKENDS[settings.model.backend].uses_adapter_registry:  # the server loads adapters, not Lore
        click.echo(
            f"For the {settings.model.backend} backend, serve it on the engine (vLLM: `--enable-lora --lora-modules {done.name}={registry.path(done.name)}`; "
            f"llama.cpp: `lore customize export {done.name} --format gguf --out DIR`) and set model.adapter = {done.name!r}."
        )


@customize.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the adapters as JSON, oldest first.")
@click.pass_obj
def list_command(settings: LoreSettings, as_json: bool) -> None:
    """The adapters, oldest first, with their metrics; * marks the active one."""
    from bot.customize.promotion import list_adapters

    adapters = list_adapters(_registry(settings))
    if as_json:
        click.echo(json.dumps([a.to_dict() for a in adapters]))
        return
    if not adapters:
        click.echo("No adapters yet: run `lore customize dataset && lore customize train`.")
    for item in adapters:
        evaluation = item.metrics.get("evaluation", {}).get("adapter", {})
        click.echo(
            f"{'*' if item.active else ' '} {item.name}  {item.created or '?'}  "
            f"val loss {_num(item.metrics.get('validation_loss'))}  answer acc {_num(evaluation.get('answer_accuracy'))}"
        )


@customize.command("rollback")
@click.pass_obj
def rollback_command(settings: LoreSettings) -> None:
    """Return to the model that answered before the last promotion."""
    from bot.customize.promotion import rollback

    previous = rollback(_registry(settings))
    click.echo(f"Rolled back: {previous or 'the base model'} answers now.")


@customize.command("export")
@click.argument("name", required=False)
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["gguf", "peft"]),
    default="gguf",
    show_default=True,
    help="gguf: one file for llama.cpp (llama-server --lora); peft: the adapter folder for vLLM (--lora-modules).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write <NAME>.gguf or <NAME>/ into.",
)
@click.pass_obj
def export_command(settings: LoreSettings, name: str | None, export_format: str, out_dir: Path) -> None:
    """Write adapter NAME (default: the newest) in the format an OpenAI-compatible engine serves it from (see docs/model-serving.md)."""
    from bot.customize.export import export_adapter
    from bot.customize.inputs import base_weights
    from bot.model.weights import base_model_name

    registry = _registry(settings)
    chosen = name or _newest(registry)
    exported = export_adapter(
        registry,
        chosen,
        base_weights(settings),
        base_model_name(settings.model),
        "gguf" if export_format == "gguf" else "peft",
        out_dir,
    )
    click.echo(f"Wrote adapter {chosen} to {exported.path}.")
    if exported.format == "gguf":
        click.echo(
            f"Serve it with llama.cpp on the base model's GGUF: a llama_cpp.server config entry with "
            f"model_alias {chosen!r} and lora_path {str(exported.path)!r}, or `llama-server -m BASE.gguf "
            f'--lora {exported.path}`; then set model.backend = "openai" and model.adapter = {chosen!r} '
            "(docs/model-serving.md)."
        )
    else:
        click.echo(
            f"Serve it with vLLM: `vllm serve BASE --enable-lora --lora-modules {chosen}={exported.path}`; "
            f'then set model.backend = "openai" and model.adapter = {chosen!r} (docs/model-serving.md).'
        )


def _registry(settings: LoreSettings) -> AdapterRegistry:
    from bot.adapter_registry import adapter_registry

    return adapter_registry(settings)


def _newest(registry: AdapterRegistry) -> str:
    names = registry.list()
    if not names:
        raise LoreError("No adapters yet: run `lore customize dataset && lore customize train`.")
    return names[-1]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counts.items()))


def _num(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("n/a" if value is None else str(value))


@customize.command("retrain")
@click.option(
    "--min-feedback",
    type=click.IntRange(min=0),
    default=None,
    help="Retrain only if at least N feedback items arrived since the last retraining (default: customize.retrain_min_feedback; 0: retrain now).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def retrain_command(settings: LoreSettings, min_feedback: int | None, as_json: bool) -> None:
    """What `lore serve` runs on customize.retrain_cron, once: dataset, train, eval, and promote if it beats the active model; the result also goes to the admin channel."""
    from bot.app import build_services
    from bot.customize.inputs import evaluation_model
    from bot.customize.retrain import build_retrain_job
    from bot.platforms.admin_notices import admin_notifiers

    # The measuring model is the services' own: this process answers nobody else.
    services = build_services(settings, model=evaluation_model(settings))
    try:
        if services.knowledge.status().documents == 0:
            raise LoreError("The index is empty: run `lore index` first.")
        job = build_retrain_job(services, notifiers=admin_notifiers(settings), min_feedback=min_feedback)
        result = job.run()
    finally:
        services.close()
    click.echo(json.dumps(result.to_dict()) if as_json else result.report())
    if result.outcome == "failed":
        raise SystemExit(1)
