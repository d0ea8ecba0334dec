"""What every target's configuration takes, and the key types provider configurations share.

Each provider's own keys live beside its code (``providers/<name>/config.py``); they build on
:class:`TargetBase` here. Nothing in this module (or in those) imports a cloud SDK, so the
settings can validate every kind of target on a machine that has none of the optional extras.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

TARGET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
_SIZE_SUFFIXES = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def credential_path(path: Path) -> Path:
    """Resolve a relative ``*_file`` against ``$CREDENTIALS_DIRECTORY`` (systemd LoadCredential=)."""
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and not path.is_absolute():
        return Path(creds) / path
    return path


def _readable_file(path: Path) -> Path:
    """Refuse a ``*_file`` key whose file cannot be read, at load time.

    Checking here turns a missing secret into the one-line configuration error (exit 2)
    that names the key, instead of a traceback when the daemon first needs the secret.
    The file is opened (not just stat'ed) so that a permission problem is caught too.
    """
    resolved = credential_path(path)
    try:
        with resolved.open("rb"):
            pass
    except IsADirectoryError:
        raise ValueError(f"not a file: {resolved}") from None
    except FileNotFoundError:
        raise ValueError(f"file not found: {resolved}") from None
    except OSError as exc:
        raise ValueError(f"cannot read {resolved}: {exc.strerror}") from None
    return path


# A path to a file the daemon reads a secret or key from; it must exist and be readable.
ReadableFile = Annotated[Path, AfterValidator(_readable_file)]


def parse_byte_rate(value: Any) -> int | None:
    """``"10M"`` → 10·1024² bytes per second; suffixes are powers of 1024."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGkmg]?)(?:i?B)?\s*", str(value))
        if not match:
            raise ValueError("expected a byte rate such as 500K, 10M or 1G")
        number, unit = float(match.group(1)), match.group(2).upper()
    rate = int(number * _SIZE_SUFFIXES[unit])
    if rate <= 0:
        raise ValueError("must be positive")
    return rate


class TargetBase(BaseModel):
    """Keys every target takes. Each provider's subclass narrows ``provider`` to its one tag."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(description="Which kind of storage the target is (its provider's tag).")
    name: str = Field(
        pattern=TARGET_NAME_PATTERN, description="The target's unique name, used in the ledger across the cluster."
    )
    requests_per_second: float | None = Field(
        default=None, gt=0, description="The most requests per second sent to the provider (unset: no limit)."
    )
    bandwidth_limit: int | None = Field(
        default=None, description="The most bytes per second uploaded, with K, M or G as powers of 1024."
    )
    include: list[str] = Field(
        default_factory=list, description="Globs of the files this target takes (empty: every file)."
    )
    exclude: list[str] = Field(default_factory=list, description="Globs of the files this target leaves out.")

    @field_validator("bandwidth_limit", mode="before")
    @classmethod
    def _byte_rate(cls, value: Any) -> int | None:
        return parse_byte_rate(value)
