"""The failures a request can end in, each with the error code devices see (docs/ledger-and-requests.md)."""

from __future__ import annotations

from typing import Literal

ErrorCode = Literal[
    "invalid_json",
    "invalid_request",
    "unknown_user",
    "inactive_user",
    "forbidden",
    "device_mismatch",
    "not_found",
    "insufficient_stock",
    "conflict",
    "no_approver",
    "too_large",
]


class RequestError(Exception):
    """A request that cannot be applied; its code and message go into the failed response.

    Handlers raise it inside the request's savepoint, so raising it also undoes every
    business row the handler wrote before it noticed the problem.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
