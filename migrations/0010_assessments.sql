SET LOCAL ROLE training_owner;

-- The assessments read model (projection "assessments"): adaptive attempts and their results
-- (the original scoring and every rescoring under newer item parameters), the responses the
-- calibration reads, reviewers' evidence and the published item-parameter versions. Every
-- row carries its tenant; row-level security scopes reads and writes to the tenant of the
-- transaction. Answer keys are never here: a response records only whether it was right.
CREATE TABLE training.assessments_tracking (
    application_name text PRIMARY KEY,
    notification_id bigint
);
GRANT SELECT, INSERT, UPDATE ON training.assessments_tracking TO training_app;

-- theta, se, level: the original result, set when the attempt completes.
CREATE TABLE training.assessment_attempts (
    attempt_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    member_id uuid NOT NULL,
    skill text NOT NULL,
    status text NOT NULL
        CHECK (status IN ('in_progress', 'completed', 'abandoned', 'timed_out')),
    parameter_version integer NOT NULL,
    answered integer NOT NULL DEFAULT 0,
    theta double precision,
    se double precision,
    level smallint CHECK (level BETWEEN 1 AND 7),
    started_at timestamptz NOT NULL,
    completed_at timestamptz,
    ended_at timestamptz
);
CREATE INDEX assessment_attempts_by_member
    ON training.assessment_attempts (tenant_id, member_id, started_at, attempt_id);
CREATE INDEX assessment_attempts_completed
    ON training.assessment_attempts (tenant_id, skill, member_id, completed_at)
    WHERE status = 'completed';

-- One row per scoring of an attempt: the original (original = true, under the attempt's
-- parameter version) and one per rescoring. The first result is never replaced.
CREATE TABLE training.assessment_results (
    attempt_id uuid NOT NULL,
    parameter_version integer NOT NULL,
    tenant_id uuid NOT NULL,
    member_id uuid NOT NULL,
    skill text NOT NULL,
    theta double precision NOT NULL,
    se double precision NOT NULL,
    level smallint NOT NULL CHECK (level BETWEEN 1 AND 7),
    items integer NOT NULL,
    original boolean NOT NULL,
    scored_at timestamptz NOT NULL,
    PRIMARY KEY (attempt_id, parameter_version)
);
CREATE INDEX assessment_results_by_member
    ON training.assessment_results (tenant_id, member_id, skill, scored_at);
CREATE INDEX assessment_results_by_skill
    ON training.assessment_results (tenant_id, skill, member_id);

-- Item responses, for the calibration only: never shown to engineers, managers or HR.
CREATE TABLE training.assessment_responses (
    attempt_id uuid NOT NULL,
    position integer NOT NULL,
    tenant_id uuid NOT NULL,
    member_id uuid NOT NULL,
    skill text NOT NULL,
    item_id text NOT NULL,
    correct boolean NOT NULL,
    late boolean NOT NULL,
    answered_at timestamptz NOT NULL,
    PRIMARY KEY (attempt_id, position)
);
CREATE INDEX assessment_responses_by_item ON training.assessment_responses (tenant_id, item_id);

-- Which member a SkillEvidence stream belongs to (its events after the first do not say).
CREATE TABLE training.skill_evidence_streams (
    stream_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    member_id uuid NOT NULL
);

CREATE TABLE training.skill_evidence (
    evidence_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    member_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('code_review', 'project_review')),
    skill text NOT NULL,
    observed_level smallint NOT NULL CHECK (observed_level BETWEEN 1 AND 7),
    link text,
    note text NOT NULL,
    recorded_at timestamptz NOT NULL,
    recorded_by text NOT NULL
);
CREATE INDEX skill_evidence_by_member
    ON training.skill_evidence (tenant_id, member_id, skill, recorded_at);

CREATE TABLE training.item_parameter_versions (
    tenant_id uuid NOT NULL,
    version integer NOT NULL,
    published_at timestamptz NOT NULL,
    responses_used integer NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['assessment_attempts', 'assessment_results',
                                'assessment_responses', 'skill_evidence_streams',
                                'skill_evidence', 'item_parameter_versions'] LOOP
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
