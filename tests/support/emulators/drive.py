"""A strict Google Drive v3 + OAuth token emulator on 127.0.0.1, for tests through the real SDK.

Strict on purpose (docs/providers.md, Google Drive API v3): an emulator that accepts what Drive refuses proves
nothing. It checks service-account JWT grants (RS256 against the key file it generated, iss,
scope, aud, exp; a ``sub`` claim, domain-wide delegation, is recorded in :attr:`DriveEmulator.grants`),
a user's OAuth consent (:meth:`DriveEmulator.consent` stands in for the browser; the
authorization_code grant with its redirect_uri and PKCE verifier, then refresh_token grants),
demands a bearer on every API call and chunk PUT, parses only the ``q``
expressions Drive documents, returns only the ``fields`` asked for, enforces 256 KiB chunk
granularity, in-order chunks and the 5 MB multipart limit, hides shared-drive items from calls
without ``supportsAllDrives``, and answers errors in Drive's JSON shape. Faults are injected
through methods on :class:`DriveEmulator`; every request lands in :attr:`DriveEmulator.requests`.

The emulator object and its fault API live here; the wire formats in :mod:`tests.support.emulators.drive_wire`,
the state in :mod:`tests.support.emulators.drive_store` and the HTTP handler in
:mod:`tests.support.emulators.drive_routes`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.emulators.drive_routes import DriveHandler
from tests.support.emulators.drive_store import DriveFile, Fault, RequestRecord, UploadSession
from tests.support.emulators.drive_wire import (
    DRIVE_SCOPE,
    FOLDER_MIME,
    GOOGLE_TOKEN_AUDIENCE,
    DriveError,
    OAuthError,
    b64decode_padded,
)

#: Drive's per-minute quota message (the project number is the emulator's).
PER_MINUTE_LIMIT_MESSAGE = (
    "User Rate Limit Exceeded. Rate of requests for user exceed configured project quota. You may "
    "consider re-evaluating expected per-user traffic to the API and adjust project quota limits "
    "accordingly. You may monitor aggregate quota usage and adjust limits in the API Console: "
    "https://console.developers.google.com/apis/api/drive.googleapis.com/quotas?project=123456789012"
)

__all__ = ["DriveEmulator", "DriveError", "DriveFile", "Fault", "RequestRecord", "UploadSession"]


def pkce_verifier_matches(verifier: str | None, challenge: str, method: str) -> bool:
    """RFC 7636: a 43 to 128 character verifier whose S256 digest (or itself, "plain") is the challenge."""
    if verifier is None or not 43 <= len(verifier) <= 128:
        return False
    if method == "plain":
        return secrets.compare_digest(verifier, challenge)
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return secrets.compare_digest(digest, challenge)


class DriveEmulator:
    """Drive v3 + token endpoint in a background thread; use as a context manager."""

    def __init__(self, workdir: Path, *, tls: bool = False) -> None:
        self.workdir = workdir
        self._lock = threading.RLock()
        self._ids = (f"emu{n:06d}{secrets.token_hex(4)}" for n in itertools.count())
        self.files: dict[str, DriveFile] = {}
        self.sessions: dict[str, UploadSession] = {}
        self.tokens: dict[str, float] = {}
        self.requests: list[RequestRecord] = []
        self.faults: list[Fault] = []
        self.page_size_cap = 1000
        self._drops = 0
        self._corrupt_md5 = 0
        self.root_folder_id = self._add(DriveFile(next(self._ids), "mirror root", FOLDER_MIME, []))
        self.ca: Any = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), DriveHandler)
        self._server.daemon_threads = True
        self._server.emulator = self  # type: ignore[attr-defined]
        self._server.handle_error = self._handler_failed  # type: ignore[assignment,method-assign]
        #: Exceptions raised inside request handlers: an emulator bug, reported when it stops.
        self.handler_errors: list[str] = []
        scheme = "http"
        if tls:
            import trustme

            self.ca = trustme.CA()
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert("127.0.0.1").configure_cert(context)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self.token_uri = f"{self.url}/token"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_email = "uploader@cloudwatcher-test.iam.gserviceaccount.com"
        self.key_id = secrets.token_hex(20)
        self.key_file = workdir / "service-account.json"
        self.key_file.write_text(json.dumps(self._key_json()))
        # A user's OAuth consent ("Desktop app" client), as Google's OAuth 2.0 for installed apps documents.
        self.oauth_client_id = "1234567890-emu.apps.googleusercontent.com"
        self.oauth_client_secret = "GOCSPX-" + secrets.token_urlsafe(18)
        self.oauth_client_file = workdir / "oauth-client.json"
        self.oauth_client_file.write_text(json.dumps(self._oauth_client_json()))
        #: code → (redirect_uri, PKCE code_challenge or None, challenge method) it was issued for
        self._consent_codes: dict[str, tuple[str, str | None, str]] = {}
        self.refresh_tokens: set[str] = set()
        #: Every grant the token endpoint accepted, in order: (grant_type, the JWT's sub or None).
        self.grants: list[tuple[str, str | None]] = []
        self._thread = threading.Thread(target=self._server.serve_forever, name="drive-emulator", daemon=True)

    def _key_json(self) -> dict[str, str]:
        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": "cloudwatcher-test",
            "private_key_id": self.key_id,
            "private_key": pem,
            "client_email": self.client_email,
            "client_id": "1234567890",
            "token_uri": self.token_uri,
            "auth_uri": f"{self.url}/auth",
        }

    def _oauth_client_json(self) -> dict[str, Any]:
        return {
            "installed": {
                "client_id": self.oauth_client_id,
                "project_id": "cloudwatcher-test",
                "auth_uri": f"{self.url}/o/oauth2/auth",
                "token_uri": self.token_uri,
                "client_secret": self.oauth_client_secret,
                "redirect_uris": ["http://localhost"],
            }
        }

    def consent(self, url: str) -> str:
        """What the browser does when the user agrees on the consent page: checks the URL as Google does
        and returns the address it redirects to, holding ``code`` and ``state``."""
        split = urlsplit(url)
        query = dict(parse_qsl(split.query))
        if f"{split.scheme}://{split.netloc}{split.path}" != f"{self.url}/o/oauth2/auth":
            raise AssertionError(f"not this emulator's consent page: {url}")
        if query.get("client_id") != self.oauth_client_id:
            raise AssertionError("Error 401: invalid_client")
        redirect = query.get("redirect_uri", "")
        if urlsplit(redirect).hostname not in ("127.0.0.1", "localhost", "::1") or urlsplit(redirect).scheme != "http":
            raise AssertionError("Error 400: redirect_uri_mismatch (desktop clients take loopback addresses)")
        if query.get("response_type") != "code" or DRIVE_SCOPE not in query.get("scope", "").split():
            raise AssertionError("Error 400: invalid_request")
        if query.get("access_type") != "offline":
            raise AssertionError("without access_type=offline Google issues no refresh token")
        challenge = query.get("code_challenge")
        if challenge is not None and query.get("code_challenge_method", "plain") not in ("S256", "plain"):
            raise AssertionError("Error 400: invalid_request (code_challenge_method)")
        code = "4/0A" + secrets.token_urlsafe(24)
        with self._lock:
            self._consent_codes[code] = (redirect, challenge, query.get("code_challenge_method", "plain"))
        return f"{redirect}/?{urlencode({'state': query.get('state', ''), 'code': code, 'scope': DRIVE_SCOPE})}"

    def write_ca_bundle(self, path: Path) -> Path:
        """The test CA as a PEM file (TLS mode only), for ``ca_bundle``."""
        self.ca.cert_pem.write_to_path(str(path))
        return path

    def __enter__(self) -> DriveEmulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self.handler_errors and exc[0] is None:
            raise AssertionError("the Drive emulator failed inside a handler:\n" + "\n".join(self.handler_errors))

    def _handler_failed(self, request: object, address: object) -> None:
        """A client that hangs up mid-request is normal (tests kill daemons); anything else is a
        bug here, which the client would only see as a dropped connection."""
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            self.handler_errors.append(traceback.format_exc())

    # --- test-facing helpers --------------------------------------------------------------------

    def _add(self, item: DriveFile) -> str:
        with self._lock:
            self.files[item.id] = item
        return item.id

    def create_shared_drive(self) -> str:
        """A shared drive; like Drive, its id is also the id of its root folder."""
        drive_id = "0A" + secrets.token_hex(8)
        self._add(DriveFile(drive_id, "Shared drive", FOLDER_MIME, [], drive_id=drive_id))
        return drive_id

    def children(self, parent_id: str, name: str | None = None) -> list[DriveFile]:
        with self._lock:
            return [
                item
                for item in self.files.values()
                if parent_id in item.parents and not item.trashed and (name is None or item.name == name)
            ]

    def lookup(self, root_id: str, path: str) -> list[DriveFile]:
        """Every item at ``path`` under ``root_id`` (a list: Drive allows duplicate names)."""
        level = [root_id]
        found: list[DriveFile] = []
        for part in path.split("/"):
            found = [child for parent in level for child in self.children(parent, part)]
            level = [item.id for item in found]
        return found

    def fail_next(
        self,
        status: int,
        reason: str,
        message: str | None = None,
        *,
        count: int = 1,
        retry_after: float | None = None,
        when: Callable[[RequestRecord], bool] | None = None,
    ) -> None:
        """The next ``count`` API requests (matching ``when``) answer this error."""
        with self._lock:
            self.faults.append(
                Fault(status, reason, message or reason, count, retry_after, when or (lambda record: True))
            )

    def rate_limit(self, count: int = 1, retry_after: float | None = None) -> None:
        """The per-minute quota: 403 userRateLimitExceeded, its message "User Rate Limit Exceeded"
        followed by more text (https://developers.google.com/drive/api/guides/handle-errors)."""
        self.fail_next(403, "userRateLimitExceeded", PER_MINUTE_LIMIT_MESSAGE, count=count, retry_after=retry_after)

    def daily_upload_cap_as_rate_limit(self, count: int = 1) -> None:
        """The 750 GB/day upload cap in the shape Drive also documents for it: 403
        userRateLimitExceeded, its message exactly "User rate limit exceeded." (on uploads)."""
        self.fail_next(
            403,
            "userRateLimitExceeded",
            "User rate limit exceeded.",
            count=count,
            when=lambda record: record.path.startswith("/upload/"),
        )

    def storage_quota_exceeded(self) -> None:
        self.fail_next(
            403,
            "storageQuotaExceeded",
            "The user's Drive storage quota has been exceeded.",
            when=lambda record: record.path.startswith("/upload/"),
        )

    def daily_upload_cap(self) -> None:
        self.fail_next(
            403,
            "uploadLimitExceeded",
            "The user has exceeded their daily upload limit.",
            when=lambda record: record.path.startswith("/upload/"),
        )

    def drop_next_chunk(self, count: int = 1) -> None:
        """The next chunk PUT(s) lose their connection halfway; the server keeps what it got,
        rounded down to 256 KiB, as Drive persists partial data."""
        with self._lock:
            self._drops += count

    def corrupt_next_md5(self) -> None:
        """The next completed upload reports an md5 that does not match the bytes."""
        with self._lock:
            self._corrupt_md5 += 1

    def expire_sessions(self) -> None:
        with self._lock:
            self.sessions.clear()

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    def log(self, method: str | None = None, path_prefix: str = "") -> list[RequestRecord]:
        with self._lock:
            return [
                record
                for record in self.requests
                if (method is None or record.method == method) and record.path.startswith(path_prefix)
            ]

    # --- token endpoint -------------------------------------------------------------------------

    def grant_token(self, form: dict[str, str]) -> dict[str, Any]:
        """Check a grant; a bad one raises ``OAuthError`` (400, Google's error names)."""
        grant_type = form.get("grant_type")
        if grant_type in ("authorization_code", "refresh_token"):
            return self._user_grant(form)
        if grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            raise OAuthError("unsupported_grant_type", "Invalid grant_type")
        try:
            header_b64, claims_b64, signature_b64 = form["assertion"].split(".")
            header = json.loads(b64decode_padded(header_b64))
            claims = json.loads(b64decode_padded(claims_b64))
            signature = b64decode_padded(signature_b64)
        except (KeyError, ValueError) as exc:
            raise OAuthError("invalid_grant", "Invalid JWT") from exc
        if header.get("alg") != "RS256" or header.get("kid") not in (None, self.key_id):
            raise OAuthError("invalid_grant", "Invalid JWT header")
        try:
            self._key.public_key().verify(
                signature, f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception as exc:
            raise OAuthError("invalid_grant", "Invalid JWT Signature.") from exc
        now = time.time()
        if claims.get("iss") != self.client_email:
            raise OAuthError("invalid_grant", "Invalid issuer")
        # google-auth always addresses Google's token endpoint, whatever token_uri says; Google
        # checks that audience. The emulator also takes its own URI.
        if claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, self.token_uri):
            raise OAuthError("invalid_grant", "Invalid JWT: aud does not match the token endpoint")
        if DRIVE_SCOPE not in str(claims.get("scope", "")).split():
            raise OAuthError("invalid_scope", "Missing or invalid scope")
        iat, exp = float(claims.get("iat", 0)), float(claims.get("exp", 0))
        if exp < now or iat > now + 300 or exp - iat > 3600:
            raise OAuthError("invalid_grant", "Invalid JWT: Token must be a short-lived token")
        subject = claims.get("sub")
        if subject is not None and (not isinstance(subject, str) or "@" not in subject):
            raise OAuthError("invalid_grant", "Invalid email or User ID")
        with self._lock:
            self.grants.append((str(grant_type), subject))
        return self._access_token()

    def _access_token(self) -> dict[str, Any]:
        token = "ya29." + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = time.time() + 3599
        return {"access_token": token, "token_type": "Bearer", "expires_in": 3599, "scope": DRIVE_SCOPE}

    def _user_grant(self, form: dict[str, str]) -> dict[str, Any]:
        """The authorization_code and refresh_token grants of Google's OAuth 2.0 for installed apps."""
        if form.get("client_id") != self.oauth_client_id or form.get("client_secret") != self.oauth_client_secret:
            raise OAuthError("invalid_client", "Unauthorized", status=401)
        with self._lock:
            if form["grant_type"] == "authorization_code":
                issued = self._consent_codes.pop(form.get("code", ""), None)  # a code is good once
                if issued is None:
                    raise OAuthError("invalid_grant", "Malformed auth code.")
                redirect, challenge, method = issued
                if form.get("redirect_uri") not in (redirect, redirect + "/"):
                    raise OAuthError("redirect_uri_mismatch", "Bad Request")
                if challenge is not None and not pkce_verifier_matches(form.get("code_verifier"), challenge, method):
                    raise OAuthError("invalid_grant", "Invalid code verifier.")
                refresh = "1//0g" + secrets.token_urlsafe(32)
                self.refresh_tokens.add(refresh)
                self.grants.append(("authorization_code", None))
                return {**self._access_token(), "refresh_token": refresh}
            if form.get("refresh_token") not in self.refresh_tokens:
                raise OAuthError("invalid_grant", "Token has been expired or revoked.")
            self.grants.append(("refresh_token", None))
        return self._access_token()

    def check_bearer(self, authorization: str | None) -> None:
        if not authorization or not authorization.startswith("Bearer "):
            raise DriveError(401, "required", "Request is missing required authentication credential.")
        with self._lock:
            expiry = self.tokens.get(authorization[len("Bearer ") :])
        if expiry is None or expiry < time.time():
            raise DriveError(401, "authError", "Invalid Credentials")

    def take_fault(self, record: RequestRecord) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.applies(record):
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def take_drop(self) -> bool:
        with self._lock:
            if self._drops:
                self._drops -= 1
                return True
        return False

    def take_corrupt(self) -> bool:
        with self._lock:
            if self._corrupt_md5:
                self._corrupt_md5 -= 1
                return True
        return False

    def new_id(self) -> str:
        # Handler threads ask at once; a generator advanced by two threads raises "generator
        # already executing", which closed the connection without an answer (a flaky test).
        with self._lock:
            return next(self._ids)
