"""Loaded by Python at start-up when this folder is on PYTHONPATH (the packaging tests put it there).

``CLOUDWATCHER_TEST_HIDE_MODULES`` (comma-separated top-level names): those imports fail with
ModuleNotFoundError, exactly as when the package is not installed, so a missing extra can be
tested without uninstalling anything. ``CLOUDWATCHER_TEST_MODULES_REPORT`` (a path): at a clean
exit, the process writes the modules it imported and its peak RSS there as JSON.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import sys

for _name in filter(None, os.environ.get("CLOUDWATCHER_TEST_HIDE_MODULES", "").split(",")):
    sys.modules[_name] = None  # type: ignore[assignment]  # Python's own marker for "cannot be imported"

_report = os.environ.get("CLOUDWATCHER_TEST_MODULES_REPORT")


def _write_report(path: str) -> None:
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"modules": sorted(sys.modules), "peak_rss_kib": peak_kib}, handle)


if _report:
    atexit.register(_write_report, _report)
