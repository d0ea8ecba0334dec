-- name: device_may_act_for
-- One row when the device is listed: whether the email is one of its users.
SELECT coalesce(bool_or(lower(u.email) = lower($2)), false) AS bound
FROM devices d
LEFT JOIN device_users du ON du.device_id = d.device_id
LEFT JOIN users u ON u.id = du.user_id
WHERE d.device_id = $1
GROUP BY d.id;

-- name: close_stale_for_seen
-- Sessions whose silence already exceeds the idle limit at the time of the new file are
-- closed first, so the new file opens a fresh session even if the closing job has not run yet.
UPDATE device_connections dc
SET disconnected_at = dc.last_seen_at,
    session_duration_seconds = greatest(0, extract(epoch FROM dc.last_seen_at - dc.connected_at))::integer
FROM unnest($1::text[], $2::timestamptz[]) AS s(device_id, seen_at)
WHERE dc.device_id = s.device_id AND dc.disconnected_at IS NULL
  AND s.seen_at - dc.last_seen_at > make_interval(secs => $3);

-- name: touch_sessions
-- One statement per batch: open a session where none is open, else move last_seen_at forward.
-- The user of an opened session is the user of the device's latest request, when known.
INSERT INTO device_connections (device_id, user_id, connection_type, connected_at, last_seen_at)
SELECT s.device_id,
       (SELECT r.created_by FROM requests r
        WHERE r.device_id = s.device_id AND r.created_by IS NOT NULL
        ORDER BY r.created_at DESC LIMIT 1),
       'file-drop', s.seen_at, s.seen_at
FROM unnest($1::text[], $2::timestamptz[]) AS s(device_id, seen_at)
ORDER BY s.device_id
ON CONFLICT (device_id) WHERE disconnected_at IS NULL
DO UPDATE SET last_seen_at = greatest(device_connections.last_seen_at, EXCLUDED.last_seen_at);

-- name: close_idle
UPDATE device_connections
SET disconnected_at = last_seen_at,
    session_duration_seconds = greatest(0, extract(epoch FROM last_seen_at - connected_at))::integer
WHERE disconnected_at IS NULL AND last_seen_at < now() - make_interval(secs => $1);
