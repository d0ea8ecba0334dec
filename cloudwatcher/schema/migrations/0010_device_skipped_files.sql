-- Files a device left that the daemon skipped (a name that is not UTF-8, a symbolic link in the
-- path, a FIFO or other non-regular file, a path beyond the system's limits, an unreadable entry).
-- `cloudwatcher status` works whether or not the daemon runs, so the count per device lives here;
-- each daemon adds what it skipped every few seconds in one statement, never per file.
CREATE TABLE device_skipped_files (
    device_id       text PRIMARY KEY,
    skipped         bigint NOT NULL DEFAULT 0 CHECK (skipped >= 0),
    last_skipped_at timestamptz NOT NULL DEFAULT now()
);
