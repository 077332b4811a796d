SET LOCAL ROLE training_owner;

-- The cohorts read model (projection "cohorts"): cohorts, who is in them, their live
-- sessions with the attendance and feedback imported afterwards, module progress, and each
-- tenant's training policy. Every row carries its tenant; row-level security scopes reads
-- and writes to the tenant of the transaction.
CREATE TABLE training.cohorts_tracking (
    application_name text PRIMARY KEY,
    notification_id bigint
);
GRANT SELECT, INSERT, UPDATE ON training.cohorts_tracking TO training_app;

CREATE TABLE training.cohorts (
    cohort_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    curriculum_id uuid NOT NULL,
    curriculum_version integer NOT NULL,
    module_count integer NOT NULL,
    starts_on date NOT NULL,
    ends_on date NOT NULL,
    timezone text NOT NULL,
    capacity integer NOT NULL,
    status text NOT NULL CHECK (status IN ('planned', 'running', 'completed', 'cancelled')),
    facilitators uuid[] NOT NULL,
    cancel_reason text,
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX cohorts_by_tenant ON training.cohorts (tenant_id, created_at, cohort_id);
CREATE INDEX cohorts_by_curriculum ON training.cohorts (tenant_id, curriculum_id);

-- position: the order people arrived in the cohort (the waitlist is the waitlisted rows in
-- this order). promoted_version: the cohort version whose Promoted event seated the person.
CREATE TABLE training.cohort_enrolments (
    cohort_id uuid NOT NULL,
    member_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    status text NOT NULL CHECK (status IN ('enrolled', 'waitlisted', 'withdrawn')),
    position bigint NOT NULL,
    enrolled_at timestamptz,
    waitlisted_at timestamptz,
    withdrawn_at timestamptz,
    withdrawn_reason text,
    promoted_version integer,
    modules_completed integer NOT NULL DEFAULT 0,
    PRIMARY KEY (cohort_id, member_id)
);
CREATE INDEX cohort_enrolments_by_status ON training.cohort_enrolments (cohort_id, status, position);
CREATE INDEX cohort_enrolments_by_member ON training.cohort_enrolments (tenant_id, member_id);

CREATE TABLE training.cohort_sessions (
    session_id uuid PRIMARY KEY,
    cohort_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    title text NOT NULL,
    starts_at timestamptz NOT NULL,
    duration_minutes integer NOT NULL,
    join_url text NOT NULL,
    comments integer NOT NULL DEFAULT 0,
    questions integer NOT NULL DEFAULT 0,
    reactions integer NOT NULL DEFAULT 0,
    attendance_recorded boolean NOT NULL DEFAULT false
);
CREATE INDEX cohort_sessions_by_cohort ON training.cohort_sessions (cohort_id, starts_at, session_id);

CREATE TABLE training.session_attendance (
    session_id uuid NOT NULL,
    member_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    joined_at timestamptz NOT NULL,
    left_at timestamptz NOT NULL,
    PRIMARY KEY (session_id, member_id)
);

-- A second feedback of the same person for the same session replaces the first.
CREATE TABLE training.session_feedback (
    session_id uuid NOT NULL,
    member_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    content smallint NOT NULL CHECK (content BETWEEN 1 AND 5),
    delivery smallint NOT NULL CHECK (delivery BETWEEN 1 AND 5),
    interaction smallint NOT NULL CHECK (interaction BETWEEN 1 AND 5),
    given_at timestamptz NOT NULL,
    PRIMARY KEY (session_id, member_id)
);

CREATE TABLE training.cohort_module_completions (
    cohort_id uuid NOT NULL,
    member_id uuid NOT NULL,
    module_key text NOT NULL,
    tenant_id uuid NOT NULL,
    completed_on date NOT NULL,
    PRIMARY KEY (cohort_id, member_id, module_key)
);

-- The tenant's thresholds; no row means the defaults (TrainingPolicy.adopt_defaults).
CREATE TABLE training.training_policies (
    tenant_id uuid PRIMARY KEY,
    at_risk_threshold integer NOT NULL,
    retake_cooldown_days integer NOT NULL,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL
);

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['cohorts', 'cohort_enrolments', 'cohort_sessions',
                                'session_attendance', 'session_feedback',
                                'cohort_module_completions', 'training_policies'] LOOP
        EXECUTE format('ALTER TABLE training.%I ENABLE ROW LEVEL SECURITY', name);
        EXECUTE format('ALTER TABLE training.%I FORCE ROW LEVEL SECURITY', name);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON training.%I '
            'USING (tenant_id = training.current_tenant()) '
            'WITH CHECK (tenant_id = training.current_tenant())', name);
        EXECUTE format(
            'GRANT SELECT, INSERT, UPDATE, DELETE ON training.%I TO training_app', name);
    END LOOP;
END
$$;
