"""One refresh (or one retraining) at a time, across processes and machines.

`RefreshLock`: an exclusive `flock` on a file (one machine, the SQLite catalog). The kernel
drops the lock when its holder dies, so a killed run never leaves a stale lock behind.

`AdvisoryLock`: a PostgreSQL session-level advisory lock on a connection of its own (every
machine sharing the database). The server drops it when that connection closes, so a killed
run (or a vanished machine, once TCP gives up) frees it too."""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

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


def held_elsewhere(path: Path) -> bool:
    """Whether another live process holds the RefreshLock at `path` (read from the pid its
    holder writes; no lock is taken, so a refresh starting now is never refused for it)."""
    try:
        holder = path.read_text().strip()
    except FileNotFoundError:
        return False
    if not holder.isdigit() or int(holder) == os.getpid():
        return False
    try:
        os.kill(int(holder), 0)
    except ProcessLookupError:
        return False  # killed without releasing: the kernel dropped its lock
    except PermissionError:
        return True
    return True


def advisory_key(name: str) -> int:
    """A fixed signed 64-bit advisory-lock key for `name` (e.g. "lore refresh")."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


REFRESH_LOCK = "lore refresh"
# How pg_locks shows a granted bigint advisory lock: its key's high and low 32 bits, objsubid 1.
_HELD = (
    "l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid::bigint = :high AND l.objid::bigint = :low"
)


def _key_halves(key: int) -> dict[str, int]:
    return {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF}


class AdvisoryLock:
    """Non-blocking `pg_try_advisory_lock(advisory_key(name))` on a dedicated connection to
    `url`; use as a context manager. Raises `busy(holder)` (default: IndexBusyError) when
    another session holds it, `holder` being "<pid> on <host>" as that session named itself."""

    def __init__(self, url: str, name: str = REFRESH_LOCK, busy: Callable[[str], Exception] = _refresh_busy) -> None:
        self.name = name
        self.key = advisory_key(name)
        self._busy = busy
        self._label = f"{name}: "
        holder = f"{os.getpid()} on {socket.gethostname()}"
        self._engine = create_engine(
            url, poolclass=NullPool, connect_args={"application_name": (self._label + holder)[:63]}
        )
        self._connection: Connection | None = None

    def acquire(self) -> None:
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar()
            if not taken:
                raise self._busy(self._holder(connection))
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def _holder(self, connection: Connection) -> str:
        names = (
            connection.execute(
                text(
                    f"SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE {_HELD}"
                ),
                _key_halves(self.key),
            )
            .scalars()
            .all()
        )
        return ", ".join(str(name).removeprefix(self._label) for name in names) or "unknown"

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            except SQLAlchemyError:
                pass  # the connection is gone, and the lock with it
            finally:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> AdvisoryLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()


class AdvisoryLockProbe:
    """Whether any session holds the advisory lock `name` in the database at `url`, without
    taking it (so a refresh starting now is never refused for it). One pooled connection."""

    def __init__(self, url: str, name: str = REFRESH_LOCK) -> None:
        self._key = advisory_key(name)
        self._engine = create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=True)

    def held(self) -> bool:
        with self._engine.connect() as connection:
            query = text(f"SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE {_HELD})")
            return bool(connection.execute(query, _key_halves(self._key)).scalar())

    def close(self) -> None:
        self._engine.dispose()
