"""`lore serve`'s listening address (#14, route 4): loopback unless told otherwise, and never
anything else for the unauthenticated Teams emulator mode. Real `lore serve` processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

STARTUP_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def outward_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.200", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def accepts(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) == 0


def lore_serve(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "LORE_HOME": str(tmp_path / "home"),
        "LORE_CONFIG": str(tmp_path / "absent.toml"),
        "LORE_REFRESH__INTERVAL_MINUTES": "100000",
    }
    for variable in [name for name in env if name.startswith(("SLACK_", "MICROSOFT_"))]:
        env.pop(variable)
    return subprocess.Popen(
        [sys.executable, "-c", "from bot.cli.main import cli; cli()", "serve", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.kill()
    output, _ = process.communicate(timeout=30)
    return output


def test_the_unauthenticated_teams_emulator_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    process = lore_serve(tmp_path, "--teams-emulator", "--host", "0.0.0.0", "--port", str(free_port()))
    try:
        code = process.wait(timeout=STARTUP_SECONDS)
    except subprocess.TimeoutExpired:
        code = None
    output = stop(process)

    assert code == 2, f"lore serve kept running on 0.0.0.0 without token checks:\n{output}"
    assert "loopback only" in output and "MICROSOFT_APP_ID" in output


def test_lore_serve_listens_on_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    outward = outward_address()
    if outward is None:
        pytest.skip("this machine has no address besides loopback to probe")
    port = free_port()
    process = lore_serve(tmp_path, "--teams-emulator", "--port", str(port))
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not accepts("127.0.0.1", port):
            assert process.poll() is None, stop(process)
            assert time.monotonic() < deadline, "lore serve did not start listening"
            time.sleep(0.3)

        assert not accepts(outward, port), f"lore serve answers on {outward}"
    finally:
        stop(process)
