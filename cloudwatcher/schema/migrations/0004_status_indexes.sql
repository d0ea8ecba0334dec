-- Status and dashboard queries without full scans of a large ledger:
-- last synced per target, the throughput chart (uploads per minute over the last hour),
-- and the oldest pending/uploading row per target.
CREATE INDEX idx_cfr_target_uploaded ON cloud_file_refs (target, uploaded_at DESC) WHERE uploaded_at IS NOT NULL;
CREATE INDEX idx_cfr_uploaded ON cloud_file_refs (uploaded_at) WHERE uploaded_at IS NOT NULL;
CREATE INDEX idx_cfr_backlog ON cloud_file_refs (target, created_at) WHERE sync_status IN ('pending', 'uploading');
CREATE INDEX idx_cfr_gave_up ON cloud_file_refs (target) WHERE sync_status = 'failed' AND next_attempt_at IS NULL;
CREATE INDEX idx_cfr_device_path ON cloud_file_refs (device_id, local_path) INCLUDE (created_at);
