"""The LoRA adapters under `<home>/adapters/`, which one is promoted, and which base each needs.

Layout: `<home>/adapters/<name>/` is a folder written by peft's `save_pretrained`
(`adapter_config.json`, `adapter_model.safetensors`) plus `lore.json`, Lore's metadata about it.
Which adapter is promoted is an `ActiveMarker`'s job: by default the file
`<home>/adapters/ACTIVE` holding its name; with replicas on a shared PostgreSQL database, a row
there (`bot.store.active_adapter`), which also keeps a copy of the promoted folder for replicas
that lack it. The keys of `lore.json` read here: `base_model` (the base model's name), `base_model_hash` (`base_model_fingerprint()` of
the base folder it was trained on) and `created` (ISO 8601); training may add any others.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from bot.errors import AdapterMismatchError, ConfigurationError, ModelNotFoundError

ACTIVE_FILE = "ACTIVE"
METADATA_FILE = "lore.json"
PEFT_CONFIG_FILE = "adapter_config.json"
# `--adapter base` and `model.adapter = "base"` mean the bare base model.
BASE = "base"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class AdapterInfo:
    """One adapter folder and what it says about itself."""

    name: str
    path: Path
    base_model: str | None  # lore.json's base_model, else peft's base_model_name_or_path
    base_model_hash: str | None
    created: datetime | None
    metadata: Mapping[str, Any] = field(default_factory=dict)  # all of lore.json


def normalize_adapter(name: str | None) -> str | None:
    """None for the bare base model (`None` or "base"), otherwise the name."""
    return None if name is None or name == BASE else name


class ActiveMarker(Protocol):
    """Where the promoted adapter's name is kept, for every process that serves it."""

    def read(self) -> str | None:
        """The promoted adapter's name (None: the base model)."""
        ...

    def write(self, name: str | None, folder: Path | None) -> None:
        """Promote adapter `name`, whose files are in `folder` (None, None: the base model)."""
        ...

    def fetch(self, name: str, into: Path) -> bool:
        """Copy the promoted adapter `name`'s files into the new folder `into` when this marker
        keeps them (a replica on another machine); whether it did."""
        ...


class FileMarker:
    """The name in a file (`<home>/adapters/ACTIVE`): every process that reads it shares the
    adapters folder, so there is nothing to fetch."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def read(self) -> str | None:
        try:
            name = self._path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return normalize_adapter(name or None)

    def write(self, name: str | None, folder: Path | None) -> None:
        if name is None:
            self._path.unlink(missing_ok=True)
            return
        # Written to a temporary file and renamed: a reader never sees a half-written name.
        handle, temporary = tempfile.mkstemp(prefix=f".{self._path.name}.", dir=self._path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(name + "\n")
        os.replace(temporary, self._path)

    def fetch(self, name: str, into: Path) -> bool:
        return False


class AdapterRegistry:
    """The adapters in one folder: list them, find them, and promote one (recorded by
    `marker`; default: the ACTIVE file in the folder)."""

    def __init__(self, adapters_dir: Path, marker: ActiveMarker | None = None) -> None:
        self._dir = adapters_dir
        self._marker = marker if marker is not None else FileMarker(adapters_dir / ACTIVE_FILE)

    @property
    def directory(self) -> Path:
        """The folder holding one sub-folder per adapter."""
        return self._dir

    def list(self) -> list[str]:
        """Names of the adapters, oldest first (by `created` in lore.json, else folder time)."""
        if not self._dir.is_dir():
            return []
        found = [
            path for path in self._dir.iterdir() if _NAME.fullmatch(path.name) and (path / PEFT_CONFIG_FILE).is_file()
        ]
        return [path.name for path in sorted(found, key=_age_key)]

    def path(self, name: str) -> Path:
        """The folder of adapter `name` (fetched from the marker when it is the promoted one
        and this machine lacks it); ModelNotFoundError listing the others if it is missing."""
        folder = self._dir / _checked_name(name)
        if not (folder / PEFT_CONFIG_FILE).is_file() and not self._fetched(name, folder):
            available = ", ".join(self.list()) or "none"
            raise ModelNotFoundError(
                f"no adapter named {name!r} in {self._dir} (available: {available}): "
                "train one with `lore customize train` or pick another with `--adapter`"
            )
        return folder

    def info(self, name: str) -> AdapterInfo:
        """Adapter `name` with its metadata."""
        folder = self.path(name)
        metadata = _read_json(folder / METADATA_FILE) if (folder / METADATA_FILE).is_file() else {}
        peft_config = _read_json(folder / PEFT_CONFIG_FILE)
        return AdapterInfo(
            name=name,
            path=folder,
            base_model=metadata.get("base_model") or peft_config.get("base_model_name_or_path"),
            base_model_hash=metadata.get("base_model_hash"),
            created=_created(metadata),
            metadata=metadata,
        )

    def _fetched(self, name: str, folder: Path) -> bool:
        """Whether the marker supplied `folder` now (only when it is missing altogether: a
        damaged folder is for someone to look at, not to overwrite)."""
        if folder.exists():
            return False
        self._dir.mkdir(parents=True, exist_ok=True)
        return self._marker.fetch(name, folder) and (folder / PEFT_CONFIG_FILE).is_file()

    def active(self) -> str | None:
        """The promoted adapter's name, or None when the base model answers."""
        return self._marker.read()

    def set_active(self, name: str | None) -> None:
        """Promote adapter `name` (None or "base": the base model) for every start from now on,
        in every process that reads the same marker."""
        name = normalize_adapter(name)
        self._marker.write(name, None if name is None else self.path(name))


def check_adapter_base(info: AdapterInfo, base_folder: Path, base_name: str, fingerprint: Callable[[], str]) -> None:
    """Raise AdapterMismatchError unless adapter `info` was trained on the given base model.

    The weights hash in lore.json decides when there is one; otherwise the base model named by
    the adapter must be the loaded folder or carry the same name (adapters trained elsewhere
    record another path to the same model).
    """
    if info.base_model_hash is not None:
        loaded = fingerprint()
        if info.base_model_hash != loaded:
            raise AdapterMismatchError(
                f"adapter {info.name!r} was trained on base model {info.base_model or '?'} "
                f"(weights hash {info.base_model_hash}), but the loaded base model {base_name} "
                f"has weights hash {loaded}: set model.base_model to the model it was trained on, "
                "or train a new adapter on this one with `lore customize train`"
            )
        return
    if info.base_model is not None and not _same_model(info.base_model, base_folder, base_name):
        raise AdapterMismatchError(
            f"adapter {info.name!r} needs base model {info.base_model}, but {base_name} "
            f"({base_folder}) is loaded: set model.base_model to that model, or train a new "
            "adapter on this one with `lore customize train`"
        )


def _same_model(declared: str, base_folder: Path, base_name: str) -> bool:
    candidate = Path(declared).expanduser()
    if candidate.is_dir() and candidate.resolve() == base_folder.resolve():
        return True
    last = re.split(r"[/\\]", declared.rstrip("/\\"))[-1].lower()
    return last in {base_folder.name.lower(), base_name.lower()}


def _checked_name(name: str) -> str:
    if not _NAME.fullmatch(name) or name == BASE:
        raise ConfigurationError(
            f"{name!r} is not a valid adapter name: use letters, digits, '.', '_' and '-' "
            f"(and not {BASE!r}, which means the base model)"
        )
    return name


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot read {path}: {exc}; the adapter folder is damaged, retrain it") from exc
    if not isinstance(data, dict):
        raise ModelNotFoundError(f"{path} is not a JSON object; the adapter folder is damaged, retrain it")
    return data


def _created(metadata: Mapping[str, Any]) -> datetime | None:
    value = metadata.get("created")
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _age_key(folder: Path) -> tuple[float, str]:
    metadata_file = folder / METADATA_FILE
    try:
        created = _created(_read_json(metadata_file)) if metadata_file.is_file() else None
    except ModelNotFoundError:
        created = None
    return (created.timestamp() if created else folder.stat().st_mtime, folder.name)
