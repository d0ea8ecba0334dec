-- Every ledger row is written three times (recorded, claimed, synced), and none of those updates
-- can be HOT (sync_status is indexed), so each index on cloud_file_refs costs an entry per write:
-- at thousands of files per second index upkeep was most of PostgreSQL's work. These indexes
-- either repeat another one or hold entries nothing looks up; each change keeps its lookups.
--
-- (local_path, content_sha256) lookups (domain/ledger_links.py) use idx_cfr_local_path: a path
-- has a handful of versions, filtered by hash.
DROP INDEX idx_cfr_local_path_sha;
-- Lookups by request, response or remote path never ask for NULL, which most rows hold
-- (attachments have no response, nothing has a cloud path before it is synced).
DROP INDEX idx_cfr_request;
CREATE INDEX idx_cfr_request ON cloud_file_refs (request_id) WHERE request_id IS NOT NULL;
DROP INDEX idx_cfr_response;
CREATE INDEX idx_cfr_response ON cloud_file_refs (response_id) WHERE response_id IS NOT NULL;
DROP INDEX idx_cfr_cloud_path;
CREATE INDEX idx_cfr_cloud_path ON cloud_file_refs (target, lower(cloud_path)) WHERE cloud_path IS NOT NULL;
