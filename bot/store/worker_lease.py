"""Which `lore worker` runs the scheduled jobs: one at a time, across processes and machines.

On PostgreSQL the lease is a session-level advisory lock held on a connection of its own: the
server releases it when that connection closes, so a worker that dies (killed, its machine
gone: TCP keepalives close the connection within about 30 s) hands over to a waiting one. On
SQLite, which serves one machine, it is a `flock` on a file under LORE_HOME, which the kernel
drops when its holder dies."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from knowledge.errors import LoreError
from knowledge.lock import RefreshLock

# One advisory-lock key for Lore's worker lease: a fixed 64-bit number from its name.
LEASE_KEY = int.from_bytes(hashlib.sha256(b"lore worker lease").digest()[:8], "big", signed=True)
# How pg_locks shows a bigint advisory key: its high and low 32 bits, objsubid 1.
_LOCK_ROW = (
    "l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    f"AND l.classid::bigint = {(LEASE_KEY >> 32) & 0xFFFFFFFF} AND l.objid::bigint = {LEASE_KEY & 0xFFFFFFFF}"
)
LEASE_FILE = "worker.lock"
# Server-side keepalives on the lease connection (seconds): a worker whose machine vanishes
# loses the lease after about idle + interval * count.
KEEPALIVE = {"idle": 10, "interval": 5, "count": 4}


class WorkerLease(Protocol):
    """A lease only one holder has at a time."""

    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; True when this process holds it."""
        ...

    def held(self) -> bool:
        """Whether this process still holds the lease (False once its connection is gone)."""
        ...

    def holder(self) -> str:
        """Who holds it, in words, for the log of a waiting worker."""
        ...

    def release(self) -> None:
        """Give the lease up (and close what held it)."""
        ...


def worker_lease(database_url: str, home: Path) -> WorkerLease:
    """The lease for the configured database: an advisory lock on PostgreSQL, a file lock under
    `home` otherwise."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return PostgresLease(database_url)
    return FileLease(home / LEASE_FILE)


def _identity() -> str:
    return f"lore worker {socket.gethostname()} pid {os.getpid()}"


class PostgresLease:
    """`pg_try_advisory_lock` on a dedicated connection, outside any transaction."""

    def __init__(self, url: str) -> None:
        self._engine = create_engine(
            url,
            poolclass=NullPool,
            connect_args={
                "application_name": _identity()[:63],
                # Client side too: a worker cut off from the server finds out and stops.
                "keepalives": 1,
                "keepalives_idle": KEEPALIVE["idle"],
                "keepalives_interval": KEEPALIVE["interval"],
                "keepalives_count": KEEPALIVE["count"],
            },
        )
        self._connection: Connection | None = None

    def _connect(self) -> Connection:
        if self._connection is None:
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            for name, seconds in KEEPALIVE.items():
                connection.execute(text(f"SET tcp_keepalives_{name} = {int(seconds)}"))
            self._connection = connection
        return self._connection

    def try_acquire(self) -> bool:
        connection = self._connect()
        return bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LEASE_KEY}).scalar())

    def held(self) -> bool:
        if self._connection is None:
            return False
        try:
            mine = self._connection.execute(
                text(f"SELECT count(*) FROM pg_locks l WHERE l.pid = pg_backend_pid() AND {_LOCK_ROW}")
            ).scalar()
        except SQLAlchemyError:
            return False
        return bool(mine)

    def holder(self) -> str:
        try:
            names = (
                self._connect()
                .execute(
                    text(
                        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                        f"WHERE {_LOCK_ROW}"
                    )
                )
                .scalars()
                .all()
            )
        except SQLAlchemyError as error:
            return f"unknown ({error.__class__.__name__})"
        return ", ".join(str(name) for name in names) or "nobody"

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LEASE_KEY})
            except SQLAlchemyError:
                pass  # the connection is gone, and the lock with it
            finally:
                self._connection.close()
                self._connection = None
        self._engine.dispose()


class LeaseHeldError(LoreError):
    """Another worker holds the lease (caught by `FileLease`, which then says "not yet")."""

    def __init__(self, holder: str) -> None:
        super().__init__(f"another worker is active (pid {holder})")
        self.holder = holder


class FileLease:
    """A `flock` on `path` (one machine: SQLite)."""

    def __init__(self, path: Path) -> None:
        self._lock = RefreshLock(path, busy=LeaseHeldError)
        self._held = False
        self._holder = "nobody"

    def try_acquire(self) -> bool:
        if not self._held:
            try:
                self._lock.acquire()
            except LeaseHeldError as busy:
                self._holder = f"pid {busy.holder}"
                return False
            self._held = True
        return True

    def held(self) -> bool:
        return self._held

    def holder(self) -> str:
        return self._holder

    def release(self) -> None:
        if self._held:
            self._lock.release()
            self._held = False
