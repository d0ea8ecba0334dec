-- name: claim_period
INSERT INTO cluster_job_runs AS runs (name, last_run_at, instance_id) VALUES ($1, now(), $2)
ON CONFLICT (name) DO UPDATE SET last_run_at = now(), instance_id = $2, runs = runs.runs + 1
    WHERE runs.last_run_at <= now() - make_interval(secs => $3)
RETURNING name;
