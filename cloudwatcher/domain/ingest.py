"""``process_request_file``: apply a request envelope exactly once and answer it.

One transaction per request holds the request row, its metadata, the business effects, the
response row, the audit rows (the acting user is set with ``set_config(..., true)``) and the
ledger links. Business effects run inside a savepoint: a request that fails rolls back to it,
so a refused request changes no business row but is still recorded and answered.

Exactly once, even with two daemons on one database: the request's transaction first takes
an advisory lock on its device, then looks for an earlier request of the same device with the
same ``request_id`` or the same bytes (``uq_requests_device_payload`` and
``uq_requests_device_request`` back this up). A duplicate is not applied again; its response
repeats the first one's content. Request ids are scoped to their device: a
``request_id`` another device already used is refused with ``conflict``, recorded under a
fresh row id, and never answered with the other device's response.

The response file is written after commit (:mod:`cloudwatcher.domain.answers`, which also
answers a device's batch with one flush). The response row stays ``processing`` until the file
is durable, then becomes ``ready`` and the ledger rows are marked processed; a crash in between
leaves the file listed by ``unprocessed_files`` and the next call writes it.

Round trips are what a request costs (a statement is ~0.3 ms, its work far less), so the
lookups before a request is recorded are one query (``EARLIER_OR_TAKEN``), the acting user is
set by the insert itself, and the answer is recorded with one statement (``RECORD_ANSWER``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID, uuid4

import asyncpg

from cloudwatcher import __version__ as daemon_version
from cloudwatcher.domain.answers import Applied, deliver_answers
from cloudwatcher.domain.authorization import Actor, load_actor, user_id_by_email
from cloudwatcher.domain.context import HandlerContext
from cloudwatcher.domain.envelope import Envelope, EnvelopeHints, InvalidEnvelope, parse_envelope
from cloudwatcher.domain.errors import RequestError
from cloudwatcher.domain.files import DroppedFile, IngestContext, sibling_path
from cloudwatcher.domain.ledger_links import (
    link_attachments,
    link_request,
    mark_processed,
    read_version,
)
from cloudwatcher.domain.response_metadata import describe_answer
from cloudwatcher.domain.responses import completed_document, failed_document, to_json
from cloudwatcher.domain.routing import route_request
from cloudwatcher.schema.sql import query

log = logging.getLogger(__name__)

INVALID_TYPE = "invalid"
RETRIES = 5

DEVICE_LOCK = query("requests", "device_lock")

EARLIER_OR_TAKEN = query("requests", "earlier_or_taken")

INSERT_REQUEST = query("requests", "insert_request")

RECORD_ANSWER = query("requests", "record_answer")

INSERT_METADATA = query("requests", "insert_metadata")

FINISH_REQUEST = query("requests", "finish_request")

ATTACH_SESSION_USER = query("requests", "attach_session_user")


@dataclass(frozen=True)
class Answer:
    """What to do after commit: the response document (None: pending, no file) and its row."""

    document: dict[str, Any] | None
    response_id: UUID | None  # set when this call owns the row that should become 'ready'


@dataclass(frozen=True)
class _Identity:
    """The request's row id, and the request_id the device sent (None: it sent none)."""

    row_id: UUID
    sent_id: UUID | None

    @property
    def taken_by_another_device(self) -> bool:
        return self.sent_id is not None and self.sent_id != self.row_id

    @property
    def answered_id(self) -> UUID:
        """The id the response names: the device's own, so that it can match the answer."""
        return self.sent_id or self.row_id


@dataclass(frozen=True)
class _Attempt:
    envelope: Envelope | None
    problem: RequestError | None
    hints: EnvelopeHints


def _read_and_parse(file: DroppedFile, ctx: IngestContext) -> _Attempt | None:
    """None when the recorded version of the file is no longer there to be read."""
    if file.size > ctx.max_request_bytes:
        problem = RequestError("too_large", f"request file is {file.size} bytes; the limit is {ctx.max_request_bytes}")
        return _Attempt(None, problem, EnvelopeHints())
    raw = read_version(file, ctx.max_request_bytes)
    if raw is None:
        return None
    try:
        return _Attempt(parse_envelope(raw), None, EnvelopeHints())
    except InvalidEnvelope as error:
        return _Attempt(None, error, error.hints)


async def process_request_file(pool: asyncpg.Pool, file: DroppedFile, ctx: IngestContext) -> dict[str, Any] | None:
    """Apply (once) and answer the request envelope ``file``; safe to call again for the same file.

    Returns the response document written, or None when there is none (a pending request for an
    external processor, or a file that is not there to be read any more).
    """
    applied = await apply_request_file(pool, file, ctx)
    if applied is None:
        return None
    await deliver_answers(pool, [applied], ctx)
    return applied.document


async def apply_request_file(pool: asyncpg.Pool, file: DroppedFile, ctx: IngestContext) -> Applied | None:
    """Apply (once) the request envelope ``file`` and return its answer, still to be written by
    :func:`~cloudwatcher.domain.answers.deliver_answers` (None: no answer to write; the file is
    then already marked processed, unless it is no request envelope at all)."""
    if not is_request_envelope(file):
        log.warning(
            "%s is not a request envelope (<device>/requests/...json); not processed",
            file.local_path,
            extra=file.log_fields,
        )
        return None
    attempt = await asyncio.to_thread(_read_and_parse, file, ctx)
    async with pool.acquire() as proxy:
        connection = cast(asyncpg.Connection, proxy)
        if attempt is None:
            log.warning(
                "%s changed or vanished before it could be processed; skipping this version",
                file.local_path,
                extra=file.log_fields,
            )
            await mark_processed(connection, file)
            return None
        answer = await _apply_once(connection, file, ctx, attempt)
    if answer.document is None:
        return None
    return Applied(file, answer.document, answer.response_id)


async def _apply_once(
    connection: asyncpg.Connection, file: DroppedFile, ctx: IngestContext, attempt: _Attempt
) -> Answer:
    envelope = attempt.envelope
    request_id = envelope.request_id if envelope else attempt.hints.request_id
    new_id = request_id or uuid4()
    for attempt_number in range(1, RETRIES + 1):
        try:
            async with connection.transaction():
                await connection.execute(DEVICE_LOCK, file.device_id)
                earlier = cast(  # always one row
                    asyncpg.Record,
                    await connection.fetchrow(EARLIER_OR_TAKEN, file.device_id, file.content_sha256, request_id),
                )
                if earlier["id"] is not None:
                    return await _answer_duplicate(connection, file, earlier)
                identity = _Identity(new_id, request_id)
                if earlier["id_taken"]:
                    identity = _Identity(uuid4(), request_id)  # refused with `conflict` below
                answer = await _apply_new(connection, file, ctx, attempt, identity)
                if answer is not None:
                    return answer
                # else another device inserted the same request_id meanwhile: look again
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as error:
            # Row locks taken in different orders by unrelated requests; the loser simply retries.
            log.info(
                "retrying %s after %s (attempt %d)",
                file.local_path,
                type(error).__name__,
                attempt_number,
                extra=file.log_fields,
            )
    raise RuntimeError(f"could not record request {new_id} for {file.local_path} after {RETRIES} attempts")


def is_request_envelope(file: DroppedFile) -> bool:
    steps = file.local_path.split("/")
    return len(steps) >= 3 and steps[0] == file.device_id and steps[1] == "requests" and steps[-1].endswith(".json")


async def _answer_duplicate(connection: asyncpg.Connection, file: DroppedFile, earlier: asyncpg.Record) -> Answer:
    """Link this file to the request it repeats and answer with that request's response."""
    if not earlier["archived"]:
        await link_request(connection, file, earlier["id"])
    if earlier["content"] is None:  # pending for an external processor: nothing to write yet
        await mark_processed(connection, file)
        return Answer(None, None)
    # Only the file the response row belongs to may mark it 'ready' once that file is written.
    owns_row = (
        earlier["response_status"] == "processing"
        and not earlier["archived"]
        and earlier["response_path"] == sibling_path(file.local_path, "responses")
    )
    return Answer(json.loads(earlier["content"]), earlier["response_id"] if owns_row else None)


async def _apply_new(
    connection: asyncpg.Connection, file: DroppedFile, ctx: IngestContext, attempt: _Attempt, identity: _Identity
) -> Answer | None:
    request_id = identity.row_id
    envelope = attempt.envelope
    problem = attempt.problem
    if identity.taken_by_another_device:
        problem = RequestError("conflict", f"request_id {identity.sent_id} is already used by another device")
    actor: Actor | None = None
    created_by: UUID | None = None
    if envelope is not None and problem is None:
        if envelope.device_id is not None and envelope.device_id != file.device_id:
            problem = RequestError(
                "device_mismatch",
                f"envelope device_id {envelope.device_id!r} is not the folder's {file.device_id!r}",
            )
        try:
            # Before the user is looked up: a device acting for someone else learns nothing.
            await ctx.binding.check(connection, file.device_id, envelope.user_email)
        except RequestError as error:
            problem = problem or error
        else:
            try:
                actor = await load_actor(connection, envelope.user_email)
                created_by = actor.id
            except RequestError as error:
                problem = problem or error
                created_by = await user_id_by_email(connection, envelope.user_email)
    elif attempt.hints.user_email and await ctx.binding.allows(connection, file.device_id, attempt.hints.user_email):
        created_by = await user_id_by_email(connection, attempt.hints.user_email)

    request_type = envelope.request_type if envelope is not None else INVALID_TYPE
    inserted = await connection.fetchval(
        INSERT_REQUEST,
        request_id,
        file.device_id,
        request_type,
        file.content_sha256,
        created_by,
        file.local_path,
        identity.sent_id,
        str(created_by) if created_by else "",
    )
    if inserted is None:
        return None
    if envelope is not None and envelope.metadata:
        await connection.execute(INSERT_METADATA, request_id, list(envelope.metadata), list(envelope.metadata.values()))

    result: dict[str, Any] | None = None
    pending = False
    if problem is None and envelope is not None and actor is not None:
        try:
            async with connection.transaction():  # savepoint: a failure undoes every business row
                result = await route_request(HandlerContext(connection, actor, request_id), envelope)
                pending = result is None
        except RequestError as error:
            problem = error
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as error:
            problem = RequestError("invalid_request", f"the request does not fit the data: {error}")

    if envelope is not None:
        await link_attachments(connection, file, envelope.attachments, request_id)

    if problem is None and pending:
        await link_request(connection, file, request_id)
        if created_by is not None:
            await connection.execute(ATTACH_SESSION_USER, file.device_id, created_by)
        await connection.execute(FINISH_REQUEST, request_id, "pending", None, ctx.instance_id)
        await mark_processed(connection, file)
        return Answer(None, None)

    now = datetime.now(UTC)
    response_type = request_type if envelope is not None else (attempt.hints.request_type or INVALID_TYPE)
    if problem is not None:
        document = failed_document(identity.answered_id, response_type, problem, now)
    else:
        document = completed_document(identity.answered_id, response_type, result or {}, now)
    own = {"source": "daemon", "daemon_version": daemon_version, **describe_answer(document)}
    if ctx.instance_id is not None:
        own["instance_id"] = str(ctx.instance_id)
    response_id: UUID = await connection.fetchval(
        RECORD_ANSWER,
        request_id,
        file.local_path,
        file.content_sha256,
        file.device_id,
        created_by,
        "failed" if problem is not None else "completed",
        problem.code if problem is not None else None,
        ctx.instance_id,
        to_json(document),
        sibling_path(file.local_path, "responses"),
        list(own),
        list(own.values()),
    )
    return Answer(document, response_id)
