-- Several daemons on one database: the watch root a file was recorded from. A daemon claims
-- only rows whose file it can read at the same path (docs/architecture.md, Several daemons: a device id
-- belongs to one watch root; instances.watch_root decides). NULL: recorded before this column,
-- claimable by any instance.
ALTER TABLE cloud_file_refs ADD COLUMN source_root text;
