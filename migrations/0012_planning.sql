SET LOCAL ROLE training_owner;

-- The planning process (an event-sourced projection of the training application) keeps its
-- own events table, in the same shape, append-only like the first.
CREATE TABLE training.planning_events (
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
CREATE UNIQUE INDEX planning_events_notification_id_idx
    ON training.planning_events (notification_id);
CREATE INDEX planning_events_topic_notification_id
    ON training.planning_events (topic, notification_id);
CREATE TRIGGER planning_events_immutable
    BEFORE UPDATE OR DELETE OR TRUNCATE ON training.planning_events
    FOR EACH STATEMENT EXECUTE FUNCTION training.refuse_event_change();
GRANT SELECT, INSERT, UPDATE ON training.planning_events TO training_app;
GRANT USAGE ON SEQUENCE training.planning_events_notification_id_seq TO training_app;

-- Where the planning process has got to in the training application's events; written in
-- the same transaction as the tracks' new events.
CREATE TABLE training.planning_tracking (
    application_name text PRIMARY KEY,
    notification_id bigint
);
GRANT SELECT, INSERT, UPDATE ON training.planning_tracking TO training_app;

-- The tracks read model, built from the planning events.
CREATE TABLE training.tracks_tracking (
    application_name text PRIMARY KEY,
    notification_id bigint
);
GRANT SELECT, INSERT, UPDATE ON training.tracks_tracking TO training_app;

CREATE TABLE training.tracks (
    member_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    plan_version integer NOT NULL,
    trigger text NOT NULL,
    starts_on date NOT NULL,
    minutes_used integer NOT NULL,
    budget_minutes integer NOT NULL,
    remaining_gaps jsonb NOT NULL,
    deferred jsonb NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE training.track_modules (
    member_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    position integer NOT NULL,
    curriculum_id uuid NOT NULL,
    curriculum_version integer NOT NULL,
    key text NOT NULL,
    title text NOT NULL,
    minutes integer NOT NULL,
    due_on date NOT NULL,
    reason text NOT NULL,
    state text NOT NULL DEFAULT 'planned',
    PRIMARY KEY (member_id, position)
);

CREATE TABLE training.track_plans (
    member_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    plan_version integer NOT NULL,
    trigger text NOT NULL,
    added jsonb NOT NULL,
    removed jsonb NOT NULL,
    reordered jsonb NOT NULL,
    modules jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (member_id, plan_version)
);

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['tracks', 'track_modules', 'track_plans'] LOOP
        EXECUTE format('ALTER TABLE training.%I ENABLE ROW LEVEL SECURITY', name);
        EXECUTE format('ALTER TABLE training.%I FORCE ROW LEVEL SECURITY', name);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON training.%I '
            'USING (tenant_id = training.current_tenant()) '
            'WITH CHECK (tenant_id = training.current_tenant())', name);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON training.%I TO training_app', name);
    END LOOP;
END
$$;
