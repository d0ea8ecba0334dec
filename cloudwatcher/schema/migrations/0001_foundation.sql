-- The seed design (shared/schema-seed.md) in PostgreSQL, with its notes applied:
-- separate CREATE INDEX statements, timestamptz, composite indexes for the seed's query
-- patterns, CHECK constraints on status values, and the ledger columns of docs/ledger-and-requests.md.
-- PostgreSQL 15+ is required (gen_random_uuid() is built in).


-- ---------------------------------------------------------------- daemons sharing the database
CREATE TABLE instances (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    host            text NOT NULL,
    pid             integer NOT NULL,
    version         text NOT NULL,
    watch_root      text NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    last_heartbeat  timestamptz NOT NULL DEFAULT now(),
    stopped_at      timestamptz
);
CREATE INDEX idx_instances_heartbeat ON instances (last_heartbeat DESC);

-- ---------------------------------------------------------------- identity & RBAC
CREATE TABLE users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email           varchar(255) NOT NULL UNIQUE,
    name            varchar(255) NOT NULL,
    oauth_provider  varchar(50) CHECK (oauth_provider IN ('azure-ad', 'google', 'local')),
    oauth_id        varchar(255) UNIQUE,
    is_active       boolean NOT NULL DEFAULT true,
    last_login      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_users_active ON users (is_active) WHERE is_active;

CREATE TABLE roles (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         varchar(100) NOT NULL UNIQUE,
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE departments (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         varchar(255) NOT NULL UNIQUE,
    parent_id    uuid REFERENCES departments (id),
    description  text,
    manager_id   uuid REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_id IS DISTINCT FROM id)
);
CREATE INDEX idx_departments_parent ON departments (parent_id);
CREATE INDEX idx_departments_manager ON departments (manager_id);

CREATE TABLE user_roles (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id      uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    assigned_at  timestamptz NOT NULL DEFAULT now(),
    assigned_by  uuid REFERENCES users (id),
    UNIQUE (user_id, role_id)
);
CREATE INDEX idx_user_roles_role ON user_roles (role_id);

CREATE TABLE user_departments (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    dept_id      uuid NOT NULL REFERENCES departments (id) ON DELETE CASCADE,
    assigned_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, dept_id)
);
CREATE INDEX idx_user_departments_dept ON user_departments (dept_id);

CREATE TABLE role_permissions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    role_id     uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission  varchar(100) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (role_id, permission)
);
CREATE INDEX idx_role_permissions_permission ON role_permissions (permission);

-- ---------------------------------------------------------------- request/response tracking
CREATE TABLE requests (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    device_id     varchar(50) NOT NULL,
    request_type  varchar(50) NOT NULL,
    status        varchar(50) NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    payload_hash  char(64) CHECK (payload_hash ~ '^[0-9a-f]{64}$'),
    created_by    uuid REFERENCES users (id),
    local_path    text,
    error_code    varchar(50),
    processed_by  uuid REFERENCES instances (id),
    processed_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Pattern 1: pending requests of a device, newest first.
CREATE INDEX idx_requests_device_status_created ON requests (device_id, status, created_at DESC);
CREATE INDEX idx_requests_type_created ON requests (request_type, created_at DESC);
CREATE INDEX idx_requests_created ON requests (created_at);
CREATE INDEX idx_requests_device_hash ON requests (device_id, payload_hash);

CREATE TABLE request_metadata (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id  uuid NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    key         varchar(100) NOT NULL,
    value       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (request_id, key)
);
CREATE INDEX idx_request_metadata_key_value ON request_metadata (key, value);

CREATE TABLE responses (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id    uuid NOT NULL UNIQUE REFERENCES requests (id) ON DELETE CASCADE,
    status        varchar(50) NOT NULL
                  CHECK (status IN ('processing', 'ready', 'delivered', 'failed')),
    content       jsonb NOT NULL,
    ai_processed  boolean NOT NULL DEFAULT false,
    local_path    text,
    delivered_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_responses_status ON responses (status);
CREATE INDEX idx_responses_ai_processed ON responses (ai_processed) WHERE ai_processed;

CREATE TABLE response_metadata (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    response_id  uuid NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    key          varchar(100) NOT NULL,
    value        text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (response_id, key)
);
CREATE INDEX idx_response_metadata_key_value ON response_metadata (key, value);

CREATE TABLE device_connections (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    device_id                 varchar(50) NOT NULL,
    user_id                   uuid REFERENCES users (id),
    connection_type           varchar(50) NOT NULL DEFAULT 'file-drop',
    ip_address                inet,
    connected_at              timestamptz NOT NULL,
    last_seen_at              timestamptz NOT NULL,
    disconnected_at           timestamptz,
    session_duration_seconds  integer,
    created_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_device_connections_device_connected ON device_connections (device_id, connected_at DESC);
CREATE INDEX idx_device_connections_user ON device_connections (user_id);
-- At most one open session per device.
CREATE UNIQUE INDEX uq_device_connections_open ON device_connections (device_id) WHERE disconnected_at IS NULL;

-- The ledger: one row per (target, local file version).
CREATE TABLE cloud_file_refs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id        uuid REFERENCES requests (id) ON DELETE SET NULL,
    response_id       uuid REFERENCES responses (id) ON DELETE SET NULL,
    file_type         varchar(50) NOT NULL CHECK (file_type IN ('request', 'attachment', 'response')),
    cloud_provider    varchar(50) NOT NULL,
    cloud_path        varchar(2000),
    file_size_bytes   bigint NOT NULL CHECK (file_size_bytes >= 0),
    uploaded_at       timestamptz,
    sync_status       varchar(50) NOT NULL DEFAULT 'pending'
                      CHECK (sync_status IN ('pending', 'uploading', 'synced', 'failed')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- the ledger columns (docs/ledger-and-requests.md)
    target            varchar(63) NOT NULL,
    device_id         varchar(50) NOT NULL,
    local_path        text NOT NULL,
    content_sha256    char(64) NOT NULL CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    file_mtime_ns     bigint NOT NULL,
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error        text,
    next_attempt_at   timestamptz,
    lease_expires_at  timestamptz,
    claimed_by        uuid REFERENCES instances (id) ON DELETE SET NULL,
    uploaded_by       uuid REFERENCES instances (id) ON DELETE SET NULL,
    remote_id         text,
    remote_size       bigint,
    remote_hash       text,
    verification      varchar(20) CHECK (verification IN ('hash', 'transport', 'server-modified')),
    upload_session    jsonb,
    local_state       varchar(20) NOT NULL DEFAULT 'present'
                      CHECK (local_state IN ('present', 'archived', 'deleted', 'missing')),
    archived_path     text,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (target, local_path, content_sha256),
    CHECK (sync_status <> 'synced' OR uploaded_at IS NOT NULL),
    CHECK (sync_status <> 'uploading' OR lease_expires_at IS NOT NULL)
);
-- Workers claim the oldest pending rows of their target.
CREATE INDEX idx_cfr_claim ON cloud_file_refs (target, created_at) WHERE sync_status = 'pending';
-- The retry job finds due failures; the lease reaper finds expired claims.
CREATE INDEX idx_cfr_due ON cloud_file_refs (next_attempt_at) WHERE sync_status = 'failed';
CREATE INDEX idx_cfr_lease ON cloud_file_refs (lease_expires_at) WHERE sync_status = 'uploading';
CREATE INDEX idx_cfr_target_status ON cloud_file_refs (target, sync_status);
CREATE INDEX idx_cfr_local_path ON cloud_file_refs (local_path, created_at DESC);
CREATE INDEX idx_cfr_device_created ON cloud_file_refs (device_id, created_at DESC);
CREATE INDEX idx_cfr_created ON cloud_file_refs (created_at DESC);
CREATE INDEX idx_cfr_request ON cloud_file_refs (request_id);
CREATE INDEX idx_cfr_response ON cloud_file_refs (response_id);
CREATE INDEX idx_cfr_cloud_path ON cloud_file_refs (target, lower(cloud_path));

-- ---------------------------------------------------------------- parts & inventory
CREATE TABLE parts (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    part_code        varchar(50) NOT NULL UNIQUE,
    name             varchar(255) NOT NULL,
    description      text,
    category         varchar(100),
    unit_of_measure  varchar(20) NOT NULL DEFAULT 'unit',
    is_active        boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_parts_name ON parts (name);
CREATE INDEX idx_parts_category ON parts (category);

CREATE TABLE part_variants (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    part_id        uuid NOT NULL REFERENCES parts (id) ON DELETE CASCADE,
    variant_code   varchar(50) NOT NULL,
    variant_name   varchar(255),
    attributes     jsonb,
    cost_per_unit  numeric(10, 2) CHECK (cost_per_unit >= 0),
    retail_price   numeric(10, 2) CHECK (retail_price >= 0),
    is_available   boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (part_id, variant_code)
);
CREATE INDEX idx_part_variants_code ON part_variants (variant_code);

CREATE TABLE suppliers (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name            varchar(255) NOT NULL UNIQUE,
    contact_email   varchar(255),
    contact_phone   varchar(20),
    website         varchar(255),
    lead_time_days  integer CHECK (lead_time_days >= 0),
    is_preferred    boolean NOT NULL DEFAULT false,
    is_active       boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE part_suppliers (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    part_id            uuid NOT NULL REFERENCES parts (id) ON DELETE CASCADE,
    variant_id         uuid REFERENCES part_variants (id) ON DELETE CASCADE,
    supplier_id        uuid NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
    sku                varchar(100),
    supplier_cost      numeric(10, 2) NOT NULL CHECK (supplier_cost >= 0),
    lead_time_days     integer CHECK (lead_time_days >= 0),
    minimum_order_qty  integer NOT NULL DEFAULT 1 CHECK (minimum_order_qty >= 1),
    is_preferred       boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
-- NULL variant means "the part itself": one offer per supplier either way.
CREATE UNIQUE INDEX uq_part_suppliers ON part_suppliers
    (part_id, COALESCE(variant_id, '00000000-0000-0000-0000-000000000000'::uuid), supplier_id);
-- Pattern 3: best supplier for a part variant.
CREATE INDEX idx_part_suppliers_best ON part_suppliers (part_id, variant_id, is_preferred DESC, supplier_cost);
CREATE INDEX idx_part_suppliers_supplier ON part_suppliers (supplier_id);
CREATE INDEX idx_part_suppliers_sku ON part_suppliers (sku);

CREATE TABLE locations (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name           varchar(255) NOT NULL UNIQUE,
    dept_id        uuid NOT NULL REFERENCES departments (id),
    location_type  varchar(50) CHECK (location_type IN ('warehouse', 'store', 'garage', 'depot', 'vehicle', 'site')),
    address        text,
    is_active      boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_locations_dept ON locations (dept_id);

CREATE TABLE inventory (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    part_id             uuid NOT NULL REFERENCES parts (id) ON DELETE CASCADE,
    variant_id          uuid REFERENCES part_variants (id) ON DELETE CASCADE,
    location_id         uuid NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    quantity_on_hand    integer NOT NULL DEFAULT 0 CHECK (quantity_on_hand >= 0),
    quantity_reserved   integer NOT NULL DEFAULT 0 CHECK (quantity_reserved >= 0),
    quantity_available  integer GENERATED ALWAYS AS (quantity_on_hand - quantity_reserved) STORED,
    reorder_point       integer CHECK (reorder_point >= 0),
    reorder_quantity    integer CHECK (reorder_quantity >= 0),
    last_counted_at     timestamptz,
    last_updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX uq_inventory ON inventory
    (part_id, COALESCE(variant_id, '00000000-0000-0000-0000-000000000000'::uuid), location_id);
-- Pattern 2: a location's stock at or below its reorder point, emptiest first.
CREATE INDEX idx_inventory_location_available ON inventory (location_id, quantity_available);
CREATE INDEX idx_inventory_location_reorder ON inventory (location_id) WHERE quantity_available <= reorder_point;
CREATE INDEX idx_inventory_part ON inventory (part_id);

CREATE VIEW stock_levels AS
    SELECT part_id, variant_id, location_id, quantity_on_hand, quantity_reserved,
           quantity_available, last_updated_at AS last_updated
    FROM inventory;

CREATE TABLE part_consumption (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    part_id            uuid NOT NULL REFERENCES parts (id),
    variant_id         uuid REFERENCES part_variants (id),
    location_id        uuid NOT NULL REFERENCES locations (id),
    quantity_consumed  integer NOT NULL CHECK (quantity_consumed > 0),
    consumption_date   date NOT NULL DEFAULT current_date,
    consumed_by        uuid REFERENCES users (id),
    request_id         uuid REFERENCES requests (id) ON DELETE SET NULL,
    notes              text,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_part_consumption_location_date ON part_consumption (location_id, consumption_date);
CREATE INDEX idx_part_consumption_part_date ON part_consumption (part_id, consumption_date);
CREATE INDEX idx_part_consumption_consumed_by ON part_consumption (consumed_by);

-- ---------------------------------------------------------------- orders & workflows
CREATE TABLE orders (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id   uuid UNIQUE REFERENCES requests (id) ON DELETE SET NULL,
    location_id  uuid NOT NULL REFERENCES locations (id),
    order_type   varchar(50) NOT NULL DEFAULT 'purchase'
                 CHECK (order_type IN ('purchase', 'internal_transfer', 'return')),
    status       varchar(50) NOT NULL DEFAULT 'draft'
                 CHECK (status IN ('draft', 'pending-approval', 'approved', 'ordered', 'received', 'cancelled')),
    total        numeric(14, 2) NOT NULL DEFAULT 0,
    created_by   uuid NOT NULL REFERENCES users (id),
    approved_by  uuid REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    approved_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_orders_status_created ON orders (status, created_at DESC);
CREATE INDEX idx_orders_created_by ON orders (created_by);
CREATE INDEX idx_orders_location ON orders (location_id);

CREATE TABLE order_items (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id                uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    part_id                 uuid NOT NULL REFERENCES parts (id),
    variant_id              uuid REFERENCES part_variants (id),
    supplier_id             uuid NOT NULL REFERENCES suppliers (id),
    quantity_ordered        integer NOT NULL CHECK (quantity_ordered > 0),
    quantity_received       integer NOT NULL DEFAULT 0 CHECK (quantity_received >= 0),
    unit_price              numeric(10, 2) NOT NULL CHECK (unit_price >= 0),
    total_price             numeric(12, 2) GENERATED ALWAYS AS (quantity_ordered * unit_price) STORED,
    expected_delivery_date  date,
    created_at              timestamptz NOT NULL DEFAULT now(),
    CHECK (quantity_received <= quantity_ordered)
);
CREATE INDEX idx_order_items_order ON order_items (order_id);
CREATE INDEX idx_order_items_part ON order_items (part_id);
CREATE INDEX idx_order_items_supplier ON order_items (supplier_id);

CREATE TABLE order_approvals (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id        uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    approver_id     uuid NOT NULL REFERENCES users (id),
    approval_level  integer NOT NULL CHECK (approval_level BETWEEN 1 AND 10),
    status          varchar(50) NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
    notes           text,
    decision_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, approval_level)
);
-- Pattern 4: an order's approval chain in level order (the UNIQUE index serves it).
CREATE INDEX idx_order_approvals_approver_status ON order_approvals (approver_id, status);

CREATE TABLE order_history (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id           uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    event_type         varchar(100) NOT NULL,
    event_description  text,
    user_id            uuid REFERENCES users (id),
    metadata           jsonb,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_order_history_order_created ON order_history (order_id, created_at);
CREATE INDEX idx_order_history_event ON order_history (event_type);

-- ---------------------------------------------------------------- audit & compliance
-- Partitioned by year (the seed's retention note); partitions are created ahead of time by
-- a scheduled job, and the default partition catches anything outside them.
CREATE TABLE audit_logs (
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    table_name     varchar(100) NOT NULL,
    operation      varchar(10) NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
    record_id      varchar(100),
    user_id        uuid,
    old_values     jsonb,
    new_values     jsonb,
    change_reason  text,
    ip_address     inet,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE audit_logs_default PARTITION OF audit_logs DEFAULT;
CREATE INDEX idx_audit_logs_table_record ON audit_logs (table_name, record_id);
CREATE INDEX idx_audit_logs_user_created ON audit_logs (user_id, created_at);
CREATE INDEX idx_audit_logs_created ON audit_logs (created_at);

CREATE TABLE agent_decisions (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id        uuid NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    agent_name        varchar(100) NOT NULL,
    decision_type     varchar(100),
    decision_value    text,
    reasoning         jsonb,
    confidence_score  numeric(3, 2) CHECK (confidence_score BETWEEN 0 AND 1),
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_agent_decisions_request ON agent_decisions (request_id);
CREATE INDEX idx_agent_decisions_agent_type ON agent_decisions (agent_name, decision_type);
