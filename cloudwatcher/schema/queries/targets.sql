-- name: target_states
SELECT target,
       CASE WHEN state = 'parked' AND until <= now() THEN 'ok' ELSE state END AS state,
       reason, until, since
FROM target_states;

-- name: ensure_target_state
INSERT INTO target_states (target, state) VALUES ($1, 'ok') ON CONFLICT DO NOTHING;

-- name: target_state_for_update
SELECT state, reason, until FROM target_states WHERE target = $1 FOR UPDATE;

-- name: set_target_state
INSERT INTO target_states (target, state, reason, until)
VALUES ($1, $2, $3, $4)
ON CONFLICT (target) DO UPDATE
    SET state = EXCLUDED.state,
        reason = EXCLUDED.reason,
        until = EXCLUDED.until,
        since = CASE WHEN target_states.state = EXCLUDED.state THEN target_states.since ELSE now() END,
        updated_at = now();

-- name: resume_full_targets
-- `cloudwatcher retry` resumes a full target: 'ok' with a reason means "resumed, not yet
-- confirmed"; its next successful upload clears the reason and announces the recovery.
UPDATE target_states
SET state = 'ok', reason = 'resumed by retry after: ' || coalesce(reason, 'storage quota exceeded'),
    until = NULL, since = now(), updated_at = now()
WHERE state = 'full' AND ($1::text[] IS NULL OR target = ANY($1::text[]));

-- name: pause_target
INSERT INTO target_pauses (target, paused_by) VALUES ($1, $2)
ON CONFLICT (target) DO NOTHING
RETURNING paused_at;

-- name: resume_target
DELETE FROM target_pauses WHERE target = $1 RETURNING paused_at;

-- name: target_pauses
SELECT target, paused_at, paused_by FROM target_pauses;

-- name: target_paused
SELECT EXISTS (SELECT 1 FROM target_pauses WHERE target = $1);
