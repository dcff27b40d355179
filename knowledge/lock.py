"""One refresh (or one retraining) at a time, across processes: an exclusive `flock` on a
file. The kernel drops the lock when its holder dies, so a killed run never leaves a stale
lock behind."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from knowledge.errors import IndexBusyError


def _refresh_busy(holder: str) -> Exception:
    return IndexBusyError(f"another refresh is running (pid {holder}); wait for it to finish and try again.")


class RefreshLock:
    """Non-blocking exclusive lock; use as a context manager. Raises `busy(holder pid)`
    (default: IndexBusyError) when another process (or another lock in this one) holds it."""

    def __init__(self, path: Path, busy: Callable[[str], Exception] = _refresh_busy) -> None:
        self.path = path
        self._busy = busy
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise self._busy(holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RefreshLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()
