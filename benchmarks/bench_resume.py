"""Issue 7's figures: a big upload to each cloud emulator, killed (``kill -9``) at 60 % and resumed.

For SharePoint (Graph emulator), Google Drive (Drive emulator) and S3 (moto's server) in turn,
one daemon subprocess with that target alone, set up as :mod:`benchmarks.bench_providers` does,
uploads one file of ``BENCH_RESUME_MB`` MiB (default 500). When the emulator has accepted
``BENCH_RESUME_AT`` (default 0.6) of the file's bytes (and half the time between two requests
more, so that the daemon is busy with the next one), the daemon gets SIGKILL (no shutdown code
runs) and is started again on the same state directory and database; the benchmark waits until
the row is synced (uploaded and verified) and then reads the emulator's request log:

- the bytes the daemon sent for the file across both runs, counted from the upload requests'
  declared lengths (the fragment, chunk or part cut off by the kill counts in full, so this
  is an upper bound); goal: under 1.1 x the file size;
- whether the session was continued rather than restarted: one session created in all, every
  upload request addressed to it (one Graph ``uploadUrl``, one Drive ``upload_id``, one S3
  ``UploadId``), and the first one after the restart starting at a non-zero offset;
- the time of each phase, the daemon's peak RSS in each run (the kernel's high-water mark);
- that nothing is left behind (no open Graph or Drive session, no S3 multipart upload) and
  that exactly one remote copy exists, with the file's sha256;
- what the kill hit: a request cut off mid-transfer, a completed request sent again, or the
  gap between two. On loopback a whole request fits in the sockets' buffers, so once the
  daemon has written it the emulator receives all of it; most kills fall between requests.

moto keeps no request log, so this benchmark wraps the moto server's WSGI application with a
small recorder (method, path, query, declared length, status) the first time it runs.
``BENCH_RESUME_PROVIDERS`` (comma-separated: sharepoint,google-drive,s3) picks a subset.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

import asyncpg

from benchmarks.bench_providers import emulated_target, wait_synced, write_random_file
from benchmarks.common import BenchDaemon, workspace
from tests.support.emulators import s3 as s3_emulator
from tests.support.emulators.drive import DriveEmulator
from tests.support.emulators.graph import GraphEmulator

MIB = 1024 * 1024
PROVIDERS = ("sharepoint", "google-drive", "s3")
GOAL_RATIO = 1.1
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class Upload:
    """One request that carried file bytes, as the emulator logged it."""

    at: float  # epoch seconds the emulator logged it at
    session: str  # the session it was addressed to: uploadUrl, Drive upload_id, S3 UploadId
    start: int  # offset of its first byte in the file
    length: int  # bytes it declared
    accepted: bool  # answered with success (a cut-off request is not)


class Probe(Protocol):
    """What the benchmark reads from an emulator."""

    #: What the provider calls a session, and what a request to it is called.
    session_name: str
    request_name: str

    def uploads(self) -> list[Upload]: ...

    def sessions_created(self) -> int: ...

    def open_sessions(self) -> list[str]: ...

    def remote_files(self) -> list[tuple[str, int, str]]:
        """(name, size, sha256) of every file the emulator stores."""
        ...


def _span(content_range: str | None) -> tuple[int, int] | None:
    match = _RANGE.fullmatch(content_range or "")
    if match is None:
        return None
    start, end = int(match.group(1)), int(match.group(2))
    return start, end - start + 1


class GraphProbe:
    session_name = "uploadUrl"
    request_name = "fragment"

    def __init__(self, graph: GraphEmulator) -> None:
        self.graph = graph

    def uploads(self) -> list[Upload]:
        found = []
        for entry in self.graph.requests("PUT", "localhost"):
            span = _span(entry.content_range)
            if entry.path.startswith("/upload/") and span is not None:
                session = entry.path.rsplit("/", 1)[1]
                found.append(Upload(entry.at, session, span[0], span[1], entry.status in (200, 201, 202)))
        return found

    def sessions_created(self) -> int:
        return sum(
            1 for entry in self.graph.requests("POST") if entry.path.endswith("/createUploadSession") and entry.status
        )

    def open_sessions(self) -> list[str]:
        return list(self.graph.sessions)

    def remote_files(self) -> list[tuple[str, int, str]]:
        items = [item for item in list(self.graph.drive.items.values()) if not item.is_folder]
        return [(item.name, len(item.content), hashlib.sha256(item.content).hexdigest()) for item in items]


class DriveProbe:
    session_name = "resumable session URI (upload_id)"
    request_name = "chunk"

    def __init__(self, drive: DriveEmulator) -> None:
        self.drive = drive

    def uploads(self) -> list[Upload]:
        found = []
        for record in self.drive.log("PUT", "/upload/"):
            span = _span(record.content_range)  # status queries ("bytes */N") carry no bytes
            if "upload_id" in record.query and span is not None:
                found.append(
                    Upload(record.time, record.query["upload_id"], span[0], span[1], record.status in (200, 308))
                )
        return found

    def sessions_created(self) -> int:
        return sum(
            1
            for record in self.drive.log(path_prefix="/upload/")
            if record.method in ("POST", "PATCH") and record.query.get("uploadType") == "resumable" and record.status
        )

    def open_sessions(self) -> list[str]:
        with self.drive._lock:
            return [key for key, session in self.drive.sessions.items() if session.done_file is None]

    def remote_files(self) -> list[tuple[str, int, str]]:
        with self.drive._lock:
            files = [item for item in self.drive.files.values() if item.content is not None and not item.trashed]
        return [
            (item.name, len(item.content or b""), hashlib.sha256(item.content or b"").hexdigest()) for item in files
        ]


# ------------------------------------------------------------------------------------------- S3 on moto


@dataclass
class S3Request:
    at: float
    method: str
    host: str
    path: str
    query: dict[str, str]
    length: int
    status: int = 0  # 0 until answered (or when the request broke off)


class S3RequestLog:
    """A WSGI wrapper around moto's application that logs every request, like the emulators do."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.log: list[S3Request] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = {key: values[0] for key, values in parse_qs(environ.get("QUERY_STRING", ""), True).items()}
        entry = S3Request(
            time.time(),
            environ.get("REQUEST_METHOD", ""),
            environ.get("HTTP_HOST", ""),
            environ.get("PATH_INFO", ""),
            query,
            int(environ.get("CONTENT_LENGTH") or 0),
        )
        with self._lock:
            self.log.append(entry)

        def recording_start_response(status: str, headers: Any, *args: Any) -> Any:
            entry.status = int(status.split()[0])
            return start_response(status, headers, *args)

        return self.app(environ, recording_start_response)

    def requests(self, bucket: str) -> list[S3Request]:
        with self._lock:
            entries = list(self.log)
        return [e for e in entries if e.path.startswith(f"/{bucket}/") or e.host.startswith(f"{bucket}.")]


def s3_request_log() -> S3RequestLog:
    """The recorder on the process's moto server, installed on first use."""
    s3_emulator.moto_endpoint()  # starts the shared server
    threaded = s3_emulator._server
    server = getattr(threaded, "_server", None)
    if server is None or not hasattr(server, "app"):
        raise RuntimeError("this moto version keeps its WSGI server elsewhere; cannot log S3 requests")
    if not isinstance(server.app, S3RequestLog):
        server.app = S3RequestLog(server.app)  # the request handler looks the app up per request
    recorder: S3RequestLog = server.app
    return recorder


class S3Probe:
    session_name = "UploadId"
    request_name = "part"

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.recorder = s3_request_log()

    def uploads(self) -> list[Upload]:
        parts = [
            entry
            for entry in self.recorder.requests(self.bucket)
            if entry.method == "PUT" and "partNumber" in entry.query and "uploadId" in entry.query
        ]
        part_size = max((entry.length for entry in parts), default=0)  # every part but the last
        return [
            Upload(
                entry.at,
                entry.query["uploadId"],
                (int(entry.query["partNumber"]) - 1) * part_size,
                entry.length,
                entry.status == 200,
            )
            for entry in parts
        ]

    def sessions_created(self) -> int:
        return sum(
            1
            for entry in self.recorder.requests(self.bucket)
            if entry.method == "POST" and "uploads" in entry.query and entry.status == 200
        )

    def open_sessions(self) -> list[str]:
        client = s3_emulator.admin_client()
        try:
            uploads = client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        finally:
            client.close()
        return [str(upload["UploadId"]) for upload in uploads]

    def remote_files(self) -> list[tuple[str, int, str]]:
        client = s3_emulator.admin_client()
        found = []
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
                for item in page.get("Contents", []):
                    digest = hashlib.sha256()
                    body = client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"]
                    try:
                        while block := body.read(MIB):
                            digest.update(block)
                    finally:
                        body.close()
                    found.append((str(item["Key"]), int(item["Size"]), digest.hexdigest()))
        finally:
            client.close()
        return found


def probe_for(provider: str, served: Any) -> Probe:
    if provider == "sharepoint":
        return GraphProbe(served)
    if provider == "google-drive":
        return DriveProbe(served)
    if provider == "s3":
        return S3Probe(served)
    raise ValueError(f"no resumable uploads to benchmark on {provider!r}; choose from {', '.join(PROVIDERS)}")


# ------------------------------------------------------------------------------------------- the run


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as reader:
        for block in iter(lambda: reader.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def accepted_bytes(probe: Probe) -> int:
    return sum(upload.length for upload in probe.uploads() if upload.accepted)


async def wait_for_kill_point(daemon: BenchDaemon, probe: Probe, threshold: int) -> None:
    """Poll the emulator until it has accepted ``threshold`` bytes of the upload, then wait half
    the time between two requests, so that the kill lands while the daemon is busy with the next
    one rather than right after an answer."""
    assert daemon.process is not None
    deadline = time.monotonic() + 3600
    while accepted_bytes(probe) < threshold:
        if daemon.process.poll() is not None:
            raise RuntimeError((daemon.root / "daemon.log").read_text(errors="replace")[-3000:])
        if time.monotonic() > deadline:
            raise TimeoutError(f"the emulator accepted only {accepted_bytes(probe)} bytes in an hour")
        await asyncio.sleep(0.005)
    accepted = sorted(upload.at for upload in probe.uploads() if upload.accepted)
    if len(accepted) >= 2:
        await asyncio.sleep(min((accepted[-1] - accepted[-2]) / 2, 5.0))


@dataclass
class Outcome:
    provider: str
    size: int
    dropped: float
    first_byte: float
    killed: float
    accepted_at_kill: int
    saved_session: dict[str, Any] | None
    restarted: float
    ready: float
    synced: float
    peak_first: float
    peak_second: float
    row: dict[str, Any]
    local_sha256: str


async def one_provider(provider: str, size: int, at_fraction: float) -> list[str]:
    root = workspace(f"cw-bench-resume-{provider}-")
    try:
        with emulated_target(provider, root) as (settings, served):
            probe = probe_for(provider, served)
            staging = root / "staging"
            big = staging / "resume" / "requests" / "big.bin"
            await asyncio.to_thread(write_random_file, big, size)
            local_sha256 = await asyncio.to_thread(sha256_of, big)
            daemon = BenchDaemon(root, targets=json.dumps([settings]))
            daemon.start()
            try:
                outcome = await interrupted_upload(provider, daemon, probe, staging, size, at_fraction, local_sha256)
            finally:
                daemon.stop()
            return report(outcome, probe)
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def interrupted_upload(
    provider: str, daemon: BenchDaemon, probe: Probe, staging: Path, size: int, at_fraction: float, local_sha256: str
) -> Outcome:
    connection = await asyncpg.connect(daemon.url)
    try:
        daemon.inbox.mkdir(parents=True, exist_ok=True)
        dropped = time.time()
        os.rename(staging / "resume", daemon.inbox / "resume")
        await wait_for_kill_point(daemon, probe, int(size * at_fraction))
        peak_first = daemon.peak_rss_mb()
        daemon.kill()
        killed = time.time()
        accepted_at_kill = accepted_bytes(probe)
        at_kill = await connection.fetchrow("SELECT sync_status, upload_session FROM cloud_file_refs")
        assert at_kill is not None
        if at_kill["sync_status"] != "uploading":
            raise RuntimeError(f"the upload was already {at_kill['sync_status']!r} when killed; nothing to resume")
        saved = at_kill["upload_session"]
        restarted = time.time()
        daemon.start()
        ready = time.time()
        await wait_synced(daemon, connection, 1, limit=3600)
        synced = time.time()
        peak_second = daemon.peak_rss_mb()
        row = await connection.fetchrow(
            "SELECT sync_status, verification, remote_size, attempts, last_error, upload_session FROM cloud_file_refs"
        )
    finally:
        await connection.close()
    assert row is not None
    uploads = probe.uploads()
    return Outcome(
        provider=provider,
        size=size,
        dropped=dropped,
        first_byte=min((upload.at for upload in uploads), default=float("nan")),
        killed=killed,
        accepted_at_kill=accepted_at_kill,
        saved_session=json.loads(saved) if saved else None,
        restarted=restarted,
        ready=ready,
        synced=synced,
        peak_first=peak_first,
        peak_second=peak_second,
        row=dict(row),
        local_sha256=local_sha256,
    )


def report(outcome: Outcome, probe: Probe) -> list[str]:
    name, size = outcome.provider, outcome.size
    uploads = sorted(probe.uploads(), key=lambda upload: upload.at)
    before = [upload for upload in uploads if upload.at < outcome.restarted]
    after = [upload for upload in uploads if upload.at >= outcome.restarted]
    sent_before, sent_after = sum(u.length for u in before), sum(u.length for u in after)
    total = sent_before + sent_after
    ratio = total / size
    sessions = {upload.session for upload in uploads}
    created = probe.sessions_created()
    resumed_at = after[0].start if after else -1
    continued = (
        created == 1
        and len(sessions) == 1
        and bool(before)
        and bool(after)
        and before[0].session == after[0].session
        and resumed_at > 0
    )
    left_open = probe.open_sessions()
    remote = probe.remote_files()
    copies_ok = len(remote) == 1 and remote[0][1] == size and remote[0][2] == outcome.local_sha256
    row = outcome.row
    first_after_restart = after[0].at - outcome.restarted if after else float("nan")
    verdict = "ok" if ratio < GOAL_RATIO else f"over the {GOAL_RATIO} goal"
    if continued:
        session_text = (
            f"continued: 1 session created in all, every {probe.request_name} of both runs sent to the same "
            f"{probe.session_name}, the first after the restart at byte {resumed_at:,} ({resumed_at / size:.0%})"
        )
    else:
        session_text = (
            f"NOT continued: {created} session(s) created, {len(sessions)} {probe.session_name}(s) used, "
            f"first {probe.request_name} after the restart at byte {resumed_at if after else '(none)'}"
        )
    saved = outcome.saved_session
    if saved is None:
        session_text += "; the ledger held no saved session at the kill"
    elif isinstance(saved.get("parts"), list):
        session_text += f"; the ledger held the session with {len(saved['parts'])} finished parts at the kill"
    session_text += f"; {what_the_kill_hit(before, resumed_at, probe.request_name)}"
    return [
        f"{name}: {size / MIB:.0f} MiB killed at {outcome.accepted_at_kill / size:.0%} "
        f"({outcome.accepted_at_kill / MIB:.0f} MiB accepted; drop to first byte "
        f"{outcome.first_byte - outcome.dropped:.1f} s, drop to kill {outcome.killed - outcome.dropped:.1f} s); "
        f"restart to daemon ready {outcome.ready - outcome.restarted:.1f} s, to first resumed {probe.request_name} "
        f"{first_after_restart:.1f} s, to synced and verified {outcome.synced - outcome.restarted:.1f} s",
        f"{name}: sent {total / MIB:.1f} MiB in all = {ratio:.3f} x the file ({verdict}; "
        f"{sent_before / MIB:.1f} MiB in {len(before)} {probe.request_name}s before the kill, "
        f"{sent_after / MIB:.1f} MiB in {len(after)} after; a cut-off {probe.request_name} counts in full)",
        f"{name}: session {session_text}",
        f"{name}: afterwards {len(left_open)} open session(s) in the emulator"
        f"{' (' + ', '.join(left_open) + ')' if left_open else ''}; {len(remote)} remote cop"
        f"{'y' if len(remote) == 1 else 'ies'}, "
        f"{'size and sha256 match' if copies_ok else 'NOT matching the file'}; row {row['sync_status']} "
        f"({row['verification']}, attempts {row['attempts']}"
        f"{', saved session still in the ledger' if row['upload_session'] else ''})",
        f"{name}: daemon peak RSS {outcome.peak_first:.0f} MB in the first run, {outcome.peak_second:.0f} MB "
        "after the restart",
    ]


def what_the_kill_hit(before: list[Upload], resumed_at: int, request: str) -> str:
    """Whether the kill cut a request off, from the last one before it and where the upload resumed."""
    if not before or resumed_at < 0:
        return "no request to judge the kill by"
    last = before[-1]
    if last.start + last.length <= resumed_at:
        return f"the kill fell between two {request}s"
    if not last.accepted:
        return f"the kill cut a {request} off mid-transfer (the emulator discarded it)"
    if resumed_at > last.start:
        return f"the kill cut a {request} off mid-transfer (the emulator kept {resumed_at - last.start:,} B of it)"
    return f"the last {request} before the kill completed but was sent again after the restart"


def selected_providers() -> Iterator[str]:
    for name in os.environ.get("BENCH_RESUME_PROVIDERS", ",".join(PROVIDERS)).split(","):
        if name.strip():
            yield name.strip()


async def run() -> list[str]:
    size = int(float(os.environ.get("BENCH_RESUME_MB", "500")) * MIB)
    at_fraction = float(os.environ.get("BENCH_RESUME_AT", "0.6"))
    lines = [
        f"== resume: one {size / MIB:.0f} MiB upload per cloud emulator, daemon killed (-9) at "
        f"{at_fraction:.0%} and restarted; goal: under {GOAL_RATIO} x the file size sent in all"
    ]
    for provider in selected_providers():
        lines.extend(await one_provider(provider, size, at_fraction))
    return lines
