"""Every backend implements the whole `Model` protocol, `close()` included, and the backends
are chosen from one table that covers every `model.backend` setting."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from bot.model import BACKENDS, load_model
from bot.model.active_adapter import FollowActiveAdapter
from bot.model.base import Model
from bot.model.lazy import LazyModel
from bot.model.local import LocalModel
from bot.model.openai_backend import OpenAIModel
from bot.settings import ModelSettings
from tests.core.doubles import ScriptedModel

PROTOCOL_MEMBERS = {name for name in vars(Model) if not name.startswith("_")}


@pytest.mark.parametrize("backend", [LocalModel, OpenAIModel, LazyModel, FollowActiveAdapter])
def test_every_backend_implements_every_member_of_the_model_protocol(backend: type) -> None:
    assert "close" in PROTOCOL_MEMBERS
    assert {name for name in PROTOCOL_MEMBERS if not hasattr(backend, name)} == set()


def test_the_backend_table_covers_every_backend_setting() -> None:
    assert set(BACKENDS) == set(get_args(ModelSettings.model_fields["backend"].annotation))


def test_the_openai_backend_is_loaded_from_the_table_and_closes(tmp_path: Path) -> None:
    model = load_model(ModelSettings(backend="openai", openai_base_url="http://127.0.0.1:9/v1"), tmp_path)
    assert isinstance(model, OpenAIModel)
    model.close()
    model.close()  # twice is harmless


def test_a_lazy_model_never_loaded_closes_without_loading() -> None:
    loads: list[int] = []
    model = LazyModel(lambda: loads.append(1) or ScriptedModel("hi"), "scripted", None)
    model.close()
    assert loads == []


def test_a_lazy_model_closes_the_model_it_loaded() -> None:
    class Closing(ScriptedModel):
        closed = 0

        def close(self) -> None:
            self.closed += 1

    inner = Closing("hello there")
    model = LazyModel(lambda: inner, "scripted", None)
    assert "".join(model.stream([])) == "hello there"
    model.close()
    assert inner.closed == 1
