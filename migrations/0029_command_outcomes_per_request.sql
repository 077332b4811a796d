SET LOCAL ROLE training_owner;

-- A command's recorded outcome belongs to one request: the Idempotency-Key and the request's
-- fingerprint (method, path, query and body). A key whose claim was freed (the request failed
-- after a command committed) or whose response an erasure deleted may come back with another
-- request; that request must run its own commands, not be answered with the first one's
-- outcomes, while a retry of the first request is still answered with them.
ALTER TABLE training.command_outcomes ADD COLUMN request_hash text;

-- The owner reads every tenant's rows for this transaction only.
ALTER TABLE training.command_outcomes NO FORCE ROW LEVEL SECURITY;
ALTER TABLE training.idempotency_keys NO FORCE ROW LEVEL SECURITY;

UPDATE training.command_outcomes o SET request_hash = k.request_hash
FROM training.idempotency_keys k WHERE k.principal = o.principal AND k.key = o.key;
-- Outcomes whose request record is gone can no longer be told apart from another request's:
-- a retry of theirs runs its commands again, as it would once the record expired.
DELETE FROM training.command_outcomes WHERE request_hash IS NULL;

ALTER TABLE training.command_outcomes FORCE ROW LEVEL SECURITY;
ALTER TABLE training.idempotency_keys FORCE ROW LEVEL SECURITY;

ALTER TABLE training.command_outcomes ALTER COLUMN request_hash SET NOT NULL;
ALTER TABLE training.command_outcomes DROP CONSTRAINT command_outcomes_pkey;
ALTER TABLE training.command_outcomes ADD PRIMARY KEY (principal, key, request_hash, seq);

-- The purge names an expired outcome by its whole key.
GRANT SELECT (request_hash) ON training.command_outcomes TO training_worker;
