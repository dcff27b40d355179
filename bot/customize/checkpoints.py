"""A training run's folder and the finished adapter on disk: checkpoints that resume mid-epoch
(adapter weights, optimizer, schedule and random state), the best weights so far, the run's
`state.json`, and the adapter published to the registry's folder in one rename."""

from __future__ import annotations

import json
import logging
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.model.adapters import METADATA_FILE
from bot.private_files import make_private, private_folder
from knowledge.errors import LoreError

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
TRAINER_FILE = "trainer.pt"


class TrainingError(LoreError):
    """Training cannot start or continue."""


@dataclass
class RunState:
    step: int = 0
    best_loss: float | None = None
    best_step: int | None = None
    bad: int = 0
    train_loss: float | None = None
    losses: list[list[float]] = field(default_factory=list)
    validations: list[list[float]] = field(default_factory=list)
    seconds: float = 0.0  # spent up to the last checkpoint
    done: bool = False


def save_weights(model: Any, folder: Path) -> None:
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def load_weights(model: Any, folder: Path, device: Any) -> None:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(folder / "adapter_model.safetensors", device=str(device)))


def save_checkpoint(run: Path, model: Any, optimizer: Any, scheduler: Any, state: RunState) -> None:
    import torch

    partial = run / "checkpoint.partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            # Dropout on a GPU draws from the CUDA generators, not the CPU one.
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        },
        partial / TRAINER_FILE,
    )
    shutil.rmtree(run / "checkpoint", ignore_errors=True)
    partial.rename(run / "checkpoint")
    write_state(run, state)


def restore_checkpoint(run: Path, model: Any, optimizer: Any, scheduler: Any, device: Any) -> RunState:
    import torch

    state_file = run / STATE_FILE
    if not state_file.is_file() or not (run / "checkpoint" / TRAINER_FILE).is_file():
        log.info("No checkpoint to resume in %s; starting from the first step", run)
        return RunState()
    state = RunState(**json.loads(state_file.read_text(encoding="utf-8")))
    if state.done:
        raise TrainingError(
            f"The run in {run} already finished (its adapter is in the registry): "
            "train again without --resume to start a new one."
        )
    load_weights(model, run / "checkpoint", device)
    saved = torch.load(run / "checkpoint" / TRAINER_FILE, map_location=device, weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    random.setstate(saved["python_rng"])
    if saved.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    log.info("Resuming %s at step %d", run, state.step)
    return state


def write_state(run: Path, state: RunState) -> None:
    (run / STATE_FILE).write_text(json.dumps(asdict(state)), encoding="utf-8")


def publish_adapter(model: Any, adapters_dir: Path, name: str, metadata: dict[str, Any]) -> Path:
    private_folder(adapters_dir)
    # A dot-name is never listed by the registry; the rename makes the adapter appear whole.
    partial = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=adapters_dir))
    try:
        model.save_pretrained(partial)
        (partial / METADATA_FILE).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
        make_private(partial)  # the weights can repeat what they were trained on
        target = adapters_dir / name
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target
