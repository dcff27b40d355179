"""Real `lore` processes for tests and benchmarks: `lore serve` / `lore worker` started with
a given environment (nothing inherited from the caller's LORE_*, SLACK_* or MICROSOFT_*),
output in a log file, /healthz awaited, stopped with SIGTERM and then SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 180.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def lore_environment(home: Path, config: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment minus Lore's and the platforms' variables, plus `extra`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("LORE_", "SLACK_", "MICROSOFT_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return {**env, "LORE_HOME": str(home), "LORE_CONFIG": str(config), **extra}


@dataclass
class LoreProcess:
    """One running `lore ...`."""

    process: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @classmethod
    def start(cls, args: list[str], env: Mapping[str, str], log: Path, port: int | None = None) -> LoreProcess:
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-c", "from bot.cli.main import cli; cli()", *args],
                env=dict(env),
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        return cls(process, log, port)

    @classmethod
    def serve(cls, home: Path, config: Path, extra: Mapping[str, str], *options: str) -> LoreProcess:
        """`lore serve --port <free> [options]` on loopback, its LORE_HOME `home`."""
        home.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = lore_environment(home, config, extra)
        return cls.start(["serve", "--port", str(port), *options], env, home / f"serve-{port}.log", port)

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, seconds: float = STARTUP_SECONDS) -> None:
        """Until /healthz answers 200; fails with the log if the process exits or never does."""
        deadline = time.monotonic() + seconds
        while True:
            assert self.process.poll() is None, f"lore exited {self.process.returncode}:\n{self.output[-5000:]}"
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, f"no healthy /healthz after {seconds} s:\n{self.output[-5000:]}"
            time.sleep(0.2)

    def stop(self, grace: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait(timeout=30)
