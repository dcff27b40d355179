"""Owner-only files and folders for what Lore derives from people's questions and documents:
datasets, adapters, training runs, the answer log. Someone else's account on the machine may
read none of them (their training examples quote documents and corrections)."""

from __future__ import annotations

import os
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(folder: Path) -> Path:
    """Create `folder` (and missing parents) if needed; the folder itself, when created here,
    is owner-only. An existing folder keeps its mode: an admin's choice stands."""
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    return folder


def make_private(tree: Path) -> None:
    """Make `tree`, a folder Lore has just written, and everything in it owner-only (links,
    which Lore never writes, are left alone)."""
    os.chmod(tree, FOLDER_MODE)
    for root, folders, files in os.walk(tree):
        for name in folders + files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, FOLDER_MODE if name in folders else FILE_MODE)
