-- Attachments a request names, kept so that an attachment recorded after its envelope (a large
-- photo that settles a second later, or a later version of it) is linked to the request when it
-- is recorded, not only when the envelope is ingested. One row per candidate ledger path (an
-- attachment is looked for relative to requests/ and to the envelope's own folder).
CREATE TABLE request_attachments (
    request_id  uuid NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    local_path  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, local_path)
);
CREATE INDEX idx_request_attachments_path ON request_attachments (local_path, created_at DESC);
