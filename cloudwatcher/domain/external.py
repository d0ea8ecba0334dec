"""``process_response_file``: files in a device's ``responses/`` folder.

Either the daemon's own response (its content equals a ``responses`` row: link the ledger
rows to it), or an external processor's answer to a pending request (docs/ledger-and-requests.md): stored as
the request's response (``ai_processed`` when an ``agent`` block is present, which also
becomes an ``agent_decisions`` row, with the local account that owns the file as
``processor_account``) and the request's status follows. Anything else is logged and left
alone; the daemon mirrors the file either way.

Only the daemon and the processors' accounts may write into ``responses/`` (the deployment
makes it read-only for the device), so the file's owner names the processor that answered.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal, cast
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloudwatcher.domain.envelope import InvalidEnvelope, Scalar, decode_json, describe_validation_error
from cloudwatcher.domain.files import DroppedFile, IngestContext
from cloudwatcher.domain.ledger_links import link_response, mark_processed, read_version
from cloudwatcher.domain.processor_accounts import processor_account
from cloudwatcher.domain.response_metadata import describe_answer, metadata_text, write_response_metadata
from cloudwatcher.domain.responses import to_json
from cloudwatcher.schema.sql import query

log = logging.getLogger(__name__)

OWN_RESPONSE = query("external", "own_response")
REQUEST_FOR_ANSWER = query("external", "request_for_answer")
INSERT_EXTERNAL_RESPONSE = query("external", "insert_external_response")
INSERT_DECISION = query("external", "insert_decision")
FINISH_REQUEST = query("requests", "finish_request")
RESPONSE_READY = query("requests", "response_ready")
SET_ACTING_USER = query("requests", "set_acting_user")


class AgentBlock(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, Field(min_length=1, max_length=100)]
    decision_type: Annotated[str, Field(max_length=100)] | None = None
    decision: Any = None
    reasoning: Any = None
    confidence: Annotated[float, Field(ge=0, le=1)] | None = None


class ErrorBlock(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: Annotated[str, Field(min_length=1, max_length=50)]
    message: str = ""


class ExternalAnswer(BaseModel):
    """An external processor's response file."""

    model_config = ConfigDict(extra="ignore")

    request_id: UUID
    status: Literal["completed", "failed"]
    result: Any = None
    error: ErrorBlock | None = None
    agent: AgentBlock | None = None
    # The processor's own attributes of its answer, stored in response_metadata as text.
    metadata: Annotated[dict[Annotated[str, Field(min_length=1, max_length=100)], Scalar], Field(max_length=100)] = {}


@dataclass(frozen=True)
class _Loaded:
    document: Any
    problem: str | None  # why the file cannot be used, else None
    account: str | None = None  # the local account that owns the file (see processor_account)


def _load(file: DroppedFile, ctx: IngestContext) -> _Loaded:
    """The parsed document and its owner's account, or a reason it cannot be used."""
    if file.size > ctx.max_request_bytes:
        return _Loaded(None, f"larger than {ctx.max_request_bytes} bytes")
    raw = read_version(file, ctx.max_request_bytes)
    if raw is None:
        return _Loaded(None, "changed or vanished before it could be read")
    account = processor_account(file.absolute_path)
    try:
        return _Loaded(decode_json(raw), None, account)
    except InvalidEnvelope as error:
        return _Loaded(None, error.message)


async def process_response_file(pool: asyncpg.Pool, file: DroppedFile, ctx: IngestContext) -> None:
    """Link the daemon's own responses; ingest external processors' answers; warn about the rest."""
    steps = file.local_path.split("/")
    if len(steps) < 3 or steps[0] != file.device_id or steps[1] != "responses":
        log.warning("%s is not in a device's responses/ folder; not processed", file.local_path, extra=file.log_fields)
        return
    loaded = await asyncio.to_thread(_load, file, ctx)
    problem = loaded.problem
    async with pool.acquire() as proxy:
        connection = cast(asyncpg.Connection, proxy)
        async with connection.transaction():
            if problem is None:
                problem = await _ingest(connection, file, ctx, loaded.document, loaded.account)
            if problem is not None:
                log.warning("response file %s not ingested: %s", file.local_path, problem, extra=file.log_fields)
            await mark_processed(connection, file)


async def _ingest(
    connection: asyncpg.Connection, file: DroppedFile, ctx: IngestContext, document: Any, account: str | None
) -> str | None:
    if not isinstance(document, dict):
        return "not a JSON object"
    try:
        request_id = UUID(str(document.get("request_id")))
    except ValueError:
        return "no valid request_id"
    own = await connection.fetchrow(OWN_RESPONSE, request_id, to_json(document), file.device_id)
    if own is not None:
        await link_response(connection, file, own["id"])
        if own["status"] == "processing":  # written just before a crash: the file exists, so it is ready
            await connection.execute(RESPONSE_READY, own["id"])
        return None
    try:
        answer = ExternalAnswer.model_validate(document)
    except ValidationError as error:
        return describe_validation_error(error)
    if answer.status == "failed" and answer.error is None:
        return "a failed answer needs an error object"
    request = await connection.fetchrow(REQUEST_FOR_ANSWER, request_id)
    if request is None:
        return f"no request {request_id}"
    if request["device_id"] != file.device_id:
        return f"request {request_id} belongs to device {request['device_id']!r}, not {file.device_id!r}"
    if request["response_id"] is not None or request["status"] != "pending":
        return f"request {request_id} is already answered (status {request['status']!r})"
    if request["created_by"] is not None:  # audit rows: the processor acts on the requester's behalf
        await connection.execute(SET_ACTING_USER, str(request["created_by"]))
    response_id = await connection.fetchval(
        INSERT_EXTERNAL_RESPONSE, request_id, to_json(document), answer.agent is not None, file.local_path
    )
    described = {key: metadata_text(value) for key, value in answer.metadata.items()}
    described.update(source="processor", **describe_answer(document))
    if answer.agent is not None:
        described["agent"] = answer.agent.name
    await write_response_metadata(connection, response_id, described)
    if answer.agent is not None:
        agent = answer.agent
        decision = (
            agent.decision if isinstance(agent.decision, str) or agent.decision is None else to_json(agent.decision)
        )
        await connection.execute(
            INSERT_DECISION,
            request_id,
            agent.name,
            agent.decision_type,
            decision,
            to_json(agent.reasoning) if agent.reasoning is not None else None,
            Decimal(str(round(agent.confidence, 2))) if agent.confidence is not None else None,
            account,
        )
    await connection.execute(
        FINISH_REQUEST,
        request_id,
        answer.status,
        answer.error.code if answer.status == "failed" and answer.error else None,
        ctx.instance_id,
    )
    await link_response(connection, file, response_id)
    return None
