"""Small files through a blocking provider (the local mirror), many rows per worker thread.

A thread hop per file would cost more than copying a small file, so rows up to
:data:`BATCH_FILE_LIMIT` go in batches, each uploaded one after another in one thread. A batch
holds one upload slot, so bigger files get slots of their own and never queue behind a batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

from cloudwatcher.daemon.ledger.store import ClaimedRow
from cloudwatcher.daemon.retry import quick_retrying_blocking, server_retry_after, worth_a_quick_retry
from cloudwatcher.daemon.upload.attempt import upload_while_held
from cloudwatcher.daemon.upload.checks import unchanged_during_upload, unchanged_since_recorded
from cloudwatcher.providers import TransientError, UploadJob, UploadResult

# Files up to this size go through a blocking provider in batches (BlockingUploads).
BATCH_FILE_LIMIT = 256 * 1024
BATCH_LIMIT = 64  # rows per batch: enough to amortise the hand-off, small enough to keep latency
# Batches running at once (each in its own thread, within upload_concurrency). Copying small files
# is Python work between system calls, so threads queue on the GIL: in the burst benchmark one
# thread was as fast as two and four were 20% slower. Two still overlap the round trips of a
# network mount (NFS, SMB), where each create and rename waits on the server.
BATCH_LANES = 2


def fits_a_batch(row: ClaimedRow) -> bool:
    """Small, and not resuming a session (which only the single-row path resumes)."""
    return row.size <= BATCH_FILE_LIMIT and row.upload_session is None


def batch_size(rows: int, lanes: int) -> int:
    """Rows per batch: spread over the lanes, at most :data:`BATCH_LIMIT`."""
    return min(BATCH_LIMIT, -(-rows // lanes)) if rows else 1


def upload_many(
    upload: Callable[[UploadJob], UploadResult],
    rows: list[ClaimedRow],
    remote_paths: list[str | Exception],
    watch_root: Path,
    attempt_seconds: dict[UUID, float],
) -> list[UploadResult | Exception]:
    """Runs in a worker thread: each row's outcome, its result or its error (and in
    ``attempt_seconds`` each row's own attempt time)."""
    quick_retries = quick_retrying_blocking()  # one per batch: it is reused row after row
    # Once a row has failed with a transient error despite its quick retries, the target is
    # likely in trouble (a full or read-only mirror): the rest of the batch gets one try each
    # rather than seconds of back-off each, and the schedule retries what fails.
    in_trouble = False
    outcomes: list[UploadResult | Exception] = []
    for row, remote_path in zip(rows, remote_paths, strict=True):
        if isinstance(remote_path, Exception):
            outcomes.append(remote_path)
            continue
        began = time.monotonic()
        try:
            local_file = watch_root / row.local_path
            # With the recorded bytes in hand the file is looked at once, after the upload.
            recorded = row.content is not None
            mtime_ns = row.mtime_ns if recorded else unchanged_since_recorded(row, local_file, watch_root)
            job = UploadJob(
                local_file,
                remote_path,
                row.size,
                row.sha256,
                mtime_ns,
                content=row.content,
                watch_root=watch_root,
            )
            try:
                result = upload_while_held(upload, row, job)
            except Exception as exc:  # tenacity only from here: its set-up per call showed in profiles
                if in_trouble or not worth_a_quick_retry(exc):
                    raise
                # tenacity makes its first call at once: the server's hint is waited out here.
                time.sleep(server_retry_after(exc))
                result = quick_retries(upload_while_held, upload, row, job)
            if recorded:
                unchanged_since_recorded(row, local_file, watch_root)  # still there, and still those bytes
            else:
                unchanged_during_upload(row, local_file, mtime_ns)
            outcomes.append(result)
        except Exception as exc:
            in_trouble = in_trouble or isinstance(exc, TransientError)
            outcomes.append(exc)
        attempt_seconds[row.id] = time.monotonic() - began
    return outcomes
