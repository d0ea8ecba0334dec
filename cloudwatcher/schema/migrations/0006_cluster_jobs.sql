-- Cluster-wide scheduled jobs run on one instance per period: the instance that takes a job's
-- advisory lock also checks here that no instance ran it less than a period ago.
CREATE TABLE cluster_job_runs (
    name         text PRIMARY KEY,
    last_run_at  timestamptz NOT NULL,
    instance_id  uuid REFERENCES instances (id) ON DELETE SET NULL,
    runs         bigint NOT NULL DEFAULT 1
);
