"""SharePoint / OneDrive for Business through Microsoft Graph (msgraph-sdk + azure-identity).

Requests go through the SDK's request adapter: JSON calls through the generated request
builders, file bytes as :class:`RequestInformation` sent by the same adapter and http client.
Upload fragments go through a second adapter on the same http client with anonymous
authentication, because the ``uploadUrl`` is pre-authenticated and MUST NOT receive the
bearer token. msgraph-core 1.5.2's ``LargeFileUploadTask`` is not used: it crashes on open
``"N-"`` ranges and sends fragments one byte too long on ``"N-M"`` ones (docs/providers.md, Microsoft Graph).

The SDK's retry middleware is left out on purpose: it sleeps on ``Retry-After`` (up to
minutes) inside one call, while the daemon owns the retry policy and wants the hint, which
this module reports as :attr:`TransientError.retry_after`.

Name rule (``remote_name``), applied to each path segment, deterministic, as OneDrive's
client and rclone do it, so that what SharePoint refuses is renamed, never refused:

=====================================  ==================================================
local                                  remote
=====================================  ==================================================
``" * : < > ? \\ |``                    the fullwidth form, code point + 0xFEE0 (``:`` is
                                       U+FF1A FULLWIDTH COLON, ``?`` U+FF1F, ...)
leading / trailing spaces              U+2420 SYMBOL FOR SPACE, one per space
a trailing ``.``                       U+FF0E FULLWIDTH FULL STOP
a name starting with ``~$``            prefixed with ``_`` (``_~$x.docx``)
``_vti_`` anywhere (any case)          its last ``_`` becomes U+FF3F FULLWIDTH LOW LINE
``CON PRN AUX NUL COM0-9 LPT0-9``      ``_`` after the stem (``CON.txt`` becomes
(alone or before an extension)         ``CON_.txt``)
``.lock``, ``desktop.ini``             suffixed with ``_``
=====================================  ==================================================

``/`` separates segments and never reaches the rule. A path longer than 400 characters
(target root included) is refused with :class:`PermanentError`.

Verification: SharePoint reports only a quickXorHash. A library may rewrite what it stores
(Office documents, PDF, HTML, images whose metadata it touches, and whatever its policies
change), so after a complete upload that SharePoint acknowledged, or whose lost final answer is
followed by an item written since the upload started, a different hash is recorded as
``server-modified`` and never uploaded again in a loop (``upload``).

Modules, bottom up: ``config`` (the target's keys; no SDK), ``names`` (the rule above), ``errors`` (retry classes),
``transport`` (credential, pacing middleware, TLS trust), ``items`` (requests through the SDK's
adapter, driveItems read from their JSON), ``client`` (SDK adapters, paths, folders), ``session``
(resumable upload sessions), ``upload`` (simple PUT, verification), ``provider``
(:class:`SharePointProvider`).
"""

from typing import TYPE_CHECKING

from cloudwatcher.providers.lazy import lazy_exports

if TYPE_CHECKING:
    from cloudwatcher.providers.sharepoint.errors import QuickXorMismatchError, classify
    from cloudwatcher.providers.sharepoint.names import MAX_PATH_LENGTH, sanitize_segment
    from cloudwatcher.providers.sharepoint.provider import SharePointProvider
    from cloudwatcher.providers.sharepoint.session import FRAGMENT_SIZE, FRAGMENT_UNIT
    from cloudwatcher.providers.sharepoint.upload import SIMPLE_UPLOAD_LIMIT

# Imported on first use: ``config`` (no SDK) must be importable without what these import.
__getattr__ = lazy_exports(
    __name__,
    {
        "QuickXorMismatchError": "errors",
        "classify": "errors",
        "MAX_PATH_LENGTH": "names",
        "sanitize_segment": "names",
        "SharePointProvider": "provider",
        "FRAGMENT_SIZE": "session",
        "FRAGMENT_UNIT": "session",
        "SIMPLE_UPLOAD_LIMIT": "upload",
    },
)

__all__ = [
    "FRAGMENT_SIZE",
    "FRAGMENT_UNIT",
    "MAX_PATH_LENGTH",
    "SIMPLE_UPLOAD_LIMIT",
    "QuickXorMismatchError",
    "SharePointProvider",
    "classify",
    "sanitize_segment",
]
