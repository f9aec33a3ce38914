-- The AI job queue and the worker's calls. Jobs are created with work items, taken by workers with FOR UPDATE
-- SKIP LOCKED under a lease, retried with exponential backoff, and settled; each settled stage queues the next
-- ones. The worker (python -m app worker, role dl_ai_worker) only moves bytes and calls models; every decision is in
-- SQL. What a result must look like and what it changes: R__ai_results.sql; the admins' calls: R__ai_admin.sql.
-- (The append-only trigger of core.ai_suggestion is R__audit.sql's, beside core.refuse_change.)

-- crop is followed by classify and segment side by side (a slow or failing segment service never delays the
-- triage), classify by recommend. Replaced core.ai_next_stage (one stage) when segment came (V29).
DROP FUNCTION IF EXISTS core.ai_next_stage(core.ai_stage);
CREATE OR REPLACE FUNCTION core.ai_next_stages(p_stage core.ai_stage) RETURNS core.ai_stage[]
LANGUAGE sql IMMUTABLE SET search_path = '' AS $$
    SELECT CASE p_stage WHEN 'crop' THEN '{classify,segment}'::core.ai_stage[]
                        WHEN 'classify' THEN '{recommend}'::core.ai_stage[]
                        ELSE '{}'::core.ai_stage[] END
$$;

CREATE OR REPLACE FUNCTION core.ai_enqueue() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
-- Statement-level: one insert for a whole batch of new work items. Only images that never had a job or a
-- suggestion get one (the second slot of a double-annotated image does not queue the image again).
BEGIN
    INSERT INTO core.ai_job (image_id, stage)
    SELECT DISTINCT n.image_id, 'crop'::core.ai_stage FROM new_items n
     WHERE NOT EXISTS (SELECT 1 FROM core.ai_job j WHERE j.image_id = n.image_id)
       AND NOT EXISTS (SELECT 1 FROM core.ai_suggestion s WHERE s.image_id = n.image_id)
    ON CONFLICT DO NOTHING;
    -- new items of active-learning rules for images classified already (a second rule, a later slot)
    PERFORM core.ai_rekey(ARRAY(
        SELECT n.id FROM new_items n JOIN core.work_rule r ON r.id = n.rule_id
         WHERE r.active_learning IS NOT NULL
           AND EXISTS (SELECT 1 FROM core.ai_suggestion s WHERE s.image_id = n.image_id AND s.stage = 'classify')));
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS ai_enqueue ON core.work_item;
CREATE TRIGGER ai_enqueue AFTER INSERT ON core.work_item
    REFERENCING NEW TABLE AS new_items FOR EACH STATEMENT EXECUTE FUNCTION core.ai_enqueue();

CREATE OR REPLACE FUNCTION core.ai_notify() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    PERFORM pg_notify('dl_ai_job', '');  -- one wake-up per statement; workers poll as a fallback
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS ai_notify ON core.ai_job;
CREATE TRIGGER ai_notify AFTER INSERT ON core.ai_job FOR EACH STATEMENT EXECUTE FUNCTION core.ai_notify();

CREATE OR REPLACE FUNCTION core.ai_job_context(j core.ai_job) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
-- What a worker needs for a job: where the bytes are, and the earlier stages' results. Never the image metadata:
-- nothing that could identify a patient leaves through a model call.
DECLARE
    i core.image;
    crop core.ai_suggestion := core.ai_latest(j.image_id, 'crop');
    cls core.ai_suggestion := core.ai_latest(j.image_id, 'classify');
BEGIN
    SELECT * INTO i FROM core.image x WHERE x.id = j.image_id;
    RETURN jsonb_build_object(
        'job_id', j.id, 'image_id', j.image_id, 'project_id', i.project_id, 'stage', j.stage, 'attempt', j.attempts,
        'storage_key', i.storage_key, 'media_type', i.media_type, 'width', i.width, 'height', i.height,
        'sha256', i.sha256,
        -- a physical scale when the uploader recorded one (used for diameters in mm)
        'pixels_per_mm', CASE WHEN jsonb_typeof(i.metadata -> 'pixels_per_mm') = 'number'
                              THEN i.metadata -> 'pixels_per_mm' END,
        'standardised', CASE WHEN crop.id IS NOT NULL THEN crop.payload -> 'standardised' END,
        'classify', CASE WHEN j.stage = 'recommend' AND cls.id IS NOT NULL
                         THEN jsonb_build_object('classes', cls.payload -> 'classes',
                                                 'features', cls.payload -> 'features') END);
END
$$;

CREATE OR REPLACE FUNCTION core.ai_held_job(p_job bigint, p_worker text) RETURNS core.ai_job
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- The job, locked, if this worker still holds it; a worker whose lease lapsed and was taken over gets 409.
DECLARE
    j core.ai_job;
BEGIN
    SELECT * INTO j FROM core.ai_job x WHERE x.id = p_job FOR UPDATE;
    IF j.id IS NULL THEN
        RAISE EXCEPTION 'ai job % not found', p_job USING ERRCODE = 'P0002';
    END IF;
    IF j.status <> 'running' OR j.worker IS DISTINCT FROM p_worker THEN
        RAISE EXCEPTION 'ai job % is not held by worker %', p_job, p_worker USING ERRCODE = 'PT409';
    END IF;
    RETURN j;
END
$$;

CREATE OR REPLACE FUNCTION core.ai_settle(j core.ai_job, p_status core.ai_job_status, p_outcome text,
                                          p_error text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- Close the job and its attempt, then queue the next stages: always after a rerun (cascade), otherwise only when
-- that stage has no result yet. recommend needs a classification; crop is optional for classify and segment.
DECLARE
    nxt core.ai_stage;
BEGIN
    UPDATE core.ai_job x SET status = p_status, lease_expires_at = NULL, finished_at = now(),
                             last_error = coalesce(p_error, x.last_error)
     WHERE x.id = j.id;
    UPDATE core.ai_attempt a SET finished_at = now(), outcome = p_outcome, error = p_error
     WHERE a.job_id = j.id AND a.finished_at IS NULL;
    FOREACH nxt IN ARRAY core.ai_next_stages(j.stage) LOOP
        CONTINUE WHEN nxt = 'recommend' AND (core.ai_latest(j.image_id, 'classify')).id IS NULL;
        IF j.cascade OR NOT EXISTS (SELECT 1 FROM core.ai_suggestion s WHERE s.image_id = j.image_id
                                                                         AND s.stage = nxt)
        THEN
            INSERT INTO core.ai_job AS x (image_id, stage, cascade, requested_by)
            VALUES (j.image_id, nxt, j.cascade, j.requested_by)
            ON CONFLICT (image_id, stage) WHERE status IN ('queued', 'running')
            DO UPDATE SET cascade = x.cascade OR EXCLUDED.cascade;
        END IF;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- The worker's functions (schema ai, role dl_ai_worker)

CREATE OR REPLACE FUNCTION ai.claim_jobs(worker text, stages text[], max_jobs integer, lease_seconds integer,
                                         max_attempts integer DEFAULT 5)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- First the jobs of workers that died (lease lapsed): back to the queue, or failed when out of attempts.
-- Then up to max_jobs ready jobs of the given stages, oldest first, each locked with SKIP LOCKED so that two
-- workers never take the same job.
DECLARE
    lapsed core.ai_job;
    taken jsonb := '[]';
    j core.ai_job;
BEGIN
    IF worker IS NULL OR length(worker) NOT BETWEEN 1 AND 200 THEN
        PERFORM core.invalid('worker', 'name the worker (1 to 200 characters)');
    END IF;
    IF max_jobs IS NULL OR max_jobs NOT BETWEEN 1 AND 1000 THEN
        PERFORM core.invalid('max_jobs', 'must be between 1 and 1000');
    END IF;
    IF lease_seconds IS NULL OR lease_seconds NOT BETWEEN 1 AND 86400 THEN
        PERFORM core.invalid('lease_seconds', 'must be between 1 and 86400');
    END IF;
    IF max_attempts IS NULL OR max_attempts NOT BETWEEN 1 AND 100 THEN
        PERFORM core.invalid('max_attempts', 'must be between 1 and 100');
    END IF;
    FOR lapsed IN SELECT * FROM core.ai_job x WHERE x.status = 'running' AND x.lease_expires_at < now()
                   ORDER BY x.id LIMIT 100 FOR UPDATE SKIP LOCKED LOOP
        IF lapsed.attempts >= lapsed.max_attempts THEN
            PERFORM core.ai_settle(lapsed, 'failed', 'lease_expired',
                                   format('lease of worker %s expired (attempt %s of %s)', lapsed.worker,
                                          lapsed.attempts, lapsed.max_attempts));
        ELSE
            UPDATE core.ai_job x SET status = 'queued', lease_expires_at = NULL, run_after = now(),
                                     last_error = format('lease of worker %s expired', lapsed.worker)
             WHERE x.id = lapsed.id;
            UPDATE core.ai_attempt a SET finished_at = now(), outcome = 'lease_expired',
                                         error = format('lease of worker %s expired', lapsed.worker)
             WHERE a.job_id = lapsed.id AND a.finished_at IS NULL;
        END IF;
    END LOOP;

    FOR j IN
        WITH picked AS (
            SELECT x.id FROM core.ai_job x
             WHERE x.status = 'queued' AND x.run_after <= now()
               AND x.stage = ANY (claim_jobs.stages::core.ai_stage[])
             ORDER BY x.run_after, x.id
             LIMIT claim_jobs.max_jobs FOR UPDATE SKIP LOCKED)
        UPDATE core.ai_job x
           SET status = 'running', attempts = x.attempts + 1, worker = claim_jobs.worker,
               lease_expires_at = now() + make_interval(secs => lease_seconds),
               max_attempts = claim_jobs.max_attempts
          FROM picked WHERE x.id = picked.id
        RETURNING x.*
    LOOP
        -- numbered apart from `attempts`, which does not count attempts given back at shutdown
        INSERT INTO core.ai_attempt (job_id, attempt, worker)
        SELECT j.id, coalesce(max(a.attempt), 0) + 1, j.worker FROM core.ai_attempt a WHERE a.job_id = j.id;
        taken := taken || jsonb_build_array(core.ai_job_context(j));
    END LOOP;
    RETURN taken;
END
$$;
COMMENT ON FUNCTION ai.claim_jobs(text, text[], integer, integer, integer) IS
    'Worker: takes up to max_jobs ready jobs of these stages under a lease (jobs of dead workers are requeued '
    'first); returns each job with where its image bytes are and the earlier stages'' results.';
GRANT EXECUTE ON FUNCTION ai.claim_jobs(text, text[], integer, integer, integer) TO dl_ai_worker;

CREATE OR REPLACE FUNCTION ai.complete_job(job_id bigint, worker text, model_name text, model_version text,
                                           payload jsonb, latency_ms integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    j core.ai_job := core.ai_held_job(job_id, worker);
    checked jsonb := core.ai_check_payload(j, payload);
    sid bigint;
BEGIN
    IF latency_ms IS NULL OR latency_ms < 0 THEN
        PERFORM core.invalid('latency_ms', 'must be zero or more');
    END IF;
    INSERT INTO core.ai_suggestion (image_id, stage, job_id, model_name, model_version, payload, latency_ms)
    VALUES (j.image_id, j.stage, j.id, complete_job.model_name, complete_job.model_version, checked,
            complete_job.latency_ms)
    RETURNING id INTO sid;
    IF j.stage = 'classify' THEN
        PERFORM core.ai_red_flag(j.image_id, checked -> 'classes');
        PERFORM core.ai_set_uncertainty(j.image_id);
    END IF;
    PERFORM core.ai_settle(j, 'done', 'done', NULL);
    RETURN jsonb_build_object('job_id', j.id, 'suggestion_id', sid, 'status', 'done');
END
$$;
COMMENT ON FUNCTION ai.complete_job(bigint, text, text, text, jsonb, integer) IS
    'Worker: records the result of a job you hold as a suggestion (checked per stage; classify probabilities are '
    'mapped onto the taxonomy and may raise red-flag priority) and queues the next stage.';
GRANT EXECUTE ON FUNCTION ai.complete_job(bigint, text, text, text, jsonb, integer) TO dl_ai_worker;

CREATE OR REPLACE FUNCTION ai.fail_job(job_id bigint, worker text, error text, permanent boolean DEFAULT false,
                                       backoff_seconds numeric DEFAULT 2, backoff_cap_seconds numeric DEFAULT 300)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- Retry after backoff_seconds * 2^(attempt-1), capped; failed for good after max_attempts or when permanent.
-- A failed stage still lets the next one run when it can do without (classify without a crop).
DECLARE
    j core.ai_job := core.ai_held_job(job_id, worker);
    msg text := left(coalesce(nullif(btrim(error), ''), 'unknown error'), 4000);
    delay numeric;
BEGIN
    IF backoff_seconds IS NULL OR backoff_seconds < 0 OR backoff_cap_seconds IS NULL OR backoff_cap_seconds < 0 THEN
        PERFORM core.invalid('backoff_seconds', 'must be zero or more');
    END IF;
    IF permanent OR j.attempts >= j.max_attempts THEN
        PERFORM core.ai_settle(j, 'failed', 'error', msg);
        RETURN jsonb_build_object('job_id', j.id, 'status', 'failed', 'attempts', j.attempts);
    END IF;
    delay := least(backoff_cap_seconds, backoff_seconds * power(2, j.attempts - 1));
    UPDATE core.ai_job x SET status = 'queued', lease_expires_at = NULL, last_error = msg,
                             run_after = now() + make_interval(secs => delay::double precision)
     WHERE x.id = j.id;
    UPDATE core.ai_attempt a SET finished_at = now(), outcome = 'error', error = msg
     WHERE a.job_id = j.id AND a.finished_at IS NULL;
    RETURN jsonb_build_object('job_id', j.id, 'status', 'queued', 'attempts', j.attempts,
                              'retry_in_seconds', delay);
END
$$;
COMMENT ON FUNCTION ai.fail_job(bigint, text, text, boolean, numeric, numeric) IS
    'Worker: records a failed attempt of a job you hold with its error text; it is retried with exponential '
    'backoff until max_attempts, or failed at once when permanent.';
GRANT EXECUTE ON FUNCTION ai.fail_job(bigint, text, text, boolean, numeric, numeric) TO dl_ai_worker;

CREATE OR REPLACE FUNCTION ai.skip_job(job_id bigint, worker text, reason text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    j core.ai_job := core.ai_held_job(job_id, worker);
BEGIN
    PERFORM core.ai_settle(j, 'skipped', 'skipped', left(coalesce(reason, 'skipped'), 4000));
    RETURN jsonb_build_object('job_id', j.id, 'status', 'skipped');
END
$$;
COMMENT ON FUNCTION ai.skip_job(bigint, text, text) IS
    'Worker: settles a job of a stage this deployment does not run (say why), so the next stage can go on.';
GRANT EXECUTE ON FUNCTION ai.skip_job(bigint, text, text) TO dl_ai_worker;

CREATE OR REPLACE FUNCTION ai.return_jobs(worker text, job_ids bigint[])
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- Graceful shutdown: jobs the worker will not finish go back to the queue, the attempt not counted.
DECLARE
    n integer;
BEGIN
    UPDATE core.ai_attempt a SET finished_at = now(), outcome = 'returned'
      FROM core.ai_job x
     WHERE x.id = a.job_id AND a.finished_at IS NULL
       AND x.id = ANY (job_ids) AND x.status = 'running' AND x.worker = return_jobs.worker;
    UPDATE core.ai_job x SET status = 'queued', lease_expires_at = NULL, attempts = x.attempts - 1, run_after = now()
     WHERE x.id = ANY (job_ids) AND x.status = 'running' AND x.worker = return_jobs.worker;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION ai.return_jobs(text, bigint[]) IS
    'Worker: gives back jobs you hold and will not finish (shutdown); they are queued again, the attempt uncounted.';
GRANT EXECUTE ON FUNCTION ai.return_jobs(text, bigint[]) TO dl_ai_worker;

CREATE OR REPLACE FUNCTION ai.recommend_from_taxonomy(job_id bigint, worker text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- The default recommend stage, entirely in SQL: the next-steps text of the predicted classes (up to three with at
-- least 10 % probability, else the top one), each taken from the nearest node up the tree that has one.
DECLARE
    j core.ai_job := core.ai_held_job(job_id, worker);
    cls core.ai_suggestion := core.ai_latest(j.image_id, 'classify');
    steps jsonb;
    basis jsonb;
BEGIN
    IF cls.id IS NULL THEN
        RETURN ai.fail_job(job_id, worker, 'no classification to recommend from', true);
    END IF;
    WITH picked AS (
        SELECT c, ord FROM jsonb_array_elements(cls.payload -> 'classes') WITH ORDINALITY AS e(c, ord)
         WHERE ord = 1 OR (ord <= 3 AND (c ->> 'probability')::numeric >= 0.1)),
    texts AS (
        SELECT p.ord, p.c, (SELECT n.next_steps FROM jsonb_array_elements(p.c -> 'path') WITH ORDINALITY a(node, depth)
                              JOIN core.taxonomy_node n ON n.id = (a.node ->> 'id')::bigint
                             WHERE n.next_steps <> '' ORDER BY a.depth DESC LIMIT 1) AS text
          FROM picked p)
    SELECT coalesce(jsonb_agg(format('%s (%s %%): %s', t.c ->> 'name',
                                     round((t.c ->> 'probability')::numeric * 100), t.text) ORDER BY t.ord)
                        FILTER (WHERE t.text IS NOT NULL), '[]'),
           coalesce(jsonb_agg(jsonb_build_object('code', t.c ->> 'code', 'probability', t.c -> 'probability')
                              ORDER BY t.ord), '[]')
      INTO steps, basis FROM texts t;
    IF jsonb_array_length(steps) = 0 THEN
        steps := '["No next steps are configured for the predicted classes."]';
    END IF;
    RETURN ai.complete_job(job_id, worker, 'taxonomy-next-steps', '1', jsonb_build_object(
        'steps', steps, 'source', 'taxonomy', 'based_on', basis,
        'disclaimer', 'Next steps configured by the project for the predicted classes; not a diagnosis.'), 0);
END
$$;
COMMENT ON FUNCTION ai.recommend_from_taxonomy(bigint, text) IS
    'Worker: completes a recommend job you hold from the next-steps text the project configured on the '
    'predicted taxonomy nodes (the default, offline recommend stage).';
GRANT EXECUTE ON FUNCTION ai.recommend_from_taxonomy(bigint, text) TO dl_ai_worker;
