"""Which hash mismatches after an acknowledged SharePoint upload are the library's own rewrites."""

from __future__ import annotations

import pytest

from cloudwatcher.providers.sharepoint import rewritten_by_server


@pytest.mark.parametrize(
    ("name", "stored", "sent", "rewritten"),
    [
        ("CloudWatcher/dev/requests/report.docx", 10_000, 10_000, True),  # a type it rewrites, same size
        ("CloudWatcher/dev/requests/Scan.PDF", 900, 800, True),
        ("CloudWatcher/dev/requests/page.html", None, 10, True),
        ("CloudWatcher/dev/requests/data.bin", 11, 10, True),  # a changed size is never the transfer
        ("CloudWatcher/dev/requests/data.bin", 10, 10, False),  # same size, plain type: corruption
        ("CloudWatcher/dev/requests/notes.txt", None, 10, False),
        ("CloudWatcher/dev/requests/archive.docx.zip", 10, 10, False),
    ],
)
def test_a_mismatch_counts_as_a_server_rewrite_only_for_rewritten_types_or_a_changed_size(
    name: str, stored: int | None, sent: int, rewritten: bool
) -> None:
    assert rewritten_by_server(name, stored, sent) is rewritten
