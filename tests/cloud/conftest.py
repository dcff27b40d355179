"""Fixtures shared by the cloud source tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cloud.gdrive_harness import Drive, drive_server, populate


@pytest.fixture
def drive(tmp_path: Path) -> Iterator[Drive]:
    """The local Drive server with a shared drive "HR" of every kind of document (`populate`)."""
    with drive_server(tmp_path) as served:
        populate(served, tmp_path)
        yield served
