-- name: notify_event
INSERT INTO notification_events (event, target, local_path, ref_id, reason) VALUES ($1, $2, $3, $4, $5);

-- name: expire_notifications
UPDATE notification_events SET status = 'expired'
WHERE status = 'pending' AND created_at < now() - make_interval(secs => $1);

-- name: due_notifications
SELECT id, event, target, local_path, ref_id, reason, created_at, attempts
FROM notification_events
WHERE status = 'pending' AND next_attempt_at <= now()
ORDER BY created_at
LIMIT $1
FOR UPDATE SKIP LOCKED;

-- name: notification_delivered
UPDATE notification_events
SET status = 'delivered', delivered_at = now(), attempts = attempts + 1, last_error = NULL
WHERE id = ANY($1::uuid[]);

-- name: notification_failed
UPDATE notification_events AS e
SET attempts = e.attempts + 1, last_error = v.error,
    next_attempt_at = now() + make_interval(secs => v.delay)
FROM unnest($1::uuid[], $2::text[], $3::float8[]) AS v(id, error, delay)
WHERE e.id = v.id;

-- name: prune_notifications
DELETE FROM notification_events
WHERE status <> 'pending' AND created_at < now() - make_interval(days => $1);
