"""Google Drive (API v3) through google-api-python-client, as a mirror target.

Why it is built the way it is:

- The client is synchronous and httplib2 is not thread-safe, so every call runs in a bounded
  thread pool (size = the target's upload concurrency) with one service object, and so one
  connection pool, per thread.
- The discovery document is the package's static copy with its ``rootUrl`` set to
  ``api_endpoint``. ``client_options.api_endpoint`` alone only swaps the *host* of ``/upload/``
  URLs (googleapiclient.discovery._fix_up_media_path_base_url keeps ``https`` and drops any path
  prefix), so an ``http://`` emulator or a proxied root would get metadata and media calls on
  different roots.
- Drive allows several files of one name in a folder
  (https://developers.google.com/drive/api/guides/about-files): every upload looks the name up
  first and updates the file it finds; folders are looked up or created once per path under a
  per-path lock and cached.
- The library's own retries are off (``num_retries=0``): the daemon owns the retry policy. The
  one exception is re-synchronising a resumable session after a dropped chunk, which is part of
  the upload protocol (https://developers.google.com/drive/api/guides/manage-uploads#resumable),
  not a retry of a failed request.

Modules, bottom up: ``config`` (the target's keys; no SDK), ``api`` (limits, discovery document,
the paced transport), ``errors`` (retry classes), ``upload_cap`` (the daily cap behind a per-
minute rate limit), ``media`` (the hashing chunk source), ``state`` (locks, live sessions,
folder ids), ``client`` (per-thread service, lookups), ``upload`` (multipart and resumable
uploads), ``provider`` (the async :class:`GoogleDriveProvider`).
"""

from typing import TYPE_CHECKING

from cloudwatcher.providers.lazy import lazy_exports

if TYPE_CHECKING:
    from cloudwatcher.providers.google_drive.api import (
        CHUNK_GRANULARITY,
        DEFAULT_CHUNK_SIZE,
        DRIVE_SCOPE,
        MULTIPART_LIMIT,
    )
    from cloudwatcher.providers.google_drive.errors import translate_error, translate_http_error
    from cloudwatcher.providers.google_drive.provider import GoogleDriveProvider

# Imported on first use: ``config`` (no SDK) must be importable without what these import.
__getattr__ = lazy_exports(
    __name__,
    {
        "CHUNK_GRANULARITY": "api",
        "DEFAULT_CHUNK_SIZE": "api",
        "DRIVE_SCOPE": "api",
        "MULTIPART_LIMIT": "api",
        "translate_error": "errors",
        "translate_http_error": "errors",
        "GoogleDriveProvider": "provider",
    },
)

__all__ = [
    "CHUNK_GRANULARITY",
    "DEFAULT_CHUNK_SIZE",
    "DRIVE_SCOPE",
    "MULTIPART_LIMIT",
    "GoogleDriveProvider",
    "translate_error",
    "translate_http_error",
]
