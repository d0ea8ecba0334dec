-- name: register_instance
INSERT INTO instances (host, pid, version, watch_root) VALUES ($1, $2, $3, $4) RETURNING id;

-- name: heartbeat
UPDATE instances SET last_heartbeat = now() WHERE id = $1;

-- name: stop_instance
UPDATE instances SET stopped_at = now(), last_heartbeat = now() WHERE id = $1;
