"""Graph's JSON answers as the few fields this provider reads, and JSON requests through the SDK.

Why not the SDK's generated models: parsing one ``DriveItem`` with them imports every model it
can reference (workbooks, lists, analytics...), about 1,200 modules and 32 MB of resident
memory for the life of the daemon, to read five fields. The requests still go through the SDK's
request adapter (authentication, middleware, error mapping to ``ODataError``); only the
answers are read here, and dates with kiota's own JSON parse node, as the models would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiota_abstractions.method import Method
from kiota_abstractions.request_adapter import RequestAdapter
from kiota_abstractions.request_information import RequestInformation
from kiota_serialization_json.json_parse_node import JsonParseNode

from cloudwatcher.providers.sharepoint.errors import ERROR_MAPPING

JSON = dict[str, Any]


def parse_datetime(value: Any) -> datetime | None:
    """An ISO 8601 date from Graph (``2024-05-01T10:00:00.1234567Z``), parsed as the SDK parses it."""
    return JsonParseNode(value).get_datetime_value() if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class DriveItem:
    """A driveItem: a file or a folder of the drive, with what verification and lookups need."""

    id: str | None
    size: int | None
    quick_xor_hash: str | None
    is_folder: bool
    last_modified: datetime | None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> DriveItem:
        hashes = (body.get("file") or {}).get("hashes") or {}
        size = body.get("size")
        return cls(
            id=body.get("id") or None,
            size=int(size) if size is not None else None,
            quick_xor_hash=hashes.get("quickXorHash") or None,
            is_folder=body.get("folder") is not None,
            last_modified=parse_datetime(body.get("lastModifiedDateTime")),
        )


async def send(
    adapter: RequestAdapter,
    method: Method,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    content: Any = None,
) -> bytes | None:
    """One request through ``adapter``; the answer's bytes, or None for an empty answer.

    ``content`` (bytes, or an async iterable that httpx streams) is sent as it is, with
    ``headers``. Errors arrive as the SDK's ``APIError`` (see errors.py).
    """
    request = RequestInformation(method)
    request.url = url
    for name, value in (headers or {}).items():
        request.headers.try_add(name, value)
    if content is not None:
        request.content = content
    raw: bytes | None = await adapter.send_primitive_async(request, "bytes", ERROR_MAPPING)
    return raw or None


async def send_json(
    adapter: RequestAdapter, method: Method, url: str, body: JSON | None = None, **kwargs: Any
) -> JSON | None:
    """:func:`send` with ``body`` as JSON; the JSON answer as a dict, or None for an empty one."""
    if body is not None:
        kwargs["headers"] = {"Content-Type": "application/json", **(kwargs.get("headers") or {})}
        kwargs["content"] = json.dumps(body).encode()
    raw = await send(adapter, method, url, **kwargs)
    answer: JSON | None = json.loads(raw) if raw else None
    return answer
