-- The event store of TrainingApplication, in the exact shape eventsourcing 9.5 expects.
-- Running processes use CREATE_TABLE=n, so this file is the only place it is created.
SET LOCAL ROLE training_owner;

CREATE TYPE training.stored_event_uuid AS (
    originator_id uuid,
    originator_version bigint,
    topic text,
    state bytea
);

CREATE TABLE training.training_events (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    notification_id bigserial NOT NULL,
    PRIMARY KEY (originator_id, originator_version)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);

CREATE UNIQUE INDEX training_events_notification_id_idx
    ON training.training_events (notification_id);

-- History is never rewritten. The library takes LOCK TABLE ... IN EXCLUSIVE MODE on every
-- append (so notification ids commit in order), and PostgreSQL only allows that lock mode
-- to roles with UPDATE, DELETE or TRUNCATE. training_app gets UPDATE for the lock alone; this
-- trigger makes every UPDATE and DELETE fail.
CREATE FUNCTION training.refuse_event_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'stored events are immutable (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Statement level: the refusal holds even when the statement matches no row.
CREATE TRIGGER training_events_immutable
    BEFORE UPDATE OR DELETE OR TRUNCATE ON training.training_events
    FOR EACH STATEMENT EXECUTE FUNCTION training.refuse_event_change();

GRANT SELECT, INSERT, UPDATE ON training.training_events TO training_app;
GRANT USAGE ON SEQUENCE training.training_events_notification_id_seq TO training_app;
