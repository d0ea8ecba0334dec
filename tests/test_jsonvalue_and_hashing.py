"""The one JSON rule for database values, and the one sha256 of a file."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from cloudwatcher.hashing import sha256_of_fd, sha256_of_path
from cloudwatcher.jsonvalue import iso_utc, json_default, json_value


def test_database_values_become_json() -> None:
    zoned = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    ref = uuid.UUID(int=7)
    value = {"at": zoned, "day": date(2026, 1, 2), "id": ref, "n": Decimal("1.50"), "wait": timedelta(seconds=90)}
    assert json.loads(json.dumps(value, default=json_default)) == {
        "at": "2026-01-02T01:04:05+00:00",
        "day": "2026-01-02",
        "id": str(ref),
        "n": 1.5,
        "wait": 90.0,
    }
    assert json_value([ref, (Decimal(2),)]) == [str(ref), [2.0]]
    assert iso_utc(None) is None
    assert iso_utc(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00+00:00"


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(TypeError):
        json.dumps({"x": object()}, default=json_default)


def test_sha256_of_a_path_and_of_the_recorded_bytes_plus_one(tmp_path: Path) -> None:
    file = tmp_path / "f"
    file.write_bytes(b"abc" * 1000)
    assert sha256_of_path(file) == hashlib.sha256(b"abc" * 1000).hexdigest()
    fd = os.open(file, os.O_RDONLY)
    try:
        # A file that grew past its recorded size hashes differently from the recorded bytes.
        assert sha256_of_fd(fd, 10) == hashlib.sha256((b"abc" * 1000)[:11]).hexdigest()
    finally:
        os.close(fd)
