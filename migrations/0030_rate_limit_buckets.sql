-- Rate limits shared by every process on this database (ADR 0035).
--
-- One token bucket per kind of limit ('principal', 'anonymous', 'token') and caller. Each
-- process draws tokens from it in blocks, with one INSERT ... ON CONFLICT DO UPDATE that
-- refills the bucket by the time elapsed and takes up to a block, and spends them locally.
--
-- The caller is never stored: `key` is an HMAC-SHA256 of the kind and the caller (a client,
-- a person, a client address) under a key derived from TRAINING_SECRET_KEY, so the table
-- holds no personal data. Not tenant data either (no tenant_id): no row-level security, and
-- only the service's role reads or writes it.
--
-- UNLOGGED: a crash empties the table, which refills every bucket: harmless, and no WAL is
-- written for the busiest small table of the service. A row idle for a whole window is a
-- full bucket, exactly like a missing one; the service deletes such rows as it goes.
SET LOCAL ROLE training_owner;

CREATE UNLOGGED TABLE training.rate_limit_buckets (
    bucket text NOT NULL,
    key bytea NOT NULL,
    -- What is left after the last draw, fractional: the bucket refills continuously.
    tokens double precision NOT NULL,
    -- What the last draw took (0 when the bucket was empty), so that one statement answers it.
    granted integer NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (bucket, key)
-- Room on each page, so that a draw's update stays on its page (no index covers what changes).
) WITH (fillfactor = 70);

GRANT SELECT, INSERT, UPDATE, DELETE ON training.rate_limit_buckets TO training_app;
