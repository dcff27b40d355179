"""Model backends are rows of `bot.model.BACKENDS`: code outside `bot/model` asks the row what
a backend does (`loads_weights`, `uses_adapter_registry`) and never compares `model.backend`
with a backend's name, so a new backend is one new row."""

from __future__ import annotations

import ast

from tests.structure.source_tree import ROOT, Module, modules

OWNERS = ("bot.model", "bot.settings")  # the table itself, and the setting's list of names


def backend_name_checks(module: Module) -> list[str]:
    """`file:line` of every comparison of a `.backend` attribute with a string."""
    found = []
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        names_backend = any(isinstance(side, ast.Attribute) and side.attr == "backend" for side in sides)
        names_a_string = any(isinstance(side, ast.Constant) and isinstance(side.value, str) for side in sides)
        if names_backend and names_a_string:
            found.append(f"{module.relative_path}:{node.lineno}")
    return found


def test_no_code_outside_the_model_package_branches_on_a_backends_name() -> None:
    outside = [m for m in modules() if not any(m.name == o or m.name.startswith(o + ".") for o in OWNERS)]
    assert [where for module in outside for where in backend_name_checks(module)] == []


def test_the_check_sees_a_branch_on_a_backends_name() -> None:
    source = "def f(settings):\n    if settings.model.backend == 'openai':\n        return 1\n"
    module = Module("bot.cli.example", ROOT / "bot/cli/example.py", ast.parse(source))
    assert backend_name_checks(module) == ["bot/cli/example.py:2"]
