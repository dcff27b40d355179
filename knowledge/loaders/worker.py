"""Parses files in a separate process that may be killed: a wall-clock and memory bound per file.

Parsing libraries can spend minutes on a small hostile file (python-docx looks up the style
of every paragraph: ~45 KiB of empty paragraphs cost two minutes) or allocate gigabytes,
and a refresh runs inside `lore serve`. A `ParserProcess` runs `load_document` in one child
process, started on the first file and reused for every file of a refresh (starting one
costs ~0.7 s of imports). The child's address space is capped at its size after start-up
plus `ParseLimits.memory_bytes` (RLIMIT_AS, POSIX); a file that runs past
`ParseLimits.timeout_seconds` has its child killed, and the next file gets a new one.
Either way the file's failure is a LimitExceededError, which a sync reports and moves on."""

from __future__ import annotations

import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType

from knowledge.errors import LimitExceededError, LoaderError
from knowledge.limits import MiB, ParseLimits
from knowledge.loaders import load_document
from knowledge.types import LoadedDocument

# A fresh interpreter, not a fork: the bot's process has threads (event loop, scheduler,
# torch) that a forked child would inherit mid-lock.
_CONTEXT = multiprocessing.get_context("spawn")
# Starting takes ~0.7 s (imports) on an idle machine; it does not count against a file.
_START_TIMEOUT_SECONDS = 60.0
_READY = "ready"


class ParserProcess:
    """`parse(path, data)` like `load_document`, in a child process under `limits`.

    Use it as a context manager (or call `close`) so the child ends with the refresh."""

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None

    def parse(self, path: Path, data: bytes) -> LoadedDocument:
        """The parsed document. Raises what `load_document` raises, and LimitExceededError
        when the file takes too long or too much memory (the child is then replaced)."""
        connection = self._child()
        try:
            connection.send((path, data))
            finished = connection.poll(self.limits.timeout_seconds)
            outcome, serving = connection.recv() if finished else (None, True)
        except (EOFError, OSError):
            exit_code = self._stop()
            raise LimitExceededError(
                f"the parser process ended while reading it (exit code {exit_code}): it needed more than "
                f"{self.limits.memory_bytes // MiB} MiB (index.parse_memory_mb) or crashed the parser"
            ) from None
        if not finished or not serving:
            self._stop()
        if not finished:
            raise LimitExceededError(
                f"parsing took longer than {self.limits.timeout_seconds:g} s (index.parse_timeout_seconds) "
                "and was stopped; simplify the file or raise the limit"
            )
        if isinstance(outcome, LoaderError):
            raise outcome
        if not isinstance(outcome, LoadedDocument):
            raise TypeError(f"the parser process answered {type(outcome).__name__}, not a LoadedDocument")
        return outcome

    def close(self) -> None:
        """End the child, if one is running."""
        self._stop()

    def __enter__(self) -> ParserProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _child(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._connection is not None:
            return self._connection
        self._stop()  # one that ended itself (after running out of memory) is replaced
        ours, theirs = _CONTEXT.Pipe()
        process = _CONTEXT.Process(target=_serve, args=(theirs, self.limits), name="lore-parser", daemon=True)
        process.start()
        theirs.close()
        self._process, self._connection = process, ours
        try:
            ready = ours.poll(_START_TIMEOUT_SECONDS) and ours.recv() == _READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            exit_code = self._stop()
            raise LoaderError(
                f"the parser process did not start (exit code {exit_code}); see the log above for its error"
            )
        return ours

    def _stop(self) -> int | None:
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if connection is not None:
            connection.close()
        if process is None:
            return None
        process.kill()
        process.join()
        return process.exitcode


def _serve(connection: Connection, limits: ParseLimits) -> None:
    """The child: parse each (path, data) received and send back the document or the
    LoaderError, and whether it goes on serving. It ends when the parent closes the pipe,
    or after a MemoryError, which may leave a library's state half-built."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which ends us
    _cap_address_space(limits.memory_bytes)
    connection.send(_READY)
    while True:
        try:
            path, data = connection.recv()
        except EOFError:
            return
        out_of_memory = False
        try:
            try:
                outcome: LoadedDocument | LoaderError = load_document(path, data, limits)
            except LoaderError as error:
                outcome = error
            connection.send((outcome, True))
        except MemoryError:
            out_of_memory = True  # answered below, once the failed parse's frames are freed
        if out_of_memory:
            refusal = LimitExceededError(
                f"parsing it needs more than {limits.memory_bytes // MiB} MiB of memory "
                "(index.parse_memory_mb); simplify the file or raise the limit"
            )
            connection.send((refusal, False))
            return
        del path, data, outcome  # free this file before waiting for the next


def _cap_address_space(extra_bytes: int) -> None:
    """Allow the process `extra_bytes` of address space beyond what it uses now (Linux)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX: the time limit still holds
        return
    try:
        with open("/proc/self/statm") as statm:
            current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - no /proc (macOS, where RLIMIT_AS is not enforced anyway)
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = current + extra_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
