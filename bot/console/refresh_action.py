"""The Actions page's "refresh now": one index refresh at a time, run in the background of
`lore serve`, its state and last report kept beside the index (so the Overview shows what the
last refresh from the console added, updated, deleted and why files failed)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from knowledge.errors import LoreError
from knowledge.knowledge_base import KnowledgeBase

log = logging.getLogger(__name__)

STATE_FILE = "console-refresh.json"


class RefreshAction:
    """Starts refreshes of `knowledge` one at a time and remembers how the last one went."""

    def __init__(self, knowledge: KnowledgeBase) -> None:
        self._knowledge = knowledge
        self._state_file = knowledge.index_dir / STATE_FILE
        self._lock = threading.Lock()
        self._state: dict[str, Any] = _load(self._state_file)
        self._state["running"] = False  # a refresh cut short by a restart is not running

    def start(self, by: str) -> bool:
        """Start a refresh in the background; False when one started here is still running
        (a refresh by another process is reported by the refresh itself: the index is busy)."""
        with self._lock:
            if self._state.get("running"):
                return False
            self._state = {"running": True, "started_by": by, "started_at": _now()}
        threading.Thread(target=self._run, name="console-refresh", daemon=True).start()
        return True

    def status(self) -> dict[str, Any]:
        """running, started_by / _at, and once done: finished_at, seconds, report or error."""
        with self._lock:
            state = dict(self._state)
        if state.get("running"):
            started = datetime.fromisoformat(state["started_at"])
            state["running_seconds"] = round((datetime.now(UTC) - started).total_seconds(), 1)
        return state

    def _run(self) -> None:
        started = time.perf_counter()
        outcome: dict[str, Any]
        try:
            report = self._knowledge.refresh()
            outcome = {"report": report.to_dict()}
            log.info("console refresh: %s", report.summary())
        except LoreError as error:  # the index is busy, a source is unreachable, ...
            outcome = {"error": str(error)}
            log.warning("console refresh failed: %s", error)
        except Exception as error:  # noqa: BLE001  (reported on the page; the process keeps serving)
            outcome = {"error": f"{type(error).__name__}: {error}"}
            log.exception("console refresh failed")
        with self._lock:
            self._state.update(
                running=False, finished_at=_now(), seconds=round(time.perf_counter() - started, 1), **outcome
            )
            _save(self._state_file, self._state)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(path: Path, state: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state), encoding="utf-8")
    os.replace(temporary, path)
