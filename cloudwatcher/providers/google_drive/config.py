"""The keys of a Google Drive target: a folder, and one way to sign in."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from cloudwatcher.providers.target import ReadableFile, TargetBase


class GoogleDriveTarget(TargetBase):
    """A Drive folder. Service accounts own no storage, so one signs in to upload into a shared drive,
    or impersonates a user (domain-wide delegation); else a user's OAuth consent (``authorize``)."""

    provider: Literal["google-drive"] = Field(description="The tag of a Google Drive target.")
    service_account_file: ReadableFile | None = Field(
        default=None, description="A service account's JSON key, to sign in as that service account."
    )
    impersonate: str | None = Field(
        default=None,
        description="A user's email: the service account acts as that user (domain-wide delegation).",
    )
    oauth_client_file: ReadableFile | None = Field(
        default=None,
        description='The OAuth client ("Desktop app") JSON from the Google Cloud console, to sign in as a user.',
    )
    token_file: Path | None = Field(
        default=None,
        description="Where `cloudwatcher authorize` stores the user's refresh token (need not exist yet).",
    )
    folder_id: str = Field(description="The Drive folder the files go under.")
    shared_drive_id: str | None = Field(default=None, description="The shared drive that holds the folder.")
    api_endpoint: str = Field(default="https://www.googleapis.com", description="The Drive API address to call.")
    ca_bundle: Path | None = Field(
        default=None, description="A PEM file of the certificate authorities to trust instead of the system's."
    )
    # Drive's documented per-user quota makes an unthrottled uploader spin on 403s.
    requests_per_second: float | None = Field(
        default=10.0, gt=0, description="The most requests per second sent to Drive (its per-user quota)."
    )

    @model_validator(mode="after")
    def _one_way_to_sign_in(self) -> GoogleDriveTarget:
        service_account = self.service_account_file is not None
        oauth = self.oauth_client_file is not None or self.token_file is not None
        if service_account and oauth:
            raise ValueError(
                "service_account_file cannot be combined with oauth_client_file/token_file: "
                "give exactly one way to sign in"
            )
        if not service_account and not oauth:
            raise ValueError("one way to sign in is required: service_account_file, or oauth_client_file + token_file")
        if oauth and (self.oauth_client_file is None or self.token_file is None):
            missing = "oauth_client_file" if self.oauth_client_file is None else "token_file"
            raise ValueError(f"{missing} is required with a user's OAuth sign-in")
        if self.impersonate is not None and not service_account:
            raise ValueError("impersonate needs service_account_file (domain-wide delegation)")
        return self
