"""How a SharePoint target signs in as its app registration: a client secret or a certificate.

With a certificate, azure-identity signs a client assertion (a JWT carrying the certificate's
thumbprint) with the private key in the PEM; no secret ever travels, and certificates are what
many tenants require for app-only access.
"""

from __future__ import annotations

from azure.identity.aio import CertificateCredential, ClientSecretCredential

from cloudwatcher.providers.sharepoint.config import SharePointTarget
from cloudwatcher.providers.target import credential_path


def sign_in_credential(
    config: SharePointTarget, trust_file: str | None
) -> CertificateCredential | ClientSecretCredential:
    """A fresh azure-identity credential for the target's one way of signing in."""
    common = {
        "authority": config.authority_url.rstrip("/"),
        # The authority is the configured one (sovereign clouds, emulators): never ask the public cloud.
        "disable_instance_discovery": True,
        "connection_verify": trust_file or True,
        # Two quick retries smooth a blip; longer outages are the daemon's to retry.
        "retry_total": 2,
    }
    if config.client_certificate_file is not None:
        return CertificateCredential(
            config.tenant_id,
            config.client_id,
            certificate_path=str(credential_path(config.client_certificate_file)),
            **common,
        )
    return ClientSecretCredential(config.tenant_id, config.client_id, config.secret(), **common)
