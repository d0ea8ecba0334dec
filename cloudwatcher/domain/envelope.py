"""Parsing and validating request envelopes before anything touches the database
(docs/ledger-and-requests.md, Request envelopes).

Everything a device can get wrong is decided here, so that handlers only see well-typed
payloads: malformed bytes are ``invalid_json``; a JSON value of the wrong shape, wrong types,
out-of-range quantities or unknown keys are ``invalid_request``. Models are strict (``"5"`` is
not a quantity, ``true`` is not a number) and bounded, because requests come from devices in
the field and a megabyte of nonsense must cost as little as a typo.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloudwatcher.domain.errors import RequestError

MAX_LINE_QUANTITY = 1_000_000  # one line of a consumption, order or receipt
MAX_STOCK = 1_000_000_000  # counted stock, reorder points (inventory columns are 32-bit)
MAX_LINES = 1_000

Code = Annotated[str, Field(min_length=1, max_length=50)]
Name = Annotated[str, Field(min_length=1, max_length=255)]
Notes = Annotated[str, Field(max_length=4000)]
LineQuantity = Annotated[int, Field(gt=0, le=MAX_LINE_QUANTITY)]
StockQuantity = Annotated[int, Field(ge=0, le=MAX_STOCK)]
LaxUUID = Annotated[UUID, Field(strict=False)]
Scalar = str | int | float | bool | None


class _Payload(BaseModel):
    """Strict, closed payload models: a misspelt key is an error, not a silently ignored field."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class GetPartsPayload(_Payload):
    location: Name
    part_codes: Annotated[list[Code], Field(max_length=MAX_LINES)] | None = None
    category: Annotated[str, Field(max_length=100)] | None = None
    query: Annotated[str, Field(max_length=255)] | None = None
    below_reorder_point: bool = False


class InventoryCount(_Payload):
    part_code: Code
    variant_code: Code | None = None
    quantity_on_hand: StockQuantity
    reorder_point: StockQuantity | None = None
    reorder_quantity: StockQuantity | None = None


class UpdateInventoryPayload(_Payload):
    location: Name
    counts: Annotated[list[InventoryCount], Field(min_length=1, max_length=MAX_LINES)]


class ItemQuantity(_Payload):
    part_code: Code
    variant_code: Code | None = None
    quantity: LineQuantity


class ConsumePartsPayload(_Payload):
    location: Name
    items: Annotated[list[ItemQuantity], Field(min_length=1, max_length=MAX_LINES)]
    notes: Notes | None = None


class OrderLine(ItemQuantity):
    supplier: Name | None = None


class CreateOrderPayload(_Payload):
    location: Name
    order_type: Literal["purchase", "internal_transfer", "return"] = "purchase"
    items: Annotated[list[OrderLine], Field(min_length=1, max_length=MAX_LINES)]


class OrderDecisionPayload(_Payload):
    order_id: LaxUUID
    notes: Notes | None = None


class OrderRefPayload(_Payload):
    order_id: LaxUUID


class ReceiveOrderPayload(_Payload):
    order_id: LaxUUID
    items: Annotated[list[ItemQuantity], Field(min_length=1, max_length=MAX_LINES)]


PAYLOAD_MODELS: dict[str, type[_Payload]] = {
    "get_parts": GetPartsPayload,
    "update_inventory": UpdateInventoryPayload,
    "consume_parts": ConsumePartsPayload,
    "create_order": CreateOrderPayload,
    "approve_order": OrderDecisionPayload,
    "reject_order": OrderDecisionPayload,
    "place_order": OrderRefPayload,
    "receive_order": ReceiveOrderPayload,
    "cancel_order": OrderRefPayload,
}


class _EnvelopeModel(BaseModel):
    """The outer envelope; unknown top-level keys are tolerated (devices add their own)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    type: Annotated[str, Field(min_length=1, max_length=50)]
    user: Annotated[str, Field(min_length=3, max_length=255)]
    request_id: LaxUUID | None = None
    device_id: Annotated[str, Field(max_length=255)] | None = None
    metadata: Annotated[dict[Annotated[str, Field(min_length=1, max_length=100)], Scalar], Field(max_length=100)] = {}
    payload: dict[str, Any] | None = None
    attachments: Annotated[list[Annotated[str, Field(min_length=1, max_length=1000)]], Field(max_length=100)] = []


@dataclass(frozen=True)
class Envelope:
    """A valid envelope: the type, who asks, and the type's payload (a model, or raw for unknown types)."""

    request_type: str
    user_email: str
    request_id: UUID | None
    device_id: str | None
    metadata: dict[str, str]
    payload: _Payload | dict[str, Any]
    attachments: tuple[str, ...]

    @property
    def is_builtin(self) -> bool:
        return self.request_type in PAYLOAD_MODELS


@dataclass(frozen=True)
class EnvelopeHints:
    """What could still be read from an invalid envelope: it keys idempotency and the response."""

    request_id: UUID | None = None
    request_type: str | None = None
    user_email: str | None = None


class InvalidEnvelope(RequestError):
    """``invalid_json`` or ``invalid_request`` raised before any database work."""

    def __init__(self, code: Literal["invalid_json", "invalid_request"], message: str, hints: EnvelopeHints) -> None:
        super().__init__(code, message)
        self.hints = hints


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# What PostgreSQL cannot hold in ``text`` or ``jsonb``: a UTF-16 surrogate that JSON's ``\uXXXX``
# escapes can spell but UTF-8 cannot encode (a lone ``\ud800``; a valid pair has been joined
# into one character by then), and NUL. Such a string would fail every insert of the request.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _first_unstorable_string(document: Any) -> str | None:
    """Where (a JSON-path-like text) the first key or string PostgreSQL cannot store is; None if none.

    A loop with an explicit stack rather than recursion: :func:`json.loads` accepts nesting
    deeper than Python's recursion limit allows a recursive walk to follow.
    """
    stack: list[tuple[str, Any]] = [("$", document)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                return where
        elif isinstance(value, dict):
            for key, item in value.items():
                if _UNSTORABLE.search(key):
                    return f"{where} (a key)"
                stack.append((f"{where}.{key}", item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{index}]", item) for index, item in enumerate(value))
    return None


def decode_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8 (a BOM is tolerated), no NaN/Infinity, bounded nesting, and only
    strings PostgreSQL can store (no lone surrogate, no NUL, in keys or values)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidEnvelope(
            "invalid_json", f"not UTF-8: {error.reason} at byte {error.start}", EnvelopeHints()
        ) from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidEnvelope("invalid_json", "JSON is nested too deeply", EnvelopeHints()) from None
    except ValueError as error:  # JSONDecodeError, and integers too long to convert
        raise InvalidEnvelope("invalid_json", f"not valid JSON: {error}", EnvelopeHints()) from None
    where = _first_unstorable_string(document)
    if where is not None:
        # ascii(): the message goes into the response file and the database, so it must not
        # carry the very character it reports.
        raise InvalidEnvelope(
            "invalid_json",
            f"a string at {ascii(where)[1:-1][:200]} holds a lone UTF-16 surrogate or a NUL character, "
            "which cannot be stored",
            EnvelopeHints(),
        )
    return document


def _hints(document: dict[str, Any]) -> EnvelopeHints:
    request_id: UUID | None = None
    raw_id = document.get("request_id")
    if isinstance(raw_id, str):
        try:
            request_id = UUID(raw_id)
        except ValueError:
            request_id = None
    raw_type = document.get("type")
    raw_user = document.get("user")
    return EnvelopeHints(
        request_id=request_id,
        request_type=raw_type if isinstance(raw_type, str) and 0 < len(raw_type) <= 50 else None,
        user_email=raw_user if isinstance(raw_user, str) and 0 < len(raw_user) <= 255 else None,
    )


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """``payload.items.0.quantity: Input should be greater than 0`` — the first few problems."""
    parts = []
    for problem in error.errors()[:3]:
        where = ".".join(str(step) for step in problem["loc"])
        parts.append(f"{prefix}{where}: {problem['msg']}" if where or prefix else problem["msg"])
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _metadata_text(value: Scalar) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _check_attachment(path: str) -> None:
    steps = path.split("/")
    if path.startswith("/") or "\\" in path or "\x00" in path or any(step in ("", ".", "..") for step in steps):
        raise ValueError(f"attachment path {path!r} must be relative, '/'-separated, without '..'")


def parse_envelope(raw: bytes) -> Envelope:
    """Validate the bytes of a request file; raise :class:`InvalidEnvelope` on any problem."""
    document = decode_json(raw)
    if not isinstance(document, dict):
        raise InvalidEnvelope("invalid_request", "the envelope must be a JSON object", EnvelopeHints())
    hints = _hints(document)
    try:
        outer = _EnvelopeModel.model_validate(document)
    except ValidationError as error:
        raise InvalidEnvelope("invalid_request", describe_validation_error(error), hints) from None
    payload: _Payload | dict[str, Any] = outer.payload or {}
    model = PAYLOAD_MODELS.get(outer.type)
    if model is not None:
        try:
            payload = model.model_validate(outer.payload or {})
        except ValidationError as error:
            raise InvalidEnvelope("invalid_request", describe_validation_error(error, "payload."), hints) from None
    try:
        for attachment in outer.attachments:
            _check_attachment(attachment)
    except ValueError as error:
        raise InvalidEnvelope("invalid_request", str(error), hints) from None
    return Envelope(
        request_type=outer.type,
        user_email=outer.user,
        request_id=outer.request_id,
        device_id=outer.device_id,
        metadata={key: _metadata_text(value) for key, value in outer.metadata.items()},
        payload=payload,
        attachments=tuple(outer.attachments),
    )
