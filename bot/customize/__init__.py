"""Customization: turn the company's documents and feedback into a LoRA adapter, measured.

dataset (derive → retrieve → prompt → redact → split) → train (peft LoRA) → evaluate (base vs
adapter on the test split) → promote / rollback. The CLI over it is `lore customize`; it and
the retraining job take their inputs from `bot.customize.inputs`."""

from bot.customize.dataset import (
    DatasetCard,
    DatasetOptions,
    build_dataset,
    latest_dataset,
    load_examples,
)
from bot.customize.evaluate import compare, test_questions
from bot.customize.examples import Example
from bot.customize.inputs import DatasetChoices, DatasetInputs, dataset_inputs
from bot.customize.promotion import list_adapters, promote, rollback, store_evaluation
from bot.customize.redaction import Redactor
from bot.customize.training import TrainingResult, TrainingSettings, train_adapter

__all__ = [
    "DatasetCard",
    "DatasetChoices",
    "DatasetInputs",
    "DatasetOptions",
    "Example",
    "Redactor",
    "TrainingResult",
    "TrainingSettings",
    "build_dataset",
    "compare",
    "dataset_inputs",
    "latest_dataset",
    "list_adapters",
    "load_examples",
    "promote",
    "rollback",
    "store_evaluation",
    "test_questions",
    "train_adapter",
]
