-- name: own_response
-- The daemon's own response names the id the device sent (coalesce(device_request_id, id)).
SELECT s.id, s.status FROM responses s JOIN requests r ON r.id = s.request_id
WHERE r.device_id = $3 AND coalesce(r.device_request_id, r.id) = $1 AND s.content = $2::jsonb;

-- name: request_for_answer
SELECT r.id, r.device_id, r.status, r.created_by, s.id AS response_id
FROM requests r LEFT JOIN responses s ON s.request_id = r.id
WHERE r.id = $1
FOR UPDATE OF r;

-- name: insert_external_response
INSERT INTO responses (request_id, status, content, ai_processed, local_path)
VALUES ($1, 'ready', $2::jsonb, $3, $4)
RETURNING id;

-- name: insert_decision
INSERT INTO agent_decisions
    (request_id, agent_name, decision_type, decision_value, reasoning, confidence_score, processor_account)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7);
