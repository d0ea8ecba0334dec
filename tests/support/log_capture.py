"""What the daemon's log handler writes, captured for a test, and the root logger put back after.

``configure_logging`` installs handlers on the root logger for the life of the process; a test that
configures logging into a buffer must remove them again, or every later test would write there too.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator

from cloudwatcher import logs


@contextlib.contextmanager
def restored_root_logger() -> Iterator[None]:
    """Whatever ``configure_logging`` installs inside is removed on exit, and the level put back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        for handler in logs._installed:
            root.removeHandler(handler)
        logs._installed.clear()
        root.handlers[:] = handlers
        root.setLevel(level)


@contextlib.contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """A buffer to pass as ``configure_logging(stream=...)``; the root logger is restored on exit."""
    with restored_root_logger():
        yield io.StringIO()


def json_lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]
