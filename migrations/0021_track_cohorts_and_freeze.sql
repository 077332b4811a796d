-- A training track says whether it is frozen (its member is deactivated: no re-plans until
-- reactivated) and which cohorts it follows (their pinned curriculum versions are preferred).

SET LOCAL ROLE training_owner;

ALTER TABLE training.tracks ADD COLUMN frozen_since timestamptz;

-- Kept by track id (derived from the tenant and the member): the track's cohort events do
-- not name the member.
CREATE TABLE training.track_cohorts (
    track_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    cohort_id uuid NOT NULL,
    curriculum_id uuid NOT NULL,
    curriculum_version integer NOT NULL,
    joined_at timestamptz NOT NULL,
    PRIMARY KEY (track_id, cohort_id)
);

ALTER TABLE training.track_cohorts ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.track_cohorts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON training.track_cohorts
    USING (tenant_id = training.current_tenant())
    WITH CHECK (tenant_id = training.current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON training.track_cohorts TO training_app;
