"""The Drive v3 API as this provider reaches it: limits, the discovery document, the paced transport."""

from __future__ import annotations

import json
from typing import Any

import httplib2
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient import discovery_cache

from cloudwatcher.providers.pacing import TokenBucket

DRIVE_SCOPE = "https://www.googleapis.com/auth/drive"
FOLDER_MIME = "application/vnd.google-apps.folder"
FILE_FIELDS = "id,name,size,md5Checksum,sha256Checksum"
#: Resumable chunks except the last must be multiples of 256 KiB (Drive's upload guide).
CHUNK_GRANULARITY = 256 * 1024
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
#: Drive documents multipart uploads "for files up to 5 MB".
MULTIPART_LIMIT = 5 * 1024 * 1024
HTTP_TIMEOUT_SECONDS = 120
#: How long a worker thread waits for the ledger to record a session before giving up.
SAVE_STATE_TIMEOUT = 60.0
#: Session re-synchronisations in a row without progress before the attempt gives up.
MAX_SESSION_RESYNCS = 3


class ThrottledHttp(AuthorizedHttp):
    """Takes one request token per API or upload request. Token refreshes use the bare transport
    (``self._request``), so the token endpoint is not counted, as ``requests_per_second`` means
    (docs/configuration.md)."""

    def __init__(self, credentials: Any, http: httplib2.Http, limiter: TokenBucket) -> None:
        super().__init__(credentials, http=http)
        self._limiter = limiter

    def request(self, uri: str, method: str = "GET", body: Any = None, headers: Any = None, **kwargs: Any) -> Any:
        self._limiter.acquire()
        return super().request(uri, method, body=body, headers=headers, **kwargs)


def discovery_document(api_endpoint: str) -> dict[str, Any]:
    """The packaged Drive v3 discovery document, rooted at ``api_endpoint`` (never fetched)."""
    text = discovery_cache.get_static_doc("drive", "v3")
    if text is None:
        raise RuntimeError("google-api-python-client ships no static drive v3 discovery document")
    document: dict[str, Any] = json.loads(text)
    root = api_endpoint.rstrip("/") + "/"
    document["rootUrl"] = document["mtlsRootUrl"] = root
    document["baseUrl"] = root + document["servicePath"]
    return document


def quote_q(value: str) -> str:
    """A string literal for a Drive ``q`` expression (backslash and quote escaped)."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
