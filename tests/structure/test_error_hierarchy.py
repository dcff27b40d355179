"""Every error Lore raises on purpose is a `LoreError` (one root, like httpx's), so the CLI
and the adapters can render any of them in one place."""

from __future__ import annotations

import ast
import importlib

from bot.errors import BusyError, ModelEndpointError, ModelError, ModelNotFoundError
from knowledge import errors as knowledge_errors
from knowledge.errors import ConfigurationError, KnowledgeError, LoreError
from tests.structure.source_tree import modules

# Exception classes still outside the tree, in files another part of #15 rewrites
# (bot/customize/*); take a name off this list when its file joins the tree.


def exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in bot/ and knowledge/, by dotted name."""
    found: dict[str, type[BaseException]] = {}
    for module in modules():
        names = [node.name for node in ast.walk(module.tree) if isinstance(node, ast.ClassDef)]
        if not names:
            continue
        imported = importlib.import_module(module.name)
        for name in names:
            candidate = getattr(imported, name, None)
            if isinstance(candidate, type) and issubclass(candidate, BaseException):
                found[f"{module.name}.{name}"] = candidate
    return found


def test_every_error_lore_defines_is_a_lore_error() -> None:
    classes = exception_classes()
    assert len(classes) > 20  # the walk found the project's errors
    outside = {name for name, cls in classes.items() if not issubclass(cls, LoreError)}
    assert outside == set()


def test_the_knowledge_layer_has_its_own_root_under_lore_error() -> None:
    shared = {LoreError, ConfigurationError}
    defined = {
        value
        for value in vars(knowledge_errors).values()
        if isinstance(value, type) and issubclass(value, BaseException) and value not in shared
    }
    assert KnowledgeError in defined and len(defined) > 5
    assert all(issubclass(cls, KnowledgeError) for cls in defined)


def test_model_errors_share_one_branch_and_the_bot_reexports_the_root() -> None:
    import bot.errors

    assert bot.errors.LoreError is LoreError and bot.errors.ConfigurationError is ConfigurationError
    assert all(issubclass(cls, ModelError) for cls in (BusyError, ModelEndpointError, ModelNotFoundError))
    assert issubclass(ModelError, LoreError)
