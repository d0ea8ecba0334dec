"""Each watch test counts its own skipped files.

The daemon's tally (``SKIPS``) lives as long as the process; the modules that report skips each
hold a reference to it, so every one of them is pointed at a fresh tally for the test.
"""

from __future__ import annotations

import pytest

from cloudwatcher.daemon.watch.skips import SkipTally

#: The modules that report skipped files, each through its own ``SKIPS`` name.
REPORTERS = ("watch.scanner", "watch.settle", "ledger.recorder")


@pytest.fixture(autouse=True)
def fresh_tally(monkeypatch: pytest.MonkeyPatch) -> SkipTally:
    tally = SkipTally()
    for module in REPORTERS:
        monkeypatch.setattr(f"cloudwatcher.daemon.{module}.SKIPS", tally)
    return tally
