"""`model.cpu_threads` reaches torch: replicas sharing a machine split its cores instead of
each taking all of them. Run in a child process, since torch's thread count is process-wide."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tiny_model import build_tiny_model

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys, torch
from pathlib import Path
from bot.model import load_model
from bot.settings import ModelSettings
threads = None if sys.argv[3] == "none" else int(sys.argv[3])
model = load_model(ModelSettings(base_model=Path(sys.argv[1]), cpu_threads=threads), Path(sys.argv[2]))
print(torch.get_num_threads())
model.close()
"""


def threads_after_loading(tmp_path: Path, cpu_threads: str) -> int:
    folder = build_tiny_model(tmp_path / "models" / "tiny")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), str(tmp_path), cpu_threads],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={"OMP_NUM_THREADS": "2", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_the_setting_sets_torch_threads_for_the_local_backend(tmp_path: Path) -> None:
    assert threads_after_loading(tmp_path, "none") == 2  # torch's default is left alone
    assert threads_after_loading(tmp_path, "1") == 1


def test_zero_threads_is_refused() -> None:
    from pydantic import ValidationError

    from bot.settings import ModelSettings

    with pytest.raises(ValidationError):
        ModelSettings(cpu_threads=0)
