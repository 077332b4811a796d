SET LOCAL ROLE training_owner;

CREATE TABLE training.reviews_tracking (
    application_name text PRIMARY KEY,
    notification_id bigint
);
GRANT SELECT, INSERT, UPDATE ON training.reviews_tracking TO training_app;

-- Each tenant's performance reviews, for HR's list by cycle and by person. The review's
-- content and free text stay in its events and beside them (review_texts).
CREATE TABLE training.reviews (
    review_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    member_id uuid NOT NULL,
    external_id text NOT NULL,
    cycle text NOT NULL,
    status text NOT NULL CHECK (status IN ('draft', 'finalised')),
    overall_rating integer NOT NULL,
    amendments integer NOT NULL DEFAULT 0,
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX reviews_by_cycle ON training.reviews (tenant_id, cycle DESC, member_id, review_id);
CREATE INDEX reviews_by_member ON training.reviews (tenant_id, member_id, cycle DESC, review_id);

ALTER TABLE training.reviews ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.reviews FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON training.reviews
    USING (tenant_id = training.current_tenant())
    WITH CHECK (tenant_id = training.current_tenant());
GRANT SELECT, INSERT, UPDATE ON training.reviews TO training_app;
