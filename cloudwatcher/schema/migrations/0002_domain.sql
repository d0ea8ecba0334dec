-- The business domain on top of the foundation: audit triggers, idempotency rules for request
-- ingestion, a "processed" marker on the ledger, archive tables for retention, and yearly
-- audit_logs partitions created ahead of time.


-- ---------------------------------------------------------------- audit triggers
-- The application passes the acting user per transaction with
--   SELECT set_config('cloudwatcher.user_id', '<uuid>', true)
-- and may pass a reason ('cloudwatcher.change_reason'). Bulk jobs that keep their own record
-- (retention moves rows into archive tables and logs one summary row) switch row auditing off
-- for their transaction with set_config('cloudwatcher.audit', 'off', true).
-- No EXCEPTION block: it would open a subtransaction for every audited row.
CREATE FUNCTION cloudwatcher_audit_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    acting   text := current_setting('cloudwatcher.user_id', true);
    reason   text := nullif(current_setting('cloudwatcher.change_reason', true), '');
    uid      uuid;
    old_row  jsonb;
    new_row  jsonb;
BEGIN
    IF current_setting('cloudwatcher.audit', true) = 'off' THEN
        RETURN NULL;
    END IF;
    IF acting ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        uid := acting::uuid;
    END IF;
    IF TG_OP = 'INSERT' THEN
        new_row := to_jsonb(NEW);
    ELSIF TG_OP = 'UPDATE' THEN
        old_row := to_jsonb(OLD);
        new_row := to_jsonb(NEW);
        IF old_row = new_row THEN
            RETURN NULL;  -- an update that changed nothing is not an event
        END IF;
    ELSE
        old_row := to_jsonb(OLD);
    END IF;
    INSERT INTO audit_logs (table_name, operation, record_id, user_id, old_values, new_values, change_reason)
    VALUES (TG_TABLE_NAME, TG_OP, coalesce(new_row, old_row) ->> 'id', uid, old_row, new_row, reason);
    RETURN NULL;
END
$$;

DO $$
DECLARE
    audited text[] := ARRAY[
        'users', 'roles', 'role_permissions', 'departments', 'user_roles', 'user_departments',
        'locations', 'parts', 'part_variants', 'suppliers', 'part_suppliers', 'inventory',
        'part_consumption', 'orders', 'order_items', 'order_approvals',
        'requests', 'responses', 'agent_decisions'];
    name text;
BEGIN
    FOREACH name IN ARRAY audited LOOP
        EXECUTE format(
            'CREATE TRIGGER audit_%1$s AFTER INSERT OR UPDATE OR DELETE ON %1$I '
            'FOR EACH ROW EXECUTE FUNCTION cloudwatcher_audit_row()', name);
    END LOOP;
END
$$;


-- ---------------------------------------------------------------- request ingestion
-- The same bytes from the same device are one request (docs/ledger-and-requests.md, Request envelopes): the rule lives in the
-- database so that two daemons racing on one file cannot both apply it.
DROP INDEX IF EXISTS idx_requests_device_hash;
CREATE UNIQUE INDEX uq_requests_device_payload ON requests (device_id, payload_hash);
CREATE INDEX idx_requests_local_path ON requests (local_path);
-- The latest user of a device (opening a device session) and per-device history.
CREATE INDEX idx_requests_device_created ON requests (device_id, created_at DESC);
-- Envelopes name users by email; devices do not always keep its case.
CREATE INDEX idx_users_email_lower ON users (lower(email));
CREATE INDEX idx_parts_category_code ON parts (category, part_code);

-- A ledger file (request or response) whose content the domain has handled: applied and
-- answered, linked, or deliberately skipped. unprocessed_files() lists the others.
ALTER TABLE cloud_file_refs ADD COLUMN processed_at timestamptz;
CREATE INDEX idx_cfr_unprocessed ON cloud_file_refs (created_at)
    WHERE processed_at IS NULL AND file_type IN ('request', 'response');
CREATE INDEX idx_cfr_local_path_sha ON cloud_file_refs (local_path, content_sha256);


-- ---------------------------------------------------------------- retention
-- Rows older than the retention window move here with their dependants. Same columns as the
-- live tables plus archived_at; no foreign keys, so that live rows can go away.
CREATE TABLE requests_archive (LIKE requests INCLUDING DEFAULTS);
ALTER TABLE requests_archive ADD COLUMN archived_at timestamptz NOT NULL DEFAULT now(),
    ADD PRIMARY KEY (id);
CREATE INDEX idx_requests_archive_device_hash ON requests_archive (device_id, payload_hash);
CREATE INDEX idx_requests_archive_created ON requests_archive (created_at);

CREATE TABLE request_metadata_archive (LIKE request_metadata INCLUDING DEFAULTS);
ALTER TABLE request_metadata_archive ADD COLUMN archived_at timestamptz NOT NULL DEFAULT now(),
    ADD PRIMARY KEY (id);
CREATE INDEX idx_request_metadata_archive_request ON request_metadata_archive (request_id);

CREATE TABLE responses_archive (LIKE responses INCLUDING DEFAULTS);
ALTER TABLE responses_archive ADD COLUMN archived_at timestamptz NOT NULL DEFAULT now(),
    ADD PRIMARY KEY (id);
CREATE INDEX idx_responses_archive_request ON responses_archive (request_id);

CREATE TABLE response_metadata_archive (LIKE response_metadata INCLUDING DEFAULTS);
ALTER TABLE response_metadata_archive ADD COLUMN archived_at timestamptz NOT NULL DEFAULT now(),
    ADD PRIMARY KEY (id);

CREATE TABLE agent_decisions_archive (LIKE agent_decisions INCLUDING DEFAULTS);
ALTER TABLE agent_decisions_archive ADD COLUMN archived_at timestamptz NOT NULL DEFAULT now(),
    ADD PRIMARY KEY (id);
CREATE INDEX idx_agent_decisions_archive_request ON agent_decisions_archive (request_id);

CREATE TABLE cloud_file_refs_archive (LIKE cloud_file_refs INCLUDING DEFAULTS);
ALTER TABLE cloud_file_refs_archive ADD COLUMN archived_at timestamptz NOT NULL DEFAULT now(),
    ADD PRIMARY KEY (id);
CREATE INDEX idx_cfr_archive_local_path ON cloud_file_refs_archive (local_path, content_sha256);
CREATE INDEX idx_cfr_archive_request ON cloud_file_refs_archive (request_id);


-- ---------------------------------------------------------------- audit partitions
-- One partition per calendar year (UTC), created ahead of time. Rows that already landed in
-- the default partition for that year are moved into the new partition first, since
-- PostgreSQL refuses to create a partition whose range the default partition already holds.
CREATE FUNCTION cloudwatcher_ensure_audit_partitions(years_ahead integer DEFAULT 1) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    first_year  integer := extract(year FROM now() AT TIME ZONE 'UTC')::integer;
    year        integer;
    part        text;
    low         timestamptz;
    high        timestamptz;
    created     integer := 0;
BEGIN
    -- Cluster-wide job: one instance at a time.
    PERFORM pg_advisory_xact_lock(7163297310512001);
    FOR year IN first_year .. first_year + greatest(years_ahead, 0) LOOP
        part := format('audit_logs_y%s', year);
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        low := make_timestamptz(year, 1, 1, 0, 0, 0, 'UTC');
        high := make_timestamptz(year + 1, 1, 1, 0, 0, 0, 'UTC');
        EXECUTE format('CREATE TABLE %I (LIKE audit_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        EXECUTE format(
            'WITH moved AS (DELETE FROM audit_logs_default WHERE created_at >= $1 AND created_at < $2 RETURNING *) '
            'INSERT INTO %I SELECT * FROM moved', part) USING low, high;
        EXECUTE format('ALTER TABLE audit_logs ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       part, low, high);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

SELECT cloudwatcher_ensure_audit_partitions(1);
