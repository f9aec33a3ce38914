-- The AI pipeline: a job queue per image and stage, append-only suggestions, red-flag configuration.
-- Jobs are created when work items are created (trigger in R__ai.sql), so the annotator never waits for a model:
-- next_item only reads the suggestions that are already there.

CREATE SCHEMA ai;  -- functions for the AI worker process only: not HTTP endpoints, not in /schema

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'dl_ai_worker') THEN
        CREATE ROLE dl_ai_worker NOLOGIN;
    END IF;
END
$$;
GRANT dl_ai_worker TO dl_authenticator;
GRANT USAGE ON SCHEMA ai TO dl_ai_worker;
COMMENT ON SCHEMA ai IS 'The AI worker''s surface: take jobs, record results and failures (role dl_ai_worker).';

-- crop: crop box + standardised image; classify: probabilities over taxonomy codes; recommend: next steps.
-- Each stage waits for the one before it to settle (done, failed or skipped), and uses its result when there is one.
CREATE TYPE core.ai_stage AS ENUM ('crop', 'classify', 'recommend');
CREATE TYPE core.ai_job_status AS ENUM ('queued', 'running', 'done', 'failed', 'skipped');

CREATE TABLE core.ai_job (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    image_id         bigint NOT NULL REFERENCES core.image (id),
    stage            core.ai_stage NOT NULL,
    status           core.ai_job_status NOT NULL DEFAULT 'queued',
    cascade          boolean NOT NULL DEFAULT false,  -- a rerun: the next stages run again even if they have results
    attempts         smallint NOT NULL DEFAULT 0,
    max_attempts     smallint NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 100),
    run_after        timestamptz NOT NULL DEFAULT now(),
    worker           text,
    lease_expires_at timestamptz,
    last_error       text,
    requested_by     bigint REFERENCES auth."user" (id),  -- NULL: created with a work item
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CONSTRAINT running_has_lease CHECK ((status = 'running') = (lease_expires_at IS NOT NULL)),
    CONSTRAINT settled_has_finish CHECK ((status IN ('done', 'failed', 'skipped')) = (finished_at IS NOT NULL))
);
-- one open job per image and stage; a rerun joins the open one
CREATE UNIQUE INDEX ai_job_open_idx ON core.ai_job (image_id, stage) WHERE status IN ('queued', 'running');
CREATE INDEX ai_job_ready_idx ON core.ai_job (stage, run_after, id) WHERE status = 'queued';
CREATE INDEX ai_job_lease_idx ON core.ai_job (lease_expires_at) WHERE status = 'running';
CREATE INDEX ai_job_image_idx ON core.ai_job (image_id, id);
ALTER TABLE core.ai_job SET (autovacuum_vacuum_scale_factor = 0.02, fillfactor = 80);
COMMENT ON TABLE core.ai_job IS 'One AI stage to run for one image: queued, taken by a worker under a lease, retried '
                                'with exponential backoff, settled as done, failed or skipped.';

CREATE TABLE core.ai_attempt (
    job_id      bigint NOT NULL REFERENCES core.ai_job (id),
    attempt     smallint NOT NULL,
    worker      text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    outcome     text CHECK (outcome IN ('done', 'error', 'returned', 'lease_expired', 'skipped')),
    error       text,
    PRIMARY KEY (job_id, attempt)
);
COMMENT ON TABLE core.ai_attempt IS 'Each time a worker took a job: when, who, and the error text of a failed attempt.';

CREATE TABLE core.ai_suggestion (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    image_id      bigint NOT NULL REFERENCES core.image (id),
    stage         core.ai_stage NOT NULL,
    job_id        bigint REFERENCES core.ai_job (id),  -- NULL for imported labels
    model_name    text NOT NULL CHECK (length(model_name) BETWEEN 1 AND 200),
    model_version text NOT NULL CHECK (length(model_version) BETWEEN 1 AND 100),
    payload       jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    latency_ms    integer NOT NULL CHECK (latency_ms >= 0),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ai_suggestion_latest_idx ON core.ai_suggestion (image_id, stage, id DESC);
COMMENT ON TABLE core.ai_suggestion IS 'What a model said about an image at one stage (append-only; the latest per '
                                       'stage is the one shown).';

-- Red flags: a class is high-risk when it or an ancestor is marked; a classify result putting at least the project's
-- threshold on a high-risk class raises the image's open items to the project's red-flag priority.
ALTER TABLE core.taxonomy_node ADD COLUMN high_risk boolean NOT NULL DEFAULT false;
ALTER TABLE core.project
    ADD COLUMN red_flag_threshold numeric NOT NULL DEFAULT 0.5
        CHECK (red_flag_threshold > 0 AND red_flag_threshold <= 1),
    ADD COLUMN red_flag_priority integer NOT NULL DEFAULT 100 CHECK (red_flag_priority BETWEEN -1000000 AND 1000000);

ALTER TABLE core.ai_suggestion ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.ai_job ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.ai_attempt ENABLE ROW LEVEL SECURITY;
-- Suggestions follow their image (members of the project see them); jobs and attempts are for admins.
CREATE POLICY image_visible ON core.ai_suggestion FOR SELECT TO dl_annotator, dl_reviewer, dl_admin
    USING (EXISTS (SELECT 1 FROM core.image i WHERE i.id = image_id));
CREATE POLICY admins ON core.ai_job FOR SELECT TO dl_admin
    USING ((SELECT auth.has_role('admin')) AND EXISTS (SELECT 1 FROM core.image i WHERE i.id = image_id));
CREATE POLICY admins ON core.ai_attempt FOR SELECT TO dl_admin
    USING (EXISTS (SELECT 1 FROM core.ai_job j WHERE j.id = job_id));
GRANT SELECT ON core.ai_suggestion TO dl_annotator, dl_reviewer, dl_admin;
GRANT SELECT ON core.ai_job, core.ai_attempt TO dl_admin;
