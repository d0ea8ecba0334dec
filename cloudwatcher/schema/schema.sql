CREATE FUNCTION public.cloudwatcher_audit_row() RETURNS trigger
    LANGUAGE plpgsql
    AS $_$
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
$_$;

CREATE FUNCTION public.cloudwatcher_ensure_audit_partitions(years_ahead integer DEFAULT 1) RETURNS integer
    LANGUAGE plpgsql
    AS $_$
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
$_$;

CREATE TABLE public.agent_decisions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    request_id uuid NOT NULL,
    agent_name character varying(100) NOT NULL,
    decision_type character varying(100),
    decision_value text,
    reasoning jsonb,
    confidence_score numeric(3,2),
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    processor_account character varying(100),
    CONSTRAINT agent_decisions_confidence_score_check CHECK (((confidence_score >= (0)::numeric) AND (confidence_score <= (1)::numeric)))
);

CREATE TABLE public.agent_decisions_archive (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    request_id uuid NOT NULL,
    agent_name character varying(100) NOT NULL,
    decision_type character varying(100),
    decision_value text,
    reasoning jsonb,
    confidence_score numeric(3,2),
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    archived_at timestamp with time zone DEFAULT now() NOT NULL,
    processor_account character varying(100)
);

CREATE TABLE public.audit_logs (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    table_name character varying(100) NOT NULL,
    operation character varying(10) NOT NULL,
    record_id character varying(100),
    user_id uuid,
    old_values jsonb,
    new_values jsonb,
    change_reason text,
    ip_address inet,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT audit_logs_operation_check CHECK (((operation)::text = ANY ((ARRAY['INSERT'::character varying, 'UPDATE'::character varying, 'DELETE'::character varying])::text[])))
)
PARTITION BY RANGE (created_at);

CREATE TABLE public.audit_logs_default (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    table_name character varying(100) NOT NULL,
    operation character varying(10) NOT NULL,
    record_id character varying(100),
    user_id uuid,
    old_values jsonb,
    new_values jsonb,
    change_reason text,
    ip_address inet,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT audit_logs_operation_check CHECK (((operation)::text = ANY ((ARRAY['INSERT'::character varying, 'UPDATE'::character varying, 'DELETE'::character varying])::text[])))
);

CREATE TABLE public.cloud_file_refs (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    request_id uuid,
    response_id uuid,
    file_type character varying(50) NOT NULL,
    cloud_provider character varying(50) NOT NULL,
    cloud_path character varying(2000),
    file_size_bytes bigint NOT NULL,
    uploaded_at timestamp with time zone,
    sync_status character varying(50) DEFAULT 'pending'::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    target character varying(63) NOT NULL,
    device_id character varying(50) NOT NULL,
    local_path text NOT NULL,
    content_sha256 character(64) NOT NULL,
    file_mtime_ns bigint NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text,
    next_attempt_at timestamp with time zone,
    lease_expires_at timestamp with time zone,
    claimed_by uuid,
    uploaded_by uuid,
    remote_id text,
    remote_size bigint,
    remote_hash text,
    verification character varying(20),
    upload_session jsonb,
    local_state character varying(20) DEFAULT 'present'::character varying NOT NULL,
    archived_path text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    processed_at timestamp with time zone,
    source_root text,
    claim_token uuid,
    CONSTRAINT cloud_file_refs_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT cloud_file_refs_check CHECK ((((sync_status)::text <> 'synced'::text) OR (uploaded_at IS NOT NULL))),
    CONSTRAINT cloud_file_refs_check1 CHECK ((((sync_status)::text <> 'uploading'::text) OR (lease_expires_at IS NOT NULL))),
    CONSTRAINT cloud_file_refs_content_sha256_check CHECK ((content_sha256 ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT cloud_file_refs_file_size_bytes_check CHECK ((file_size_bytes >= 0)),
    CONSTRAINT cloud_file_refs_file_type_check CHECK (((file_type)::text = ANY ((ARRAY['request'::character varying, 'attachment'::character varying, 'response'::character varying])::text[]))),
    CONSTRAINT cloud_file_refs_local_state_check CHECK (((local_state)::text = ANY ((ARRAY['present'::character varying, 'archived'::character varying, 'deleted'::character varying, 'missing'::character varying])::text[]))),
    CONSTRAINT cloud_file_refs_sync_status_check CHECK (((sync_status)::text = ANY ((ARRAY['pending'::character varying, 'uploading'::character varying, 'synced'::character varying, 'failed'::character varying])::text[]))),
    CONSTRAINT cloud_file_refs_verification_check CHECK (((verification)::text = ANY ((ARRAY['hash'::character varying, 'transport'::character varying, 'server-modified'::character varying])::text[])))
);

CREATE TABLE public.cloud_file_refs_archive (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    request_id uuid,
    response_id uuid,
    file_type character varying(50) NOT NULL,
    cloud_provider character varying(50) NOT NULL,
    cloud_path character varying(2000),
    file_size_bytes bigint NOT NULL,
    uploaded_at timestamp with time zone,
    sync_status character varying(50) DEFAULT 'pending'::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    target character varying(63) NOT NULL,
    device_id character varying(50) NOT NULL,
    local_path text NOT NULL,
    content_sha256 character(64) NOT NULL,
    file_mtime_ns bigint NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text,
    next_attempt_at timestamp with time zone,
    lease_expires_at timestamp with time zone,
    claimed_by uuid,
    uploaded_by uuid,
    remote_id text,
    remote_size bigint,
    remote_hash text,
    verification character varying(20),
    upload_session jsonb,
    local_state character varying(20) DEFAULT 'present'::character varying NOT NULL,
    archived_path text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    processed_at timestamp with time zone,
    archived_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.cluster_job_runs (
    name text NOT NULL,
    last_run_at timestamp with time zone NOT NULL,
    instance_id uuid,
    runs bigint DEFAULT 1 NOT NULL
);

CREATE TABLE public.departments (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name character varying(255) NOT NULL,
    parent_id uuid,
    description text,
    manager_id uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT departments_check CHECK ((parent_id IS DISTINCT FROM id))
);

CREATE TABLE public.device_connections (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    device_id character varying(50) NOT NULL,
    user_id uuid,
    connection_type character varying(50) DEFAULT 'file-drop'::character varying NOT NULL,
    ip_address inet,
    connected_at timestamp with time zone NOT NULL,
    last_seen_at timestamp with time zone NOT NULL,
    disconnected_at timestamp with time zone,
    session_duration_seconds integer,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.device_skipped_files (
    device_id text NOT NULL,
    skipped bigint DEFAULT 0 NOT NULL,
    last_skipped_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT device_skipped_files_skipped_check CHECK ((skipped >= 0))
);

CREATE TABLE public.device_users (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    device_id character varying(50) NOT NULL,
    user_id uuid NOT NULL,
    assigned_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.devices (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    device_id character varying(50) NOT NULL,
    description text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT devices_device_id_check CHECK (((device_id)::text ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$'::text))
);

CREATE TABLE public.instances (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    version text NOT NULL,
    watch_root text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    last_heartbeat timestamp with time zone DEFAULT now() NOT NULL,
    stopped_at timestamp with time zone
);

CREATE TABLE public.inventory (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    part_id uuid NOT NULL,
    variant_id uuid,
    location_id uuid NOT NULL,
    quantity_on_hand integer DEFAULT 0 NOT NULL,
    quantity_reserved integer DEFAULT 0 NOT NULL,
    quantity_available integer GENERATED ALWAYS AS ((quantity_on_hand - quantity_reserved)) STORED,
    reorder_point integer,
    reorder_quantity integer,
    last_counted_at timestamp with time zone,
    last_updated_at timestamp with time zone DEFAULT now() NOT NULL,
    needs_reorder boolean GENERATED ALWAYS AS (((quantity_on_hand - quantity_reserved) <= reorder_point)) STORED,
    CONSTRAINT inventory_quantity_on_hand_check CHECK ((quantity_on_hand >= 0)),
    CONSTRAINT inventory_quantity_reserved_check CHECK ((quantity_reserved >= 0)),
    CONSTRAINT inventory_reorder_point_check CHECK ((reorder_point >= 0)),
    CONSTRAINT inventory_reorder_quantity_check CHECK ((reorder_quantity >= 0))
);

CREATE TABLE public.locations (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name character varying(255) NOT NULL,
    dept_id uuid NOT NULL,
    location_type character varying(50),
    address text,
    is_active boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT locations_location_type_check CHECK (((location_type)::text = ANY ((ARRAY['warehouse'::character varying, 'store'::character varying, 'garage'::character varying, 'depot'::character varying, 'vehicle'::character varying, 'site'::character varying])::text[])))
);

CREATE TABLE public.notification_events (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    event character varying(40) NOT NULL,
    target character varying(63) NOT NULL,
    local_path text,
    ref_id uuid,
    reason text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    status character varying(20) DEFAULT 'pending'::character varying NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    last_error text,
    delivered_at timestamp with time zone,
    CONSTRAINT notification_events_event_check CHECK (((event)::text = ANY ((ARRAY['file.gave_up'::character varying, 'target.failing'::character varying, 'target.recovered'::character varying, 'target.full'::character varying])::text[]))),
    CONSTRAINT notification_events_status_check CHECK (((status)::text = ANY ((ARRAY['pending'::character varying, 'delivered'::character varying, 'expired'::character varying])::text[])))
);

CREATE TABLE public.order_approvals (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    order_id uuid NOT NULL,
    approver_id uuid NOT NULL,
    approval_level integer NOT NULL,
    status character varying(50) DEFAULT 'pending'::character varying NOT NULL,
    notes text,
    decision_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT order_approvals_approval_level_check CHECK (((approval_level >= 1) AND (approval_level <= 10))),
    CONSTRAINT order_approvals_status_check CHECK (((status)::text = ANY ((ARRAY['pending'::character varying, 'approved'::character varying, 'rejected'::character varying, 'cancelled'::character varying])::text[])))
);

CREATE TABLE public.order_history (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    order_id uuid NOT NULL,
    event_type character varying(100) NOT NULL,
    event_description text,
    user_id uuid,
    metadata jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.order_items (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    order_id uuid NOT NULL,
    part_id uuid NOT NULL,
    variant_id uuid,
    supplier_id uuid NOT NULL,
    quantity_ordered integer NOT NULL,
    quantity_received integer DEFAULT 0 NOT NULL,
    unit_price numeric(10,2) NOT NULL,
    total_price numeric(12,2) GENERATED ALWAYS AS (((quantity_ordered)::numeric * unit_price)) STORED,
    expected_delivery_date date,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT order_items_check CHECK ((quantity_received <= quantity_ordered)),
    CONSTRAINT order_items_quantity_ordered_check CHECK ((quantity_ordered > 0)),
    CONSTRAINT order_items_quantity_received_check CHECK ((quantity_received >= 0)),
    CONSTRAINT order_items_unit_price_check CHECK ((unit_price >= (0)::numeric))
);

CREATE TABLE public.orders (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    request_id uuid,
    location_id uuid NOT NULL,
    order_type character varying(50) DEFAULT 'purchase'::character varying NOT NULL,
    status character varying(50) DEFAULT 'draft'::character varying NOT NULL,
    total numeric(14,2) DEFAULT 0 NOT NULL,
    created_by uuid NOT NULL,
    approved_by uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    approved_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT orders_order_type_check CHECK (((order_type)::text = ANY ((ARRAY['purchase'::character varying, 'internal_transfer'::character varying, 'return'::character varying])::text[]))),
    CONSTRAINT orders_status_check CHECK (((status)::text = ANY ((ARRAY['draft'::character varying, 'pending-approval'::character varying, 'approved'::character varying, 'ordered'::character varying, 'received'::character varying, 'cancelled'::character varying])::text[])))
);

CREATE TABLE public.part_consumption (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    part_id uuid NOT NULL,
    variant_id uuid,
    location_id uuid NOT NULL,
    quantity_consumed integer NOT NULL,
    consumption_date date DEFAULT CURRENT_DATE NOT NULL,
    consumed_by uuid,
    request_id uuid,
    notes text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT part_consumption_quantity_consumed_check CHECK ((quantity_consumed > 0))
);

CREATE TABLE public.part_suppliers (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    part_id uuid NOT NULL,
    variant_id uuid,
    supplier_id uuid NOT NULL,
    sku character varying(100),
    supplier_cost numeric(10,2) NOT NULL,
    lead_time_days integer,
    minimum_order_qty integer DEFAULT 1 NOT NULL,
    is_preferred boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT part_suppliers_lead_time_days_check CHECK ((lead_time_days >= 0)),
    CONSTRAINT part_suppliers_minimum_order_qty_check CHECK ((minimum_order_qty >= 1)),
    CONSTRAINT part_suppliers_supplier_cost_check CHECK ((supplier_cost >= (0)::numeric))
);

CREATE TABLE public.part_variants (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    part_id uuid NOT NULL,
    variant_code character varying(50) NOT NULL,
    variant_name character varying(255),
    attributes jsonb,
    cost_per_unit numeric(10,2),
    retail_price numeric(10,2),
    is_available boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT part_variants_cost_per_unit_check CHECK ((cost_per_unit >= (0)::numeric)),
    CONSTRAINT part_variants_retail_price_check CHECK ((retail_price >= (0)::numeric))
);

CREATE TABLE public.parts (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    part_code character varying(50) NOT NULL,
    name character varying(255) NOT NULL,
    description text,
    category character varying(100),
    unit_of_measure character varying(20) DEFAULT 'unit'::character varying NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.remote_names (
    target character varying(63) NOT NULL,
    local_path text NOT NULL,
    remote_path text NOT NULL,
    collision_key text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.request_attachments (
    request_id uuid NOT NULL,
    local_path text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.request_metadata (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    request_id uuid NOT NULL,
    key character varying(100) NOT NULL,
    value text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.request_metadata_archive (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    request_id uuid NOT NULL,
    key character varying(100) NOT NULL,
    value text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    archived_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.requests (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    device_id character varying(50) NOT NULL,
    request_type character varying(50) NOT NULL,
    status character varying(50) DEFAULT 'pending'::character varying NOT NULL,
    payload_hash character(64),
    created_by uuid,
    local_path text,
    error_code character varying(50),
    processed_by uuid,
    processed_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    device_request_id uuid,
    CONSTRAINT requests_payload_hash_check CHECK ((payload_hash ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT requests_status_check CHECK (((status)::text = ANY ((ARRAY['pending'::character varying, 'processing'::character varying, 'completed'::character varying, 'failed'::character varying])::text[])))
);

CREATE TABLE public.requests_archive (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    device_id character varying(50) NOT NULL,
    request_type character varying(50) NOT NULL,
    status character varying(50) DEFAULT 'pending'::character varying NOT NULL,
    payload_hash character(64),
    created_by uuid,
    local_path text,
    error_code character varying(50),
    processed_by uuid,
    processed_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    archived_at timestamp with time zone DEFAULT now() NOT NULL,
    device_request_id uuid
);

CREATE TABLE public.response_metadata (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    response_id uuid NOT NULL,
    key character varying(100) NOT NULL,
    value text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.response_metadata_archive (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    response_id uuid NOT NULL,
    key character varying(100) NOT NULL,
    value text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    archived_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.responses (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    request_id uuid NOT NULL,
    status character varying(50) NOT NULL,
    content jsonb NOT NULL,
    ai_processed boolean DEFAULT false NOT NULL,
    local_path text,
    delivered_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT responses_status_check CHECK (((status)::text = ANY ((ARRAY['processing'::character varying, 'ready'::character varying, 'delivered'::character varying, 'failed'::character varying])::text[])))
);

CREATE TABLE public.responses_archive (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    request_id uuid NOT NULL,
    status character varying(50) NOT NULL,
    content jsonb NOT NULL,
    ai_processed boolean DEFAULT false NOT NULL,
    local_path text,
    delivered_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    archived_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.role_permissions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    role_id uuid NOT NULL,
    permission character varying(100) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.roles (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name character varying(100) NOT NULL,
    description text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE VIEW public.stock_levels AS
 SELECT part_id,
    variant_id,
    location_id,
    quantity_on_hand,
    quantity_reserved,
    quantity_available,
    last_updated_at AS last_updated
   FROM public.inventory;

CREATE TABLE public.suppliers (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name character varying(255) NOT NULL,
    contact_email character varying(255),
    contact_phone character varying(20),
    website character varying(255),
    lead_time_days integer,
    is_preferred boolean DEFAULT false NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT suppliers_lead_time_days_check CHECK ((lead_time_days >= 0))
);

CREATE TABLE public.target_pauses (
    target character varying(63) NOT NULL,
    paused_at timestamp with time zone DEFAULT now() NOT NULL,
    paused_by text NOT NULL
);

CREATE TABLE public.target_states (
    target character varying(63) NOT NULL,
    state character varying(20) NOT NULL,
    reason text,
    until timestamp with time zone,
    since timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT target_states_check CHECK ((((state)::text <> 'parked'::text) OR (until IS NOT NULL))),
    CONSTRAINT target_states_state_check CHECK (((state)::text = ANY ((ARRAY['ok'::character varying, 'parked'::character varying, 'full'::character varying, 'failing'::character varying])::text[])))
);

CREATE TABLE public.user_departments (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    dept_id uuid NOT NULL,
    assigned_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.user_roles (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    role_id uuid NOT NULL,
    assigned_at timestamp with time zone DEFAULT now() NOT NULL,
    assigned_by uuid
);

CREATE TABLE public.users (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    email character varying(255) NOT NULL,
    name character varying(255) NOT NULL,
    oauth_provider character varying(50),
    oauth_id character varying(255),
    is_active boolean DEFAULT true NOT NULL,
    last_login timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT users_oauth_provider_check CHECK (((oauth_provider)::text = ANY ((ARRAY['azure-ad'::character varying, 'google'::character varying, 'local'::character varying])::text[])))
);

ALTER TABLE ONLY public.audit_logs ATTACH PARTITION public.audit_logs_default DEFAULT;

ALTER TABLE ONLY public.agent_decisions_archive
    ADD CONSTRAINT agent_decisions_archive_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.agent_decisions
    ADD CONSTRAINT agent_decisions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.audit_logs
    ADD CONSTRAINT audit_logs_pkey PRIMARY KEY (id, created_at);

ALTER TABLE ONLY public.audit_logs_default
    ADD CONSTRAINT audit_logs_default_pkey PRIMARY KEY (id, created_at);

ALTER TABLE ONLY public.cloud_file_refs_archive
    ADD CONSTRAINT cloud_file_refs_archive_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.cloud_file_refs
    ADD CONSTRAINT cloud_file_refs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.cloud_file_refs
    ADD CONSTRAINT cloud_file_refs_target_local_path_content_sha256_key UNIQUE (target, local_path, content_sha256);

ALTER TABLE ONLY public.cluster_job_runs
    ADD CONSTRAINT cluster_job_runs_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.departments
    ADD CONSTRAINT departments_name_key UNIQUE (name);

ALTER TABLE ONLY public.departments
    ADD CONSTRAINT departments_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.device_connections
    ADD CONSTRAINT device_connections_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.device_skipped_files
    ADD CONSTRAINT device_skipped_files_pkey PRIMARY KEY (device_id);

ALTER TABLE ONLY public.device_users
    ADD CONSTRAINT device_users_device_id_user_id_key UNIQUE (device_id, user_id);

ALTER TABLE ONLY public.device_users
    ADD CONSTRAINT device_users_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.devices
    ADD CONSTRAINT devices_device_id_key UNIQUE (device_id);

ALTER TABLE ONLY public.devices
    ADD CONSTRAINT devices_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.instances
    ADD CONSTRAINT instances_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.inventory
    ADD CONSTRAINT inventory_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.locations
    ADD CONSTRAINT locations_name_key UNIQUE (name);

ALTER TABLE ONLY public.locations
    ADD CONSTRAINT locations_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.notification_events
    ADD CONSTRAINT notification_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.order_approvals
    ADD CONSTRAINT order_approvals_order_id_approval_level_key UNIQUE (order_id, approval_level);

ALTER TABLE ONLY public.order_approvals
    ADD CONSTRAINT order_approvals_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.order_history
    ADD CONSTRAINT order_history_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.order_items
    ADD CONSTRAINT order_items_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_request_id_key UNIQUE (request_id);

ALTER TABLE ONLY public.part_consumption
    ADD CONSTRAINT part_consumption_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.part_suppliers
    ADD CONSTRAINT part_suppliers_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.part_variants
    ADD CONSTRAINT part_variants_part_id_variant_code_key UNIQUE (part_id, variant_code);

ALTER TABLE ONLY public.part_variants
    ADD CONSTRAINT part_variants_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.parts
    ADD CONSTRAINT parts_part_code_key UNIQUE (part_code);

ALTER TABLE ONLY public.parts
    ADD CONSTRAINT parts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.remote_names
    ADD CONSTRAINT remote_names_pkey PRIMARY KEY (target, local_path);

ALTER TABLE ONLY public.remote_names
    ADD CONSTRAINT remote_names_target_collision_key_key UNIQUE (target, collision_key);

ALTER TABLE ONLY public.request_attachments
    ADD CONSTRAINT request_attachments_pkey PRIMARY KEY (request_id, local_path);

ALTER TABLE ONLY public.request_metadata_archive
    ADD CONSTRAINT request_metadata_archive_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.request_metadata
    ADD CONSTRAINT request_metadata_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.request_metadata
    ADD CONSTRAINT request_metadata_request_id_key_key UNIQUE (request_id, key);

ALTER TABLE ONLY public.requests_archive
    ADD CONSTRAINT requests_archive_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.requests
    ADD CONSTRAINT requests_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.response_metadata_archive
    ADD CONSTRAINT response_metadata_archive_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.response_metadata
    ADD CONSTRAINT response_metadata_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.response_metadata
    ADD CONSTRAINT response_metadata_response_id_key_key UNIQUE (response_id, key);

ALTER TABLE ONLY public.responses_archive
    ADD CONSTRAINT responses_archive_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.responses
    ADD CONSTRAINT responses_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.responses
    ADD CONSTRAINT responses_request_id_key UNIQUE (request_id);

ALTER TABLE ONLY public.role_permissions
    ADD CONSTRAINT role_permissions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.role_permissions
    ADD CONSTRAINT role_permissions_role_id_permission_key UNIQUE (role_id, permission);

ALTER TABLE ONLY public.roles
    ADD CONSTRAINT roles_name_key UNIQUE (name);

ALTER TABLE ONLY public.roles
    ADD CONSTRAINT roles_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY public.suppliers
    ADD CONSTRAINT suppliers_name_key UNIQUE (name);

ALTER TABLE ONLY public.suppliers
    ADD CONSTRAINT suppliers_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.target_pauses
    ADD CONSTRAINT target_pauses_pkey PRIMARY KEY (target);

ALTER TABLE ONLY public.target_states
    ADD CONSTRAINT target_states_pkey PRIMARY KEY (target);

ALTER TABLE ONLY public.user_departments
    ADD CONSTRAINT user_departments_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.user_departments
    ADD CONSTRAINT user_departments_user_id_dept_id_key UNIQUE (user_id, dept_id);

ALTER TABLE ONLY public.user_roles
    ADD CONSTRAINT user_roles_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.user_roles
    ADD CONSTRAINT user_roles_user_id_role_id_key UNIQUE (user_id, role_id);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_email_key UNIQUE (email);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_oauth_id_key UNIQUE (oauth_id);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);

CREATE INDEX idx_audit_logs_created ON ONLY public.audit_logs USING btree (created_at);

CREATE INDEX audit_logs_default_created_at_idx ON public.audit_logs_default USING btree (created_at);

CREATE INDEX idx_audit_logs_table_record ON ONLY public.audit_logs USING btree (table_name, record_id);

CREATE INDEX audit_logs_default_table_name_record_id_idx ON public.audit_logs_default USING btree (table_name, record_id);

CREATE INDEX idx_audit_logs_user_created ON ONLY public.audit_logs USING btree (user_id, created_at);

CREATE INDEX audit_logs_default_user_id_created_at_idx ON public.audit_logs_default USING btree (user_id, created_at);

CREATE INDEX idx_agent_decisions_agent_type ON public.agent_decisions USING btree (agent_name, decision_type);

CREATE INDEX idx_agent_decisions_archive_request ON public.agent_decisions_archive USING btree (request_id);

CREATE INDEX idx_agent_decisions_request ON public.agent_decisions USING btree (request_id);

CREATE INDEX idx_cfr_archive_local_path ON public.cloud_file_refs_archive USING btree (local_path, content_sha256);

CREATE INDEX idx_cfr_archive_request ON public.cloud_file_refs_archive USING btree (request_id);

CREATE INDEX idx_cfr_backlog ON public.cloud_file_refs USING btree (target, created_at) WHERE ((sync_status)::text = ANY ((ARRAY['pending'::character varying, 'uploading'::character varying])::text[]));

CREATE INDEX idx_cfr_claim ON public.cloud_file_refs USING btree (target, created_at) WHERE ((sync_status)::text = 'pending'::text);

CREATE INDEX idx_cfr_created ON public.cloud_file_refs USING btree (created_at DESC);

CREATE INDEX idx_cfr_device_created ON public.cloud_file_refs USING btree (device_id, created_at DESC);

CREATE INDEX idx_cfr_device_path ON public.cloud_file_refs USING btree (device_id, local_path) INCLUDE (created_at);

CREATE INDEX idx_cfr_due ON public.cloud_file_refs USING btree (next_attempt_at) WHERE ((sync_status)::text = 'failed'::text);

CREATE INDEX idx_cfr_gave_up ON public.cloud_file_refs USING btree (target) WHERE (((sync_status)::text = 'failed'::text) AND (next_attempt_at IS NULL));

CREATE INDEX idx_cfr_lease ON public.cloud_file_refs USING btree (lease_expires_at) WHERE ((sync_status)::text = 'uploading'::text);

CREATE INDEX idx_cfr_local_path ON public.cloud_file_refs USING btree (local_path, created_at DESC);

CREATE INDEX idx_cfr_request ON public.cloud_file_refs USING btree (request_id) WHERE (request_id IS NOT NULL);

CREATE INDEX idx_cfr_response ON public.cloud_file_refs USING btree (response_id) WHERE (response_id IS NOT NULL);

CREATE INDEX idx_cfr_target_lower_path ON public.cloud_file_refs USING btree (target, lower(local_path)) WHERE ((cloud_provider)::text = 'sharepoint'::text);

CREATE INDEX idx_cfr_target_status ON public.cloud_file_refs USING btree (target, sync_status);

CREATE INDEX idx_cfr_target_uploaded ON public.cloud_file_refs USING btree (target, uploaded_at DESC) WHERE (uploaded_at IS NOT NULL);

CREATE INDEX idx_cfr_unprocessed ON public.cloud_file_refs USING btree (created_at) WHERE ((processed_at IS NULL) AND ((file_type)::text = ANY ((ARRAY['request'::character varying, 'response'::character varying])::text[])));

CREATE INDEX idx_cfr_uploaded ON public.cloud_file_refs USING btree (uploaded_at) WHERE (uploaded_at IS NOT NULL);

CREATE INDEX idx_departments_manager ON public.departments USING btree (manager_id);

CREATE INDEX idx_departments_parent ON public.departments USING btree (parent_id);

CREATE INDEX idx_device_connections_device_connected ON public.device_connections USING btree (device_id, connected_at DESC);

CREATE INDEX idx_device_connections_user ON public.device_connections USING btree (user_id);

CREATE INDEX idx_device_users_user ON public.device_users USING btree (user_id);

CREATE INDEX idx_instances_heartbeat ON public.instances USING btree (last_heartbeat DESC);

CREATE INDEX idx_inventory_location_available ON public.inventory USING btree (location_id, quantity_available);

CREATE INDEX idx_inventory_needs_reorder ON public.inventory USING btree (location_id, quantity_available) WHERE needs_reorder;

CREATE INDEX idx_inventory_part ON public.inventory USING btree (part_id);

CREATE INDEX idx_locations_dept ON public.locations USING btree (dept_id);

CREATE INDEX idx_notification_events_created ON public.notification_events USING btree (created_at);

CREATE INDEX idx_notification_events_due ON public.notification_events USING btree (next_attempt_at) WHERE ((status)::text = 'pending'::text);

CREATE INDEX idx_order_approvals_approver_status ON public.order_approvals USING btree (approver_id, status);

CREATE INDEX idx_order_history_event ON public.order_history USING btree (event_type);

CREATE INDEX idx_order_history_order_created ON public.order_history USING btree (order_id, created_at);

CREATE INDEX idx_order_items_order ON public.order_items USING btree (order_id);

CREATE INDEX idx_order_items_part ON public.order_items USING btree (part_id);

CREATE INDEX idx_order_items_supplier ON public.order_items USING btree (supplier_id);

CREATE INDEX idx_orders_created_by ON public.orders USING btree (created_by);

CREATE INDEX idx_orders_location ON public.orders USING btree (location_id);

CREATE INDEX idx_orders_status_created ON public.orders USING btree (status, created_at DESC);

CREATE INDEX idx_part_consumption_consumed_by ON public.part_consumption USING btree (consumed_by);

CREATE INDEX idx_part_consumption_location_date ON public.part_consumption USING btree (location_id, consumption_date);

CREATE INDEX idx_part_consumption_part_date ON public.part_consumption USING btree (part_id, consumption_date);

CREATE INDEX idx_part_suppliers_best ON public.part_suppliers USING btree (part_id, variant_id, is_preferred DESC, supplier_cost);

CREATE INDEX idx_part_suppliers_sku ON public.part_suppliers USING btree (sku);

CREATE INDEX idx_part_suppliers_supplier ON public.part_suppliers USING btree (supplier_id);

CREATE INDEX idx_part_variants_code ON public.part_variants USING btree (variant_code);

CREATE INDEX idx_parts_category ON public.parts USING btree (category);

CREATE INDEX idx_parts_category_code ON public.parts USING btree (category, part_code);

CREATE INDEX idx_parts_id_name ON public.parts USING btree (id) INCLUDE (name);

CREATE INDEX idx_parts_name ON public.parts USING btree (name);

CREATE INDEX idx_request_attachments_path ON public.request_attachments USING btree (local_path, created_at DESC);

CREATE INDEX idx_request_metadata_archive_request ON public.request_metadata_archive USING btree (request_id);

CREATE INDEX idx_request_metadata_key_value ON public.request_metadata USING btree (key, value);

CREATE INDEX idx_requests_archive_created ON public.requests_archive USING btree (created_at);

CREATE INDEX idx_requests_archive_device_hash ON public.requests_archive USING btree (device_id, payload_hash);

CREATE INDEX idx_requests_archive_device_request ON public.requests_archive USING btree (device_id, COALESCE(device_request_id, id));

CREATE INDEX idx_requests_created ON public.requests USING btree (created_at);

CREATE INDEX idx_requests_device_created ON public.requests USING btree (device_id, created_at DESC);

CREATE INDEX idx_requests_device_status_created ON public.requests USING btree (device_id, status, created_at DESC);

CREATE INDEX idx_requests_local_path ON public.requests USING btree (local_path);

CREATE INDEX idx_requests_type_created ON public.requests USING btree (request_type, created_at DESC);

CREATE INDEX idx_response_metadata_key_value ON public.response_metadata USING btree (key, value);

CREATE INDEX idx_responses_ai_processed ON public.responses USING btree (ai_processed) WHERE ai_processed;

CREATE INDEX idx_responses_archive_request ON public.responses_archive USING btree (request_id);

CREATE INDEX idx_responses_status ON public.responses USING btree (status);

CREATE INDEX idx_role_permissions_permission ON public.role_permissions USING btree (permission);

CREATE INDEX idx_user_departments_dept ON public.user_departments USING btree (dept_id);

CREATE INDEX idx_user_roles_role ON public.user_roles USING btree (role_id);

CREATE INDEX idx_users_active ON public.users USING btree (is_active) WHERE is_active;

CREATE INDEX idx_users_email_lower ON public.users USING btree (lower((email)::text));

CREATE UNIQUE INDEX uq_device_connections_open ON public.device_connections USING btree (device_id) WHERE (disconnected_at IS NULL);

CREATE UNIQUE INDEX uq_inventory ON public.inventory USING btree (part_id, COALESCE(variant_id, '00000000-0000-0000-0000-000000000000'::uuid), location_id);

CREATE UNIQUE INDEX uq_part_suppliers ON public.part_suppliers USING btree (part_id, COALESCE(variant_id, '00000000-0000-0000-0000-000000000000'::uuid), supplier_id);

CREATE UNIQUE INDEX uq_requests_device_payload ON public.requests USING btree (device_id, payload_hash);

CREATE UNIQUE INDEX uq_requests_device_request ON public.requests USING btree (device_id, COALESCE(device_request_id, id));

ALTER INDEX public.idx_audit_logs_created ATTACH PARTITION public.audit_logs_default_created_at_idx;

ALTER INDEX public.audit_logs_pkey ATTACH PARTITION public.audit_logs_default_pkey;

ALTER INDEX public.idx_audit_logs_table_record ATTACH PARTITION public.audit_logs_default_table_name_record_id_idx;

ALTER INDEX public.idx_audit_logs_user_created ATTACH PARTITION public.audit_logs_default_user_id_created_at_idx;

CREATE TRIGGER audit_agent_decisions AFTER INSERT OR DELETE OR UPDATE ON public.agent_decisions FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_departments AFTER INSERT OR DELETE OR UPDATE ON public.departments FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_device_connections AFTER INSERT OR DELETE OR UPDATE ON public.device_connections FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_device_users AFTER INSERT OR DELETE OR UPDATE ON public.device_users FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_devices AFTER INSERT OR DELETE OR UPDATE ON public.devices FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_inventory AFTER INSERT OR DELETE OR UPDATE ON public.inventory FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_locations AFTER INSERT OR DELETE OR UPDATE ON public.locations FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_order_approvals AFTER INSERT OR DELETE OR UPDATE ON public.order_approvals FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_order_history AFTER INSERT OR DELETE OR UPDATE ON public.order_history FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_order_items AFTER INSERT OR DELETE OR UPDATE ON public.order_items FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_orders AFTER INSERT OR DELETE OR UPDATE ON public.orders FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_part_consumption AFTER INSERT OR DELETE OR UPDATE ON public.part_consumption FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_part_suppliers AFTER INSERT OR DELETE OR UPDATE ON public.part_suppliers FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_part_variants AFTER INSERT OR DELETE OR UPDATE ON public.part_variants FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_parts AFTER INSERT OR DELETE OR UPDATE ON public.parts FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_request_metadata AFTER INSERT OR DELETE OR UPDATE ON public.request_metadata FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_requests AFTER INSERT OR DELETE OR UPDATE ON public.requests FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_responses AFTER INSERT OR DELETE OR UPDATE ON public.responses FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_role_permissions AFTER INSERT OR DELETE OR UPDATE ON public.role_permissions FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_roles AFTER INSERT OR DELETE OR UPDATE ON public.roles FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_suppliers AFTER INSERT OR DELETE OR UPDATE ON public.suppliers FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_user_departments AFTER INSERT OR DELETE OR UPDATE ON public.user_departments FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_user_roles AFTER INSERT OR DELETE OR UPDATE ON public.user_roles FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

CREATE TRIGGER audit_users AFTER INSERT OR DELETE OR UPDATE ON public.users FOR EACH ROW EXECUTE FUNCTION public.cloudwatcher_audit_row();

ALTER TABLE ONLY public.agent_decisions
    ADD CONSTRAINT agent_decisions_request_id_fkey FOREIGN KEY (request_id) REFERENCES public.requests(id) ON DELETE CASCADE;

ALTER TABLE public.audit_logs
    ADD CONSTRAINT audit_logs_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);

ALTER TABLE ONLY public.cloud_file_refs
    ADD CONSTRAINT cloud_file_refs_claimed_by_fkey FOREIGN KEY (claimed_by) REFERENCES public.instances(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.cloud_file_refs
    ADD CONSTRAINT cloud_file_refs_request_id_fkey FOREIGN KEY (request_id) REFERENCES public.requests(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.cloud_file_refs
    ADD CONSTRAINT cloud_file_refs_response_id_fkey FOREIGN KEY (response_id) REFERENCES public.responses(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.cloud_file_refs
    ADD CONSTRAINT cloud_file_refs_uploaded_by_fkey FOREIGN KEY (uploaded_by) REFERENCES public.instances(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.cluster_job_runs
    ADD CONSTRAINT cluster_job_runs_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES public.instances(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.departments
    ADD CONSTRAINT departments_manager_id_fkey FOREIGN KEY (manager_id) REFERENCES public.users(id);

ALTER TABLE ONLY public.departments
    ADD CONSTRAINT departments_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES public.departments(id);

ALTER TABLE ONLY public.device_connections
    ADD CONSTRAINT device_connections_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);

ALTER TABLE ONLY public.device_users
    ADD CONSTRAINT device_users_device_id_fkey FOREIGN KEY (device_id) REFERENCES public.devices(device_id) ON UPDATE CASCADE ON DELETE CASCADE;

ALTER TABLE ONLY public.device_users
    ADD CONSTRAINT device_users_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.inventory
    ADD CONSTRAINT inventory_location_id_fkey FOREIGN KEY (location_id) REFERENCES public.locations(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.inventory
    ADD CONSTRAINT inventory_part_id_fkey FOREIGN KEY (part_id) REFERENCES public.parts(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.inventory
    ADD CONSTRAINT inventory_variant_id_fkey FOREIGN KEY (variant_id) REFERENCES public.part_variants(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.locations
    ADD CONSTRAINT locations_dept_id_fkey FOREIGN KEY (dept_id) REFERENCES public.departments(id);

ALTER TABLE ONLY public.order_approvals
    ADD CONSTRAINT order_approvals_approver_id_fkey FOREIGN KEY (approver_id) REFERENCES public.users(id);

ALTER TABLE ONLY public.order_approvals
    ADD CONSTRAINT order_approvals_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.orders(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.order_history
    ADD CONSTRAINT order_history_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.orders(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.order_history
    ADD CONSTRAINT order_history_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);

ALTER TABLE ONLY public.order_items
    ADD CONSTRAINT order_items_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.orders(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.order_items
    ADD CONSTRAINT order_items_part_id_fkey FOREIGN KEY (part_id) REFERENCES public.parts(id);

ALTER TABLE ONLY public.order_items
    ADD CONSTRAINT order_items_supplier_id_fkey FOREIGN KEY (supplier_id) REFERENCES public.suppliers(id);

ALTER TABLE ONLY public.order_items
    ADD CONSTRAINT order_items_variant_id_fkey FOREIGN KEY (variant_id) REFERENCES public.part_variants(id);

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_approved_by_fkey FOREIGN KEY (approved_by) REFERENCES public.users(id);

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_created_by_fkey FOREIGN KEY (created_by) REFERENCES public.users(id);

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_location_id_fkey FOREIGN KEY (location_id) REFERENCES public.locations(id);

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_request_id_fkey FOREIGN KEY (request_id) REFERENCES public.requests(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.part_consumption
    ADD CONSTRAINT part_consumption_consumed_by_fkey FOREIGN KEY (consumed_by) REFERENCES public.users(id);

ALTER TABLE ONLY public.part_consumption
    ADD CONSTRAINT part_consumption_location_id_fkey FOREIGN KEY (location_id) REFERENCES public.locations(id);

ALTER TABLE ONLY public.part_consumption
    ADD CONSTRAINT part_consumption_part_id_fkey FOREIGN KEY (part_id) REFERENCES public.parts(id);

ALTER TABLE ONLY public.part_consumption
    ADD CONSTRAINT part_consumption_request_id_fkey FOREIGN KEY (request_id) REFERENCES public.requests(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.part_consumption
    ADD CONSTRAINT part_consumption_variant_id_fkey FOREIGN KEY (variant_id) REFERENCES public.part_variants(id);

ALTER TABLE ONLY public.part_suppliers
    ADD CONSTRAINT part_suppliers_part_id_fkey FOREIGN KEY (part_id) REFERENCES public.parts(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.part_suppliers
    ADD CONSTRAINT part_suppliers_supplier_id_fkey FOREIGN KEY (supplier_id) REFERENCES public.suppliers(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.part_suppliers
    ADD CONSTRAINT part_suppliers_variant_id_fkey FOREIGN KEY (variant_id) REFERENCES public.part_variants(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.part_variants
    ADD CONSTRAINT part_variants_part_id_fkey FOREIGN KEY (part_id) REFERENCES public.parts(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.request_attachments
    ADD CONSTRAINT request_attachments_request_id_fkey FOREIGN KEY (request_id) REFERENCES public.requests(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.request_metadata
    ADD CONSTRAINT request_metadata_request_id_fkey FOREIGN KEY (request_id) REFERENCES public.requests(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.requests
    ADD CONSTRAINT requests_created_by_fkey FOREIGN KEY (created_by) REFERENCES public.users(id);

ALTER TABLE ONLY public.requests
    ADD CONSTRAINT requests_processed_by_fkey FOREIGN KEY (processed_by) REFERENCES public.instances(id);

ALTER TABLE ONLY public.response_metadata
    ADD CONSTRAINT response_metadata_response_id_fkey FOREIGN KEY (response_id) REFERENCES public.responses(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.responses
    ADD CONSTRAINT responses_request_id_fkey FOREIGN KEY (request_id) REFERENCES public.requests(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.role_permissions
    ADD CONSTRAINT role_permissions_role_id_fkey FOREIGN KEY (role_id) REFERENCES public.roles(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.user_departments
    ADD CONSTRAINT user_departments_dept_id_fkey FOREIGN KEY (dept_id) REFERENCES public.departments(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.user_departments
    ADD CONSTRAINT user_departments_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.user_roles
    ADD CONSTRAINT user_roles_assigned_by_fkey FOREIGN KEY (assigned_by) REFERENCES public.users(id);

ALTER TABLE ONLY public.user_roles
    ADD CONSTRAINT user_roles_role_id_fkey FOREIGN KEY (role_id) REFERENCES public.roles(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.user_roles
    ADD CONSTRAINT user_roles_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;
