-- Claim fencing. Every claim of a ledger row (a worker taking a pending row, or a row born
-- claimed as it is recorded) gets a fresh random token beside claimed_by; every write-back of
-- that claim (synced, failed, released, lease renewed, upload session saved) names both in its
-- WHERE clause. A worker whose lease ran out while it stalled, and whose row another instance
-- has since claimed, therefore changes nothing: its token is no longer the row's.
--
-- No index: write-backs find their rows by id; the token is only compared.
ALTER TABLE cloud_file_refs ADD COLUMN claim_token uuid;
