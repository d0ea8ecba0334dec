-- Device identity: which users a device may act for, request ids scoped to their
-- device, and the processor account behind an external answer.

-- ---------------------------------------------------------------- device binding
-- Loaded by `cloudwatcher load` ("devices" section). A listed device may act only for its
-- users; whether unlisted devices may act at all is the daemon's `device_binding` setting.
CREATE TABLE devices (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    device_id    varchar(50) NOT NULL UNIQUE CHECK (device_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$'),
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE device_users (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    device_id    varchar(50) NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE ON UPDATE CASCADE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    assigned_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, user_id)
);
CREATE INDEX idx_device_users_user ON device_users (user_id);

CREATE TRIGGER audit_devices AFTER INSERT OR UPDATE OR DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION cloudwatcher_audit_row();
CREATE TRIGGER audit_device_users AFTER INSERT OR UPDATE OR DELETE ON device_users
    FOR EACH ROW EXECUTE FUNCTION cloudwatcher_audit_row();


-- ---------------------------------------------------------------- request ids per device
-- The idempotency key is (device_id, the request_id the device sent). requests.id stays the
-- device's request_id when it is free; when another device already holds that id, the request
-- is recorded under a fresh id (and refused with `conflict`) and device_request_id keeps what
-- the device sent. NULL means "the id is the device's own", which is true of every row written
-- before this migration, so the index below covers them without rewriting the table.
ALTER TABLE requests ADD COLUMN device_request_id uuid;
CREATE UNIQUE INDEX uq_requests_device_request ON requests (device_id, (coalesce(device_request_id, id)));

ALTER TABLE requests_archive ADD COLUMN device_request_id uuid;
CREATE INDEX idx_requests_archive_device_request
    ON requests_archive (device_id, (coalesce(device_request_id, id)));


-- ---------------------------------------------------------------- processor accounts
-- The local account that owned an external processor's answer file (only processors and the
-- daemon may write into responses/): the account name, or the uid when it has no name.
ALTER TABLE agent_decisions ADD COLUMN processor_account varchar(100);
ALTER TABLE agent_decisions_archive ADD COLUMN processor_account varchar(100);
