"""S3's ETag as the fallback hash, for stores that return no SHA-256 checksum.

S3 and most compatible stores keep ``ChecksumSHA256`` (sent with every request) and return
it from HeadObject, which is what the provider verifies. Where a store does not, the ETag is
the next best thing: for an object stored in one piece it is the MD5 of its bytes, and for a
multipart object the MD5 of the concatenated binary part MD5s followed by ``-<parts>``
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html, ``ETag``). Objects encrypted
with SSE-KMS or SSE-C have ETags that are not an MD5 of their data; for those (and stores whose
ETags have another shape) the Content-MD5 sent with every body, which the store checks on
receipt (``BadDigest``), is the verification.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Literal, Protocol

_MD5_SHAPED = re.compile(r"^[0-9a-f]{32}(-[0-9]+)?$")
_OPAQUE_ENCRYPTION = ("aws:kms", "aws:kms:dsse")


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...


class HashTee:
    """Feeds every block to several hashes (the file's running SHA-256 and a part's MD5)."""

    def __init__(self, *hashes: _Hash) -> None:
        self._hashes = hashes

    def update(self, data: bytes) -> None:
        for each in self._hashes:
            each.update(data)


def new_md5() -> Any:
    """An MD5 for integrity only (allowed where FIPS mode forbids MD5 for security)."""
    return hashlib.md5(usedforsecurity=False)


def single_part_etag(md5: bytes) -> str:
    """The ETag of an object put in one request: its MD5 in hex."""
    return md5.hex()


def multipart_etag(part_md5s: list[bytes]) -> str:
    """The ETag of a multipart object: MD5 of the concatenated part MD5s, then ``-<parts>``."""
    return f"{hashlib.md5(b''.join(part_md5s), usedforsecurity=False).hexdigest()}-{len(part_md5s)}"


def compare_etag(head: Mapping[str, Any], expected: str) -> Literal["match", "mismatch", "opaque"]:
    """Whether the stored object's ETag shows the bytes we sent.

    ``opaque`` when the ETag cannot be an MD5 of the data (SSE-KMS, SSE-C, another shape).
    """
    remote = str(head.get("ETag") or "").strip('"').lower()
    if remote == expected:
        return "match"
    encrypted = head.get("ServerSideEncryption") in _OPAQUE_ENCRYPTION or bool(head.get("SSECustomerAlgorithm"))
    if encrypted or not _MD5_SHAPED.match(remote):
        return "opaque"
    return "mismatch"
