-- Targets an operator paused with `cloudwatcher pause TARGET` (until `cloudwatcher resume`).
-- Kept apart from target_states: a pause is a person's decision and outlives whatever the
-- uploads report (failing, full, parked), which keeps changing underneath it. Every daemon on
-- the database reads it in its claim statement, so a pause holds across restarts and daemons;
-- files are still recorded (as pending rows) while a target is paused.
CREATE TABLE target_pauses (
    target      varchar(63) PRIMARY KEY,
    paused_at   timestamptz NOT NULL DEFAULT now(),
    paused_by   text NOT NULL
);
