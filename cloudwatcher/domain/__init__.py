"""The business domain: request envelopes applied to the relational schema, exactly once.

The daemon calls this package's functions (and only these):

- :func:`apply_request_file` for each settled ``.json`` in a device's ``requests/`` folder,
  then :func:`deliver_answers` for a batch of them (:func:`process_request_file` does both for
  one file), and :func:`process_response_file` for each file in its ``responses/`` folder, after
  the file is in the ledger; requests of one device sequentially, in drop order;
- :func:`unprocessed_files` at start-up and after a database outage, to catch up;
- :func:`note_device_activity` inside the ledger transaction of each batch of files;
- :func:`link_recorded_attachments` after each batch, for attachments that came after their envelope,
  and :func:`link_unlinked_attachments` at start-up, for those a crash left unlinked;
- scheduled jobs: :func:`mark_delivered_responses`, :func:`close_idle_device_sessions`,
  :func:`archive_old_requests`, :func:`ensure_audit_partitions`;
- :func:`load_catalog_file` for ``cloudwatcher load``.
"""

from cloudwatcher.domain.answers import Applied, deliver_answers
from cloudwatcher.domain.catalog import CatalogError, load_catalog_file
from cloudwatcher.domain.catchup import unprocessed_files
from cloudwatcher.domain.delivery import mark_delivered_responses
from cloudwatcher.domain.device_binding import DeviceBinding
from cloudwatcher.domain.devices import close_idle_device_sessions, note_device_activity
from cloudwatcher.domain.external import process_response_file
from cloudwatcher.domain.files import DroppedFile, IngestContext
from cloudwatcher.domain.ingest import apply_request_file, process_request_file
from cloudwatcher.domain.ledger_links import link_recorded_attachments, link_unlinked_attachments
from cloudwatcher.domain.retention import archive_old_requests, ensure_audit_partitions

__all__ = [
    "Applied",
    "CatalogError",
    "DeviceBinding",
    "DroppedFile",
    "IngestContext",
    "apply_request_file",
    "archive_old_requests",
    "close_idle_device_sessions",
    "deliver_answers",
    "ensure_audit_partitions",
    "link_recorded_attachments",
    "link_unlinked_attachments",
    "load_catalog_file",
    "mark_delivered_responses",
    "note_device_activity",
    "process_request_file",
    "process_response_file",
    "unprocessed_files",
]
