"""The keys of a local (or mounted) folder target."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from cloudwatcher.providers.target import TargetBase


class LocalTarget(TargetBase):
    """A folder on this machine, or a mounted share, that mirrors the watch root."""

    provider: Literal["local"] = Field(description="The tag of a local folder target.")
    root: Path = Field(description="The folder the files are copied into.")
