"""The Actions page's long jobs, "refresh now" and "retrain now": each runs one at a time in
the background of `lore serve`, and its state and last outcome are kept in a file (the refresh
beside the index, so the Overview shows what the last refresh from the console added, updated,
deleted and why files failed)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from knowledge.errors import LoreError
from knowledge.knowledge_base import KnowledgeBase
from knowledge.sync import Progress

log = logging.getLogger(__name__)

REFRESH_STATE = "console-refresh.json"
RETRAIN_STATE = "console-retrain.json"


# A long job: told how to report progress (done, total), returns what to show of its outcome.
Work = Callable[[Progress], dict[str, Any]]


class BackgroundAction:
    """Runs `work` one at a time, shows its progress while it runs and remembers how the last
    run went in `state_file`."""

    def __init__(self, name: str, work: Work, state_file: Path) -> None:
        self.name = name
        self._work = work
        self._state_file = state_file
        self._lock = threading.Lock()
        self._state: dict[str, Any] = _load(state_file)
        self._state["running"] = False  # a run cut short by a restart is not running

    def start(self, by: str) -> bool:
        """Start a run in the background; False when one started here is still running (one
        run by another process is reported by the work itself, e.g. the index is busy)."""
        with self._lock:
            if self._state.get("running"):
                return False
            self._state = {"running": True, "started_by": by, "started_at": _now(), "done": 0, "total": None}
        threading.Thread(target=self._run, name=f"console-{self.name}", daemon=True).start()
        return True

    def status(self) -> dict[str, Any]:
        """running, started_by / _at, and once done: finished_at, seconds, and the outcome
        (the work's own keys) or error."""
        with self._lock:
            state = dict(self._state)
        if state.get("running"):
            started = datetime.fromisoformat(state["started_at"])
            state["running_seconds"] = round((datetime.now(UTC) - started).total_seconds(), 1)
        return state

    def _progress(self, done: int, total: int) -> None:
        with self._lock:
            self._state.update(done=done, total=total)

    def _run(self) -> None:
        started = time.perf_counter()
        outcome: dict[str, Any]
        try:
            outcome = self._work(self._progress)
        except LoreError as error:  # the index is busy, a source is unreachable, ...
            outcome = {"error": str(error)}
            log.warning("console %s failed: %s", self.name, error)
        except Exception as error:  # noqa: BLE001  (reported on the page; the process keeps serving)
            outcome = {"error": f"{type(error).__name__}: {error}"}
            log.exception("console %s failed", self.name)
        with self._lock:
            self._state.update(
                running=False, finished_at=_now(), seconds=round(time.perf_counter() - started, 1), **outcome
            )
            _save(self._state_file, self._state)


def refresh_action(knowledge: KnowledgeBase) -> BackgroundAction:
    """ "Refresh now": `knowledge.refresh()` with its progress in files, its report kept beside
    the index."""

    def refresh(progress: Progress) -> dict[str, Any]:
        report = knowledge.refresh(progress=progress)
        log.info("console refresh: %s", report.summary())
        return {"report": report.to_dict()}

    return BackgroundAction("refresh", refresh, knowledge.index_dir / REFRESH_STATE)


class Retraining(Protocol):
    """A retraining job (bot.customize.retrain.RetrainJob): dataset, train, evaluate, promote
    only if it beats the active model; never raises."""

    def run(self) -> Any: ...  # a RetrainResult (to_dict, headline)

    def cancel(self) -> None: ...


def retrain_action(job: Retraining, home: Path) -> BackgroundAction:
    """ "Retrain now": one run of `job` whatever the new feedback, its result kept in LORE_HOME."""

    def retrain(progress: Progress) -> dict[str, Any]:  # the job reports its steps in its own log
        result = job.run()
        return {"result": result.to_dict(), "headline": result.headline()}

    return BackgroundAction("retrain", retrain, home / "customize" / RETRAIN_STATE)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state), encoding="utf-8")
    os.replace(temporary, path)
