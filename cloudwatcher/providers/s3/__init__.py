"""Amazon S3 and S3-compatible stores, through boto3.

Small files go up in one ``PutObject``; from ``multipart_threshold`` on, a multipart upload
whose session is saved after every part so that a restarted daemon resumes it. Every request
carries our own SHA-256 (``x-amz-checksum-sha256``), so S3 refuses bytes that do not match
what we hashed, and ``HeadObject(ChecksumMode="ENABLED")`` lets us check the stored object
afterwards. Bytes are streamed from disk with ``os.pread`` in bounded blocks: memory does not
grow with the file size.

The daemon owns the retry policy, so botocore makes exactly one attempt per call and every
failure is mapped to :class:`TransientError` or :class:`PermanentError` here.

S3 references:
- multipart limits: https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
- checksums (composite for multipart SHA-256):
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html
- error codes: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html

Modules, bottom up: ``config`` (the target's keys; no SDK), ``limits`` (key and part
arithmetic), ``errors`` (retry classes), ``body`` (streamed request bodies, range hashing),
``client`` (the boto3 client in its thread pool, naming, verification), ``multipart`` (resumable
multipart uploads), ``provider`` (the :class:`S3Provider` the registry builds).
"""

from typing import TYPE_CHECKING

from cloudwatcher.providers.lazy import lazy_exports

if TYPE_CHECKING:
    from cloudwatcher.providers.s3.errors import translate_error
    from cloudwatcher.providers.s3.limits import (
        DEFAULT_MULTIPART_THRESHOLD,
        DEFAULT_PART_SIZE,
        MAX_KEY_BYTES,
        MAX_PART_SIZE,
        MAX_PARTS,
        MIB,
        MIN_PART_SIZE,
        composite_sha256,
        normalise_prefix,
        part_size_for,
    )
    from cloudwatcher.providers.s3.multipart import PART_ATTEMPTS
    from cloudwatcher.providers.s3.provider import S3Provider

# Imported on first use: ``config`` (no SDK) must be importable without what these import.
__getattr__ = lazy_exports(
    __name__,
    {
        "translate_error": "errors",
        "DEFAULT_MULTIPART_THRESHOLD": "limits",
        "DEFAULT_PART_SIZE": "limits",
        "MAX_KEY_BYTES": "limits",
        "MAX_PART_SIZE": "limits",
        "MAX_PARTS": "limits",
        "MIB": "limits",
        "MIN_PART_SIZE": "limits",
        "composite_sha256": "limits",
        "normalise_prefix": "limits",
        "part_size_for": "limits",
        "PART_ATTEMPTS": "multipart",
        "S3Provider": "provider",
    },
)

__all__ = [
    "DEFAULT_MULTIPART_THRESHOLD",
    "DEFAULT_PART_SIZE",
    "MAX_KEY_BYTES",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIB",
    "MIN_PART_SIZE",
    "PART_ATTEMPTS",
    "S3Provider",
    "composite_sha256",
    "normalise_prefix",
    "part_size_for",
    "translate_error",
]
