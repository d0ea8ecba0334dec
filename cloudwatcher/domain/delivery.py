"""``mark_delivered_responses``: a response is delivered once its file is synced everywhere."""

from __future__ import annotations

import asyncpg

# Every ledger row linked to the response (all targets, the duplicates' copies included)
# must be 'synced'; a response with no linked row yet is not delivered.
MARK_DELIVERED = """
UPDATE responses s SET status = 'delivered', delivered_at = now(), updated_at = now()
WHERE s.status = 'ready'
  AND EXISTS (SELECT 1 FROM cloud_file_refs c WHERE c.response_id = s.id)
  AND NOT EXISTS (SELECT 1 FROM cloud_file_refs c WHERE c.response_id = s.id AND c.sync_status <> 'synced')
"""


async def mark_delivered_responses(connection: asyncpg.Connection) -> int:
    """Returns how many responses became ``delivered``."""
    status = await connection.execute(MARK_DELIVERED)
    return int(status.split()[-1])
