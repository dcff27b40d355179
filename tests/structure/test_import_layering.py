"""Imports flow one way (issue #15): `knowledge` never imports `bot`; `store`, `model` and
`identity` never import `core` or a platform; `core` never imports a platform; no module imports
its way back into itself. Lazy imports (inside functions, under TYPE_CHECKING) count: a lazy
import that breaks a cycle still is the cycle.

CI also runs import-linter (`lint-imports`) on the same contracts, written in pyproject.toml
[tool.importlinter]; this walk over the source with `ast` keeps them in the test suite (where
a contract and its known exceptions are read beside the code) and adds the module-level cycle
check. A contract changed here changes there too."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable

import pytest

from tests.structure.source_tree import ROOT, Module, imported_names, modules

PLATFORMS = ("bot.platforms",)

# (importer, forbidden) pairs: no module under an importer prefix imports one under a forbidden one.
CONTRACTS = {
    "knowledge never imports bot": (("knowledge",), ("bot",)),
    "store, model and identity never import core or a platform": (
        ("bot.store", "bot.model", "bot.identity"),
        ("bot.core", *PLATFORMS),
    ),
    "core never imports a platform": (("bot.core",), PLATFORMS),
    "customize never imports a platform": (("bot.customize",), PLATFORMS),
    "the shared types import nothing of the bot": (("bot.types",), ("bot.",)),
}

# Imports still breaking a contract, in files another part of #15 rewrites (the agent, the
# platform adapters' conversation code, bot/customize). Each entry must still be there, and
# be its contract's `ignore_imports` line in pyproject.toml: take it off both when its file is
# fixed, so the list only ever shrinks.
KNOWN_VIOLATIONS: dict[str, set[tuple[str, str]]] = {}


def _within(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == prefix.rstrip(".") or name.startswith(prefix.rstrip(".") + ".") for prefix in prefixes)


def _violations(importers: tuple[str, ...], forbidden: tuple[str, ...]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for module in modules():
        if not _within(module.name, importers):
            continue
        for target in imported_names(module):
            if _within(target, forbidden) and not _within(target, importers):
                found.add((module.relative_path, ".".join(target.split(".")[:3])))
    return found


@pytest.mark.parametrize("contract", sorted(CONTRACTS))
def test_imports_flow_one_way(contract: str) -> None:
    importers, forbidden = CONTRACTS[contract]
    assert _violations(importers, forbidden) == KNOWN_VIOLATIONS.get(contract, set())


def test_lint_imports_checks_the_same_contracts_with_the_same_exceptions() -> None:
    """CI's `lint-imports` reads pyproject.toml: its contracts must be these, and its ignored
    imports the known violations, or the two checks drift apart."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    linted = {contract["name"]: contract for contract in config["contracts"] if contract["type"] == "forbidden"}
    assert set(linted) == set(CONTRACTS)
    (acyclic,) = [contract for contract in config["contracts"] if contract["type"] == "acyclic_siblings"]
    assert acyclic["ancestors"] == ["bot"]  # what test_no_package_of_bot_imports_its_way_back_into_itself checks
    for name, (importers, forbidden) in CONTRACTS.items():
        contract = linted[name]
        assert contract["type"] == "forbidden"
        assert tuple(contract["source_modules"]) == importers
        # "bot." (every module under bot) is import-linter's "bot.*".
        assert tuple(module.removesuffix("*") for module in contract["forbidden_modules"]) == forbidden
        ignored = {tuple(line.split(" -> ")) for line in contract.get("ignore_imports", [])}
        known = KNOWN_VIOLATIONS.get(name, set())
        assert len(ignored) == len(known)
        for path, target in known:
            importer = path.removesuffix(".py").replace("/", ".")
            assert any(i == importer and _within(t, (target,)) for i, t in ignored), (path, target)


def _graph() -> dict[str, set[str]]:
    all_modules = {module.name: module for module in modules()}
    graph: dict[str, set[str]] = {}
    for name, module in all_modules.items():
        graph[name] = {target for target in imported_names(module) if target in all_modules and target != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_no_module_imports_its_way_back_into_itself() -> None:
    assert _cycles(_graph()) == []


def _package_of(module: str) -> str:
    """bot.customize.retrain → bot.customize; bot.app → bot.app (a module directly under bot)."""
    return ".".join(module.split(".")[:2])


def test_no_package_of_bot_imports_its_way_back_into_itself() -> None:
    """Between bot's packages too (lazy imports count): bot.app building customization's
    retention while customization imported bot.app for the glossary was such a loop."""
    packages: dict[str, set[str]] = {}
    for importer, targets in _graph().items():
        if importer.startswith("bot."):
            packages.setdefault(_package_of(importer), set()).update(
                _package_of(target) for target in targets if target.startswith("bot.")
            )
    graph = {package: targets - {package} for package, targets in packages.items()}
    assert _cycles(graph) == []


def test_the_checks_see_an_upward_import() -> None:
    """The walk resolves relative and lazy imports: a check that finds nothing proves nothing."""
    import ast
    from pathlib import Path

    source = "def f():\n    from ..core import agent\n    from bot.platforms.slack import routes\n"
    module = Module("bot.store.example", Path("bot/store/example.py"), ast.parse(source))
    assert {"bot.core.agent", "bot.platforms.slack.routes"} <= set(imported_names(module))
