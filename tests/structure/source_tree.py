"""The project's own Python modules, read with `ast` (nothing is imported)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "knowledge")


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "bot.store.database"
    path: Path
    tree: ast.Module

    @property
    def relative_path(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


def modules() -> Iterator[Module]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield Module(name, path, ast.parse(path.read_text(encoding="utf-8"), str(path)))


def imported_names(module: Module) -> Iterator[str]:
    """Every module `module` imports, at any depth (lazy imports in functions and
    TYPE_CHECKING blocks included: a lazy import is still a dependency), made absolute."""
    package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            yield target
            # `from bot.core import types` imports the module bot.core.types.
            yield from (f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
