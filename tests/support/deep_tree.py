"""Folders nested deeper than Python's recursion limit, made and removed without recursion
(``shutil.rmtree`` and ``os.makedirs`` recurse once per level, and would overflow)."""

from __future__ import annotations

import os
from pathlib import Path


def make_chain(parent: Path, name: str, depth: int, leaf: str, data: bytes) -> str:
    """``parent/name/name/.../name/leaf`` (``depth`` folders); returns the part below ``parent``."""
    folder = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir(name, dir_fd=folder)
        inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=folder)
        os.close(folder)
        folder = inner
    with open(os.open(leaf, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=folder), "wb") as handle:
        handle.write(data)
    os.close(folder)
    return f"{name}/" * depth + leaf


def remove_chain(parent: Path, name: str) -> None:
    """Remove a chain made by :func:`make_chain`, one level at a time: the folder below the top
    is moved up beside it, the emptied top removed, and the moved one takes its name."""
    top, spare = parent / name, parent / f"{name}.spare"
    if not top.is_dir():
        return
    while (top / name).is_dir():
        (top / name).rename(spare)
        for entry in top.iterdir():
            entry.unlink()
        top.rmdir()
        spare.rename(top)
    for entry in top.iterdir():
        entry.unlink()
    top.rmdir()
