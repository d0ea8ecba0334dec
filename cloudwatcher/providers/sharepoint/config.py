"""The keys of a SharePoint (or OneDrive for Business) target: an Entra app registration and a library."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from cloudwatcher.providers.target import ReadableFile, TargetBase, credential_path


class SharePointTarget(TargetBase):
    """A document library, reached as an app registration signing in with a secret or a certificate."""

    provider: Literal["sharepoint"] = Field(description="The tag of a SharePoint target.")
    tenant_id: str = Field(description="The Entra tenant (directory) id of the app registration.")
    client_id: str = Field(description="The app registration's application (client) id.")
    client_secret: SecretStr | None = Field(default=None, description="The app registration's client secret.")
    client_secret_file: ReadableFile | None = Field(
        default=None, description="A file holding the client secret (relative: under $CREDENTIALS_DIRECTORY)."
    )
    client_certificate_file: ReadableFile | None = Field(
        default=None,
        description="A PEM file with the app registration's certificate and private key, to sign in without a secret.",
    )
    drive_id: str | None = Field(default=None, description="The document library (drive) the files go to.")
    site_id: str | None = Field(
        default=None, description="The site whose default document library is used when drive_id is not given."
    )
    root: str = Field(default="", description="The folder inside the library the files go under.")
    graph_url: str = Field(
        default="https://graph.microsoft.com/v1.0", description="The Microsoft Graph address to call."
    )
    authority_url: str = Field(
        default="https://login.microsoftonline.com", description="The sign-in authority that issues the tokens."
    )
    ca_bundle: Path | None = Field(
        default=None, description="A PEM file of the certificate authorities to trust instead of the system's."
    )

    @model_validator(mode="after")
    def _needs_secret_and_drive(self) -> SharePointTarget:
        given = [
            key
            for key in ("client_secret", "client_secret_file", "client_certificate_file")
            if getattr(self, key) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "exactly one of client_secret, client_secret_file or client_certificate_file is required"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if not (self.drive_id or self.site_id):
            raise ValueError("drive_id or site_id is required")
        return self

    def secret(self) -> str:
        """The client secret, read from its file when given as one (not for a certificate sign-in)."""
        if self.client_secret is not None:
            return self.client_secret.get_secret_value()
        assert self.client_secret_file is not None
        return credential_path(self.client_secret_file).read_text().strip()
