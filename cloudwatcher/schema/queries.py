"""Every ledger query the daemon and the CLI run, by name; the SQL is in ``queries/<area>.sql``.

Batch statements take parallel arrays and ``unnest`` them, so that a burst of thousands of
files costs a handful of round trips instead of one per file.

Claim fencing: every claim sets ``claimed_by`` (the instance's per-boot id) and a fresh random
``claim_token``; every write-back of a claim (renewal, synced, failed, release, upload session)
carries both and changes only rows that still hold them. A worker whose lease was reaped while
it stalled, and whose row another instance has claimed since, thus changes nothing; the
statements report how many rows they changed, so the caller can count the claims it lost.
"""

from cloudwatcher.schema.sql import query

# ---------------- queries/ledger.sql: the ledger (daemon/ledger/store.py)
KNOWN_VERSIONS = query("ledger", "known_versions")
RECORD_FILES = query("ledger", "record_files")
PENDING_TARGETS = query("ledger", "pending_targets")
LIST_FILES = query("ledger", "list_files")
ADD_SKIPPED_FILES = query("ledger", "add_skipped_files")

# ---------------- queries/claims.sql: claims and their write-backs (daemon/ledger/store.py)
CLAIM_PENDING = query("claims", "claim_pending")
RENEW_LEASES = query("claims", "renew_leases")
MARK_SYNCED = query("claims", "mark_synced")
MARK_FAILED = query("claims", "mark_failed")
RELEASE_CLAIMS = query("claims", "release_claims")
RELEASE_INSTANCE_CLAIMS = query("claims", "release_instance_claims")
SAVE_UPLOAD_SESSION = query("claims", "save_upload_session")
REQUEUE_DUE = query("claims", "requeue_due")
REAP_EXPIRED_LEASES = query("claims", "reap_expired_leases")
RETRY_ALL = query("claims", "retry_all")
RETRY_IDS = query("claims", "retry_ids")

# ---------------- queries/instances.sql: instances (daemon/service.py)
REGISTER_INSTANCE = query("instances", "register_instance")
HEARTBEAT = query("instances", "heartbeat")
STOP_INSTANCE = query("instances", "stop_instance")

# ---------------- queries/remote_names.sql: remote names (daemon/upload/remote_names.py)
REMOTE_NAME_OF = query("remote_names", "remote_name_of")
CASE_VARIANTS = query("remote_names", "case_variants")
CLAIM_REMOTE_NAME = query("remote_names", "claim_remote_name")

# ---------------- queries/targets.sql: target states and pauses (daemon/upload/target_state.py, pauses.py)
TARGET_STATES = query("targets", "target_states")
ENSURE_TARGET_STATE = query("targets", "ensure_target_state")
TARGET_STATE_FOR_UPDATE = query("targets", "target_state_for_update")
SET_TARGET_STATE = query("targets", "set_target_state")
RESUME_FULL_TARGETS = query("targets", "resume_full_targets")
PAUSE_TARGET = query("targets", "pause_target")
RESUME_TARGET = query("targets", "resume_target")
TARGET_PAUSES = query("targets", "target_pauses")
TARGET_PAUSED = query("targets", "target_paused")

# ---------------- queries/webhooks.sql: notifications (daemon/jobs/webhooks.py)
NOTIFY_EVENT = query("webhooks", "notify_event")
EXPIRE_NOTIFICATIONS = query("webhooks", "expire_notifications")
DUE_NOTIFICATIONS = query("webhooks", "due_notifications")
NOTIFICATION_DELIVERED = query("webhooks", "notification_delivered")
NOTIFICATION_FAILED = query("webhooks", "notification_failed")
PRUNE_NOTIFICATIONS = query("webhooks", "prune_notifications")

# ---------------- queries/after_sync.sql: after-sync policy (daemon/jobs/after_sync.py)
AFTER_SYNC_CANDIDATES = query("after_sync", "after_sync_candidates")
NOTE_FILE_MOVED = query("after_sync", "note_file_moved")

# ---------------- shared by several modules: queries/database.sql, queries/migrations.sql, queries/locks.sql
PING = query("database", "ping")
TABLE_EXISTS = query("migrations", "table_exists")
TRY_XACT_LOCK = query("locks", "try_xact_lock")
XACT_LOCK = query("locks", "xact_lock")
