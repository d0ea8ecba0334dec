-- Attachments a request names, kept so that an attachment recorded after its envelope (a large
-- photo that settles a second later, or a later version of it) is linked to the request when it
-- is recorded, not only when the envelope is ingested. One row per candidate ledger path (an
-- attachment is looked for relative to requests/ and to the envelope's own folder).
CREATE TABLE request_attachments (
    request_id  uuid NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    local_path  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, local_path)
);
CREATE INDEX idx_request_attachments_path ON request_attachments (local_path, created_at DESC);

-- audit_logs.user_id names the acting user: a foreign key to users, as in the seed design.
-- Rows written before the key existed may name a user id that is not in users; they keep their
-- change but lose the dangling reference (a partitioned table cannot take a NOT VALID key).
UPDATE audit_logs a SET user_id = NULL
WHERE a.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = a.user_id);
ALTER TABLE audit_logs ADD CONSTRAINT audit_logs_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id);

-- The acting user passed by the application is recorded only when it is a known user, so a
-- stale or foreign id can never make the audited change itself fail on the key above.
CREATE OR REPLACE FUNCTION cloudwatcher_audit_row() RETURNS trigger
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
        SELECT u.id INTO uid FROM users u WHERE u.id = acting::uuid;
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

-- Tables the first audit migration left out.
DO $$
DECLARE
    audited text[] := ARRAY['request_metadata', 'order_history', 'device_connections'];
    name text;
BEGIN
    FOREACH name IN ARRAY audited LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS audit_%1$s ON %1$I', name);
        EXECUTE format(
            'CREATE TRIGGER audit_%1$s AFTER INSERT OR UPDATE OR DELETE ON %1$I '
            'FOR EACH ROW EXECUTE FUNCTION cloudwatcher_audit_row()', name);
    END LOOP;
END
$$;
