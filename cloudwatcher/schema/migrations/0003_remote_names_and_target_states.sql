-- Remote names, per-target states and the webhook outbox (docs/ledger-and-requests.md and docs/providers.md):
-- remote names decided once per (target, local path), per-target states (parked, full,
-- failing) and a notification outbox.


-- ---------------------------------------------------------------- remote names
-- Which remote path (relative to the target root, before the provider's own renaming rule) a
-- local path is uploaded to. Decided once, before its first upload, and kept: every version of
-- the file goes to the same remote name, across restarts and daemons. collision_key is the
-- provider's name for it (case-folded on case-insensitive providers): unique per target, so
-- two local names that would land on one remote file never share it; the later one takes a
-- " (2)"-style suffix.
CREATE TABLE remote_names (
    target         varchar(63) NOT NULL,
    local_path     text NOT NULL,
    remote_path    text NOT NULL,
    collision_key  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, local_path),
    UNIQUE (target, collision_key)
);
-- Case variants of one path, recorded earlier, are named first (see daemon/naming.py).
CREATE INDEX idx_cfr_target_lower_path ON cloud_file_refs (target, lower(local_path));


-- ---------------------------------------------------------------- target states
-- One row per target that is, or was, not simply working. 'parked': a daily upload cap; no
-- row of the target is claimed until "until". 'full': the storage quota is exhausted (rows
-- give up at once; `cloudwatcher retry` clears it). 'failing': uploads keep failing. A target
-- without a row, or whose parking has expired, is 'ok'.
CREATE TABLE target_states (
    target      varchar(63) PRIMARY KEY,
    state       varchar(20) NOT NULL CHECK (state IN ('ok', 'parked', 'full', 'failing')),
    reason      text,
    until       timestamptz,
    since       timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (state <> 'parked' OR until IS NOT NULL)
);


-- ---------------------------------------------------------------- notification outbox
-- Events written in the same transaction as the change they report; a delivery job POSTs
-- them to notify.webhook_url with backoff for up to a day, so uploads never wait on it.
CREATE TABLE notification_events (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event            varchar(40) NOT NULL
                     CHECK (event IN ('file.gave_up', 'target.failing', 'target.recovered', 'target.full')),
    target           varchar(63) NOT NULL,
    local_path       text,
    ref_id           uuid,
    reason           text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    status           varchar(20) NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'expired')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    delivered_at     timestamptz
);
CREATE INDEX idx_notification_events_due ON notification_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX idx_notification_events_created ON notification_events (created_at);
