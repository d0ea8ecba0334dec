"""What S3 accepts: key length, part sizes and counts, and the arithmetic of multipart parts.

https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
"""

from __future__ import annotations

import base64
import hashlib
import math

from cloudwatcher.providers.base import PermanentError

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB  # S3 refuses smaller parts (except the last): EntityTooSmall
MAX_PART_SIZE = 5 * 1024 * MIB
MAX_PARTS = 10_000
MAX_KEY_BYTES = 1024
DEFAULT_PART_SIZE = 8 * MIB
DEFAULT_MULTIPART_THRESHOLD = 8 * MIB


def normalise_prefix(prefix: str) -> str:
    """``"a/b/"``, ``"/a/b"`` and ``"a/b"`` all become ``"a/b/"``; an empty prefix stays empty."""
    stripped = prefix.strip("/")
    return f"{stripped}/" if stripped else ""


def composite_sha256(part_digests: list[bytes]) -> str:
    """S3's checksum of a multipart object: sha256 of the concatenated binary part digests."""
    return base64.b64encode(hashlib.sha256(b"".join(part_digests)).digest()).decode()


def part_size_for(size: int, preferred: int) -> int:
    """``preferred``, grown in whole MiB when needed so that ``size`` bytes fit in 10,000 parts."""
    needed = math.ceil(size / MAX_PARTS)
    if needed <= preferred:
        return preferred
    grown = math.ceil(needed / MIB) * MIB
    if grown > MAX_PART_SIZE:
        raise PermanentError(f"file of {size} bytes is over S3's multipart limit (10,000 parts of 5 GiB)")
    return grown
