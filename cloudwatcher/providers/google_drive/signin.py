"""The ways a Drive target signs in: a service account (shared drive, or impersonating a user through
domain-wide delegation) or a user's OAuth consent, whose refresh token ``cloudwatcher authorize`` stores.

A service account owns no storage, so it can only upload into a shared drive or as the user it
impersonates; a user's consent uploads into that user's My Drive. The flow for the consent is
built by hand here (consent URL, code exchange): google-auth-oauthlib is not a dependency, and the
two requests it would make are a URL and one form POST. Refreshing the access token afterwards is
google-auth's own ``google.oauth2.credentials.Credentials``, which the transport refreshes itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import httplib2
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from cloudwatcher.providers.base import PermanentError
from cloudwatcher.providers.google_drive.api import DRIVE_SCOPE, HTTP_TIMEOUT_SECONDS
from cloudwatcher.providers.google_drive.config import GoogleDriveTarget
from cloudwatcher.providers.target import credential_path
from cloudwatcher.providers.trust import target_trust

GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
#: The loopback redirect Google documents for desktop apps; nothing needs to listen there: the
#: browser shows an error page whose address holds the code, which the user pastes back.
LOOPBACK_REDIRECT = "http://127.0.0.1"


@dataclass(frozen=True)
class OAuthClient:
    """The parts of an OAuth client file ("installed" or "web" application) the flow needs."""

    client_id: str
    client_secret: str
    auth_uri: str
    token_uri: str

    @classmethod
    def from_file(cls, path: Path) -> OAuthClient:
        try:
            document = json.loads(path.read_text())
            section = document.get("installed") or document.get("web") or document
            return cls(
                client_id=str(section["client_id"]),
                client_secret=str(section["client_secret"]),
                auth_uri=str(section.get("auth_uri", GOOGLE_AUTH_URI)),
                token_uri=str(section.get("token_uri", GOOGLE_TOKEN_URI)),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PermanentError(f"cannot use OAuth client file {path}: {exc!r}") from exc


def load_credentials(config: GoogleDriveTarget) -> Any:
    """google-auth credentials for the target's one way of signing in (the transport refreshes them)."""
    if config.service_account_file is not None:
        key_file = credential_path(config.service_account_file)
        try:
            account = service_account.Credentials.from_service_account_file(str(key_file), scopes=[DRIVE_SCOPE])
        except (OSError, ValueError) as exc:
            raise PermanentError(f"cannot use service account key {key_file}: {exc}") from exc
        # with_subject puts the user in the JWT's "sub" claim: domain-wide delegation.
        return account.with_subject(config.impersonate) if config.impersonate else account
    assert config.oauth_client_file is not None and config.token_file is not None  # the settings model's rule
    client = OAuthClient.from_file(credential_path(config.oauth_client_file))
    token_file = credential_path(config.token_file)
    try:
        refresh_token = str(json.loads(token_file.read_text())["refresh_token"])
    except FileNotFoundError:
        raise PermanentError(
            f"no token in {token_file}: run `cloudwatcher authorize google-drive {config.name}` first"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PermanentError(f"cannot read the refresh token in {token_file}: {exc!r}") from exc
    return user_credentials.Credentials(
        token=None,
        refresh_token=refresh_token,
        token_uri=client.token_uri,
        client_id=client.client_id,
        client_secret=client.client_secret,
        scopes=[DRIVE_SCOPE],
    )


def user_secrets(config: GoogleDriveTarget) -> list[str]:
    """The OAuth client secret and the stored refresh token, so the logs can mask them; [] when unreadable."""
    if config.oauth_client_file is None or config.token_file is None:
        return []
    found: list[str] = []
    try:
        found.append(OAuthClient.from_file(credential_path(config.oauth_client_file)).client_secret)
        found.append(str(json.loads(credential_path(config.token_file).read_text())["refresh_token"]))
    except (PermanentError, OSError, ValueError, KeyError, TypeError):
        pass  # not authorized yet, or broken: the target reports that itself
    return found


@dataclass(frozen=True)
class SignInAttempt:
    """One run of the consent flow: ``state`` ties the pasted address to this URL, and the PKCE
    verifier (RFC 7636, which Google's guide for installed apps uses) makes a code caught on its
    way through the loopback address useless to anyone who does not hold the verifier."""

    state: str
    code_verifier: str

    @classmethod
    def new(cls) -> SignInAttempt:
        return cls(state=secrets.token_urlsafe(16), code_verifier=secrets.token_urlsafe(64))

    @property
    def code_challenge(self) -> str:
        digest = hashlib.sha256(self.code_verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def consent_url(client: OAuthClient, attempt: SignInAttempt) -> str:
    """The URL the user opens to grant Drive access; ``offline`` + ``consent`` yield a refresh token."""
    query = {
        "client_id": client.client_id,
        "redirect_uri": LOOPBACK_REDIRECT,
        "response_type": "code",
        "scope": DRIVE_SCOPE,
        "access_type": "offline",
        "prompt": "consent",
        "state": attempt.state,
        "code_challenge": attempt.code_challenge,
        "code_challenge_method": "S256",
    }
    return f"{client.auth_uri}?{urlencode(query)}"


def code_from(pasted: str, state: str) -> str:
    """The code from what the user pasted: the bare code, or the whole redirect address."""
    pasted = pasted.strip()
    if not pasted:
        raise ValueError("no code given")
    if "://" not in pasted and "code=" not in pasted:
        # Copied out of an address, the code's "/" may still be written "%2F"; codes hold no "%".
        return unquote(pasted)
    query = parse_qs(urlsplit(pasted).query if "://" in pasted else pasted.lstrip("?"))
    if "error" in query:
        raise ValueError(f"consent refused: {query['error'][0]}")
    if query.get("state", [state])[0] != state:
        raise ValueError("the address is from another sign-in (state does not match)")
    if "code" not in query:
        raise ValueError("no code= in the address")
    return query["code"][0]


def exchange_code(client: OAuthClient, code: str, attempt: SignInAttempt, ca_bundle: Path | None) -> str:
    """Trade the consent code for a refresh token at the client's token endpoint."""
    http = httplib2.Http(timeout=HTTP_TIMEOUT_SECONDS, ca_certs=target_trust(ca_bundle).bundle_file())
    body = urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "redirect_uri": LOOPBACK_REDIRECT,
            "code_verifier": attempt.code_verifier,
        }
    )
    try:
        response, content = http.request(
            client.token_uri,
            "POST",
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    except (OSError, httplib2.HttpLib2Error) as exc:
        raise PermanentError(f"cannot reach {client.token_uri}: {exc}") from exc
    try:
        answer = json.loads(content)
    except ValueError:
        answer = {}
    if response.status != 200 or not isinstance(answer, dict) or "refresh_token" not in answer:
        reason = answer.get("error_description") or answer.get("error") if isinstance(answer, dict) else None
        raise PermanentError(f"the token endpoint refused the code: HTTP {response.status} {reason or ''}".rstrip())
    return str(answer["refresh_token"])


def store_refresh_token(token_file: Path, refresh_token: str) -> None:
    """Write the token readable by its owner only (0600 from creation, never wider), replacing any old one."""
    token_file.parent.mkdir(parents=True, exist_ok=True)
    partial = token_file.with_name(f".{token_file.name}.{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump({"refresh_token": refresh_token}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, token_file)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
