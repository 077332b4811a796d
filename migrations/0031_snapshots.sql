-- Snapshots of aggregates whose history grows without end (ADR 0043), in the shape
-- eventsourcing 9.5's aggregate recorder expects for the application's "snapshots" purpose.
--
-- Derived from the events, which stay: any row may be deleted at any time, and loads then
-- replay more events. Snapshots hold an aggregate's attributes, never personal data (names
-- and emails live beside the events, ADR 0006), so erasure has nothing to do here. Not a
-- read model (no tenant_id column): no row-level security, and only the service's roles
-- read or write it.
SET LOCAL ROLE training_owner;

CREATE TABLE training.training_snapshots (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    PRIMARY KEY (originator_id, originator_version)
);

GRANT SELECT, INSERT, DELETE ON training.training_snapshots TO training_app;
