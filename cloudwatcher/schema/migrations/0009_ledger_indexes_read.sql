-- Two more ledger indexes whose entries cost a write each time a row is recorded or synced
-- (see 0008) for lookups that never come, or come for one provider only.
--
-- Nothing looks rows up by their remote path: `files`, `status` and the dashboard find files by
-- local path, device, target and status.
DROP INDEX idx_cfr_cloud_path;
-- Case variants of a local path (daemon/naming.py) matter only on a case-insensitive provider,
-- and SharePoint is the only one; queries.CASE_VARIANTS names it so that this index serves it.
DROP INDEX idx_cfr_target_lower_path;
CREATE INDEX idx_cfr_target_lower_path ON cloud_file_refs (target, lower(local_path))
    WHERE cloud_provider = 'sharepoint';
