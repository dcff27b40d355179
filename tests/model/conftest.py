"""Fixtures for the model runtime tests: the tiny random model, loaded once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from bot.model.local import LocalModel
from tests.support.tiny_model import build_tiny_model


@pytest.fixture(scope="module", autouse=True)
def single_torch_thread() -> Iterator[None]:
    """One intra-op thread: the tiny model's operations are too small to split, and on a busy
    2-core machine spinning OpenMP workers make generation ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def tiny_model(tiny_folder: Path) -> Iterator[LocalModel]:
    """A shared tiny model; tests that change its adapter or queue build their own."""
    with LocalModel(tiny_folder, name="tiny") as model:
        yield model
