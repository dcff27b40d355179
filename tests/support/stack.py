"""The whole bot for tests: a real KnowledgeBase (real MiniLM, real embedded Chroma, indexed)
over a small docs folder, the tiny random model (or one given), and SQLite, built by the same
`build_services` the bot uses. The Slack and Teams tests answer through it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from bot.app import Services, build_services
from bot.model.base import Model
from bot.settings import SAMPLE_DOCS, AgentSettings, LoreSettings, ModelSettings, PermissionSettings
from knowledge.config import FolderSourceSettings
from tests.support.tiny_model import build_tiny_model

# Enough tokens to exercise streaming; the tiny model's text is gibberish anyway.
TEST_MAX_NEW_TOKENS = 24


def build_test_services(
    tmp_path: Path,
    model: Model | None = None,
    docs: Path | None = None,
    *,
    acl_file: Path | None = None,
    directory_file: Path | None = None,
    channel_audiences: dict[str, str] | None = None,
    max_new_tokens: int = TEST_MAX_NEW_TOKENS,
    generate: Literal["auto", "always", "never"] = "auto",
) -> Services:
    """Services over `docs` (default: the bundled sample handbook), indexed and ready to answer.
    `acl_file`, `directory_file` and `channel_audiences` set up document permissions (none:
    every document is readable by everyone). A small `max_new_tokens` makes answers faster.

    Without `model`, the tiny random model from `tests/support/tiny_model.py` answers (its text
    fails the grounding check, so answers carry the quoted evidence). `generate`: whether the
    model writes (`agent.generate`; "auto": only once measured, so by default it does not and
    answers are the excerpts). The caller closes the
    services (`services.close()`, or `knowledge.close()` and `database.close()`)."""
    model_settings = ModelSettings(max_new_tokens=max_new_tokens)
    if model is None:
        model_settings = model_settings.model_copy(update={"base_model": build_tiny_model(tmp_path / "tiny-model")})
    settings = LoreSettings(
        home=tmp_path / "home",
        # Without an ACL file the test documents are public, as the docstring says.
        sources=[
            FolderSourceSettings(name="handbook", path=docs or SAMPLE_DOCS, permissions=None if acl_file else "public")
        ],
        model=model_settings,
        acl_file=acl_file,
        directory_file=directory_file,
        permissions=PermissionSettings(channel_audiences=channel_audiences or {}),
        agent=AgentSettings(generate=generate),
    )
    services = build_services(settings, model=model)
    try:
        services.knowledge.refresh()
    except BaseException:
        services.close()
        raise
    return services
