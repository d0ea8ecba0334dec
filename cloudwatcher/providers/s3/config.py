"""The keys of an S3 (or S3-compatible) target; credentials come from the standard AWS chain."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from cloudwatcher.providers.target import TargetBase


class S3Target(TargetBase):
    """A bucket, and a key prefix inside it."""

    provider: Literal["s3"] = Field(description="The tag of an S3 target.")
    bucket: str = Field(description="The bucket the files are stored in.")
    prefix: str = Field(default="", description="A key prefix put before every file's path.")
    region: str | None = Field(default=None, description="The bucket's region (unset: the AWS configuration's).")
    endpoint_url: str | None = Field(
        default=None, description="The address of an S3-compatible store (unset: Amazon S3)."
    )
    ca_bundle: Path | None = Field(
        default=None, description="A PEM file of the certificate authorities to trust instead of the system's."
    )
