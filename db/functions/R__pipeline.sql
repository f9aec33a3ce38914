-- The AI pipeline in SQL: jobs are created with work items, taken by workers with FOR UPDATE SKIP LOCKED under a
-- lease, retried with exponential backoff, and settled; each settled stage queues the next one. Results are mapped
-- onto the project's taxonomy here, and a high-risk result raises the priority of the image's open items.
-- The worker (python -m app worker) only moves bytes and calls models; every decision is in this file.
-- (Named so that Flyway applies it after R__audit.sql, whose refuse_change() it uses.)

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

DROP TRIGGER IF EXISTS append_only ON core.ai_suggestion;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON core.ai_suggestion
    FOR EACH ROW EXECUTE FUNCTION core.refuse_change();

CREATE OR REPLACE FUNCTION core.ai_latest(p_image bigint, p_stage core.ai_stage) RETURNS core.ai_suggestion
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
DECLARE
    s core.ai_suggestion;
BEGIN
    SELECT * INTO s FROM core.ai_suggestion x WHERE x.image_id = p_image AND x.stage = p_stage
     ORDER BY x.id DESC LIMIT 1;
    RETURN s;
END
$$;

CREATE OR REPLACE FUNCTION core.ai_document(p_image bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
-- The latest suggestion of each stage, as the workspaces show it (runs under the caller's RLS when invoked so).
BEGIN
    RETURN (SELECT coalesce(jsonb_object_agg(s.stage, jsonb_build_object(
                'id', s.id, 'model', s.model_name, 'version', s.model_version, 'latency_ms', s.latency_ms,
                'created_at', s.created_at,
                'payload', CASE WHEN s.stage = 'crop' AND s.payload ? 'standardised'
                                THEN (s.payload - 'standardised') || jsonb_build_object('standardised',
                                     ((s.payload -> 'standardised') - 'storage_key')
                                     || jsonb_build_object('url', '/images/' || p_image || '/standardised'))
                                -- the embedding is for the segment service alone: the workspace learns it is there
                                WHEN s.stage = 'segment'
                                THEN (s.payload - 'embedding') || jsonb_build_object('prepared', s.payload ? 'embedding')
                                ELSE s.payload END)), '{}'::jsonb)
              FROM unnest(enum_range(NULL::core.ai_stage)) st
              CROSS JOIN LATERAL (SELECT * FROM core.ai_suggestion x WHERE x.image_id = p_image AND x.stage = st
                                   ORDER BY x.id DESC LIMIT 1) s);
END
$$;
COMMENT ON FUNCTION core.ai_document(bigint) IS
    'The latest AI suggestion per stage for an image ({crop, segment, classify, recommend}; absent stages are '
    'missing; segment only says whether the image is prepared).';

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

CREATE OR REPLACE FUNCTION core.ai_map_classes(p_project bigint, p_probabilities jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
-- {code: probability} onto the project's taxonomy (codes compared case-insensitively): sorted classes with node id,
-- name, path and whether the node (or an ancestor) is high-risk; codes the taxonomy does not know are kept apart.
DECLARE
    k text;
    v jsonb;
BEGIN
    IF p_probabilities IS NULL OR jsonb_typeof(p_probabilities) <> 'object' OR p_probabilities = '{}' THEN
        PERFORM core.invalid('payload.probabilities', 'must be a non-empty object {code: probability}');
    END IF;
    FOR k, v IN SELECT * FROM jsonb_each(p_probabilities) LOOP
        IF jsonb_typeof(v) <> 'number' OR v::numeric < 0 OR v::numeric > 1 THEN
            PERFORM core.invalid('payload.probabilities.' || k, 'must be a number between 0 and 1');
        END IF;
    END LOOP;
    RETURN jsonb_build_object(
        'classes', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'node_id', n.id, 'code', n.code, 'name', n.name, 'probability', e.value::numeric,
                        'path', n.path, 'high_risk', EXISTS (
                            SELECT 1 FROM core.taxonomy_node a
                             WHERE a.id IN (SELECT (p ->> 'id')::bigint FROM jsonb_array_elements(n.path) p)
                               AND a.high_risk))
                        ORDER BY e.value::numeric DESC, n.code), '[]')
                      FROM jsonb_each(p_probabilities) e
                      JOIN core.taxonomy_node n ON n.project_id = p_project AND lower(n.code) = lower(e.key)
                                               AND n.active),
        'unmapped', (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}')
                       FROM jsonb_each(p_probabilities) e
                      WHERE NOT EXISTS (SELECT 1 FROM core.taxonomy_node n
                                         WHERE n.project_id = p_project AND lower(n.code) = lower(e.key)
                                           AND n.active)));
END
$$;

CREATE OR REPLACE FUNCTION core.ai_red_flag(p_image bigint, p_classes jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- The triage rule: the most probable high-risk class at or above the project's threshold raises every open item of
-- the image to the project's red-flag priority (never lowers one). Both the rule and the raise are audited.
DECLARE
    p core.project;
    hit jsonb;
    raised bigint[];
BEGIN
    SELECT pr.* INTO p FROM core.project pr JOIN core.image i ON i.project_id = pr.id WHERE i.id = p_image;
    SELECT c INTO hit FROM jsonb_array_elements(p_classes) c
     WHERE (c ->> 'high_risk')::boolean AND (c ->> 'probability')::numeric >= p.red_flag_threshold
     ORDER BY (c ->> 'probability')::numeric DESC LIMIT 1;
    IF hit IS NULL THEN
        RETURN;
    END IF;
    PERFORM core.begin_action('ai_red_flag');
    WITH up AS (
        UPDATE core.work_item w SET priority = p.red_flag_priority
         WHERE w.image_id = p_image AND w.status IN ('new', 'in_progress', 'review', 'edits_requested')
           AND w.priority < p.red_flag_priority
        RETURNING w.id)
    SELECT array_agg(id ORDER BY id) INTO raised FROM up;
    PERFORM core.audit('ai_red_flag', 'image', p_image, NULL,
                       jsonb_build_object('rule', format('%s >= %s on a high-risk class', hit ->> 'code',
                                                         p.red_flag_threshold),
                                          'code', hit ->> 'code', 'probability', hit -> 'probability',
                                          'threshold', p.red_flag_threshold, 'priority', p.red_flag_priority,
                                          'raised_items', coalesce(to_jsonb(raised), '[]')));
END
$$;

CREATE OR REPLACE FUNCTION core.ai_uncertainty(p_method text, p_probabilities jsonb) RETURNS real
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
-- least_confidence: 1 - the top probability; entropy: -sum(p log p) / log(k), both in [0, 1], over the
-- probabilities as the model gave them (renormalised, so a model that leaves out the rest still compares).
DECLARE
    total numeric;
    k integer;
BEGIN
    IF p_method IS NULL OR p_probabilities IS NULL OR jsonb_typeof(p_probabilities) <> 'object' THEN
        RETURN NULL;
    END IF;
    SELECT sum(v::numeric), count(*) INTO total, k FROM jsonb_each_text(p_probabilities) e(c, v);
    IF total IS NULL OR total <= 0 THEN
        RETURN NULL;
    END IF;
    IF p_method = 'least_confidence' THEN
        RETURN (SELECT 1 - max(v::numeric) / total FROM jsonb_each_text(p_probabilities) e(c, v));
    END IF;
    IF k < 2 THEN
        RETURN 0;
    END IF;
    RETURN (SELECT least(1, greatest(0, -sum(CASE WHEN v::numeric > 0
                                                THEN (v::numeric / total) * ln(v::numeric / total) ELSE 0 END)
                                      / ln(k)))
              FROM jsonb_each_text(p_probabilities) e(c, v));
END
$$;

CREATE OR REPLACE FUNCTION core.ai_rekey(p_items bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- The one place the active-learning sort key is set: for these items, if still new, from their rule's method and
-- their image's latest classification (NULL when the rule has none, or the AI has not spoken).
BEGIN
    UPDATE core.work_item w
       SET ai_uncertainty = core.ai_uncertainty(r.active_learning,
                                                (core.ai_latest(w.image_id, 'classify')).payload -> 'probabilities')
      FROM core.work_rule r
     WHERE r.id = w.rule_id AND w.id = ANY (p_items) AND w.status = 'new';
END
$$;

CREATE OR REPLACE FUNCTION core.ai_set_uncertainty(p_image bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- After a classification: the image's new items of active-learning rules.
BEGIN
    PERFORM core.ai_rekey(ARRAY(SELECT w.id FROM core.work_item w JOIN core.work_rule r ON r.id = w.rule_id
                                 WHERE w.image_id = p_image AND w.status = 'new' AND r.active_learning IS NOT NULL));
END
$$;

CREATE OR REPLACE FUNCTION core.ai_check_payload(j core.ai_job, p jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
-- Each stage's result shape, checked before it is stored; classify results are mapped onto the taxonomy.
DECLARE
    i core.image;
    b jsonb := p -> 'box';
BEGIN
    SELECT * INTO i FROM core.image x WHERE x.id = j.image_id;
    IF p IS NULL OR jsonb_typeof(p) <> 'object' THEN
        PERFORM core.invalid('payload', 'must be an object');
    END IF;
    IF j.stage = 'crop' THEN
        IF jsonb_typeof(b) <> 'object'
           OR EXISTS (SELECT 1 FROM unnest(ARRAY['x', 'y', 'width', 'height']) f
                       WHERE jsonb_typeof(b -> f) IS DISTINCT FROM 'number') THEN
            PERFORM core.invalid('payload.box', 'must be {x, y, width, height} in pixels of the image');
        END IF;
        IF (b ->> 'x')::numeric < 0 OR (b ->> 'y')::numeric < 0 OR (b ->> 'width')::numeric <= 0
           OR (b ->> 'height')::numeric <= 0 OR (b ->> 'x')::numeric + (b ->> 'width')::numeric > i.width
           OR (b ->> 'y')::numeric + (b ->> 'height')::numeric > i.height THEN
            PERFORM core.invalid('payload.box', format('must lie inside the %sx%s image', i.width, i.height));
        END IF;
        IF p ? 'standardised' AND (jsonb_typeof(p -> 'standardised' -> 'storage_key') IS DISTINCT FROM 'string'
                                   OR (p -> 'standardised' ->> 'storage_key') !~ '^derived/') THEN
            PERFORM core.invalid('payload.standardised.storage_key', 'must name a stored derived image');
        END IF;
        IF p ? 'mask' THEN  -- the lesion mask, a suggested mask region (pre-annotation)
            PERFORM core.check_rle(p -> 'mask', i.height, i.width, 'payload.mask');
        END IF;
        RETURN p;
    ELSIF j.stage = 'segment' THEN
        IF jsonb_typeof(p -> 'embedding' -> 'storage_key') IS DISTINCT FROM 'string'
           OR (p -> 'embedding' ->> 'storage_key') !~ '^derived/'
           OR jsonb_typeof(p -> 'embedding' -> 'bytes') IS DISTINCT FROM 'number' THEN
            PERFORM core.invalid('payload.embedding', 'must be {storage_key, bytes} of a stored derived file');
        ELSIF (p -> 'embedding' ->> 'bytes')::numeric <= 0 THEN  -- read as a number once known to be one
            PERFORM core.invalid('payload.embedding', 'must be {storage_key, bytes} of a stored derived file');
        END IF;
        RETURN p;
    ELSIF j.stage = 'classify' THEN
        RETURN p || core.ai_map_classes(i.project_id, p -> 'probabilities');
    ELSE
        IF jsonb_typeof(p -> 'steps') IS DISTINCT FROM 'array' OR jsonb_array_length(p -> 'steps') = 0
           OR EXISTS (SELECT 1 FROM jsonb_array_elements(p -> 'steps') s WHERE jsonb_typeof(s) <> 'string') THEN
            PERFORM core.invalid('payload.steps', 'must be a non-empty array of strings');
        END IF;
        RETURN p;
    END IF;
END
$$;

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

GRANT EXECUTE ON FUNCTION ai.claim_jobs(text, text[], integer, integer, integer),
                          ai.complete_job(bigint, text, text, text, jsonb, integer),
                          ai.fail_job(bigint, text, text, boolean, numeric, numeric),
                          ai.skip_job(bigint, text, text), ai.return_jobs(text, bigint[]),
                          ai.recommend_from_taxonomy(bigint, text)
    TO dl_ai_worker;

-- ---------------------------------------------------------------------------------------------------------------
-- Admins

CREATE OR REPLACE FUNCTION api.rerun_ai(image_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
#variable_conflict use_column
DECLARE
    i core.image;
    jid bigint;
BEGIN
    PERFORM core.require_role('admin');
    SELECT * INTO i FROM core.image x WHERE x.id = rerun_ai.image_id AND x.status <> 'removed';
    IF i.id IS NULL OR NOT core.admin_of(i.project_id) THEN
        RAISE EXCEPTION 'image % not found', image_id USING ERRCODE = 'P0002';
    END IF;
    INSERT INTO core.ai_job AS x (image_id, stage, cascade, requested_by)
    VALUES (i.id, 'crop', true, auth.uid())
    ON CONFLICT (image_id, stage) WHERE status IN ('queued', 'running')
    DO UPDATE SET cascade = true, requested_by = EXCLUDED.requested_by
    RETURNING x.id INTO jid;
    PERFORM core.audit('rerun_ai', 'image', i.id, NULL, jsonb_build_object('job_id', jid));
    RETURN jsonb_build_object('image_id', i.id, 'job_id', jid, 'stage', 'crop', 'status', 'queued');
END
$$;
COMMENT ON FUNCTION api.rerun_ai(bigint) IS
    'Admin: runs the whole AI pipeline again for an image of your project (crop, then segment and classify, then '
    'recommend); new suggestions are added, the old ones kept.';

CREATE OR REPLACE FUNCTION api.ai_status(project_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    PERFORM core.caller('admin', project_id);
    RETURN jsonb_build_object(
        'jobs', (SELECT coalesce(jsonb_object_agg(stage, counts), '{}') FROM (
                    SELECT j.stage, jsonb_object_agg(j.status, j.n) AS counts
                      FROM (SELECT x.stage, x.status, count(*) AS n FROM core.ai_job x
                              JOIN core.image i ON i.id = x.image_id
                             WHERE i.project_id = ai_status.project_id GROUP BY 1, 2) j
                     GROUP BY j.stage) s),
        'oldest_queued', (SELECT min(x.created_at) FROM core.ai_job x JOIN core.image i ON i.id = x.image_id
                           WHERE i.project_id = ai_status.project_id AND x.status = 'queued'),
        'recent_failures', (SELECT coalesce(jsonb_agg(f ORDER BY f.finished_at DESC), '[]') FROM (
                               SELECT x.id AS job_id, x.image_id, x.stage, x.attempts, x.last_error, x.finished_at
                                 FROM core.ai_job x JOIN core.image i ON i.id = x.image_id
                                WHERE i.project_id = ai_status.project_id AND x.status = 'failed'
                                ORDER BY x.finished_at DESC LIMIT 20) f));
END
$$;
COMMENT ON FUNCTION api.ai_status(bigint) IS
    'Admin: the AI pipeline of a project: jobs per stage and status, the oldest queued job, the last failures with '
    'their error text.';

CREATE OR REPLACE FUNCTION api.configure_red_flags(project_id bigint, high_risk_codes text[], threshold numeric,
                                                   priority integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    p core.project;
    unknown text[];
BEGIN
    PERFORM core.caller('admin', project_id);
    IF threshold IS NULL OR threshold <= 0 OR threshold > 1 THEN
        PERFORM core.invalid('threshold', 'must be greater than 0 and at most 1');
    END IF;
    IF priority IS NULL OR priority NOT BETWEEN -1000000 AND 1000000 THEN
        PERFORM core.invalid('priority', 'must be between -1000000 and 1000000');
    END IF;
    SELECT array_agg(c ORDER BY c) INTO unknown FROM unnest(coalesce(high_risk_codes, '{}')) c
     WHERE NOT EXISTS (SELECT 1 FROM core.taxonomy_node n
                        WHERE n.project_id = configure_red_flags.project_id AND n.code = c);
    IF unknown IS NOT NULL THEN
        PERFORM core.invalid('high_risk_codes', 'not in the taxonomy: ' || array_to_string(unknown, ', '));
    END IF;
    SELECT * INTO p FROM core.project x WHERE x.id = configure_red_flags.project_id FOR UPDATE;
    UPDATE core.taxonomy_node n SET high_risk = (n.code = ANY (coalesce(high_risk_codes, '{}')))
     WHERE n.project_id = configure_red_flags.project_id
       AND n.high_risk IS DISTINCT FROM (n.code = ANY (coalesce(high_risk_codes, '{}')));
    UPDATE core.project x SET red_flag_threshold = threshold, red_flag_priority = priority
     WHERE x.id = configure_red_flags.project_id;
    PERFORM core.audit('configure_red_flags', 'project', p.id,
                       jsonb_build_object('threshold', p.red_flag_threshold, 'priority', p.red_flag_priority),
                       jsonb_build_object('high_risk_codes', coalesce(high_risk_codes, '{}'), 'threshold', threshold,
                                          'priority', priority));
    RETURN jsonb_build_object('project_id', p.id, 'high_risk_codes', to_jsonb(coalesce(high_risk_codes, '{}')),
                              'threshold', threshold, 'priority', priority);
END
$$;
COMMENT ON FUNCTION api.configure_red_flags(bigint, text[], numeric, integer) IS
    'Admin: which taxonomy codes are high-risk (their descendants too), and the triage rule: when the AI puts at '
    'least `threshold` probability on a high-risk class, the image''s open items are raised to `priority`.';

GRANT EXECUTE ON FUNCTION api.rerun_ai(bigint), api.ai_status(bigint),
                          api.configure_red_flags(bigint, text[], numeric, integer)
    TO dl_admin;

-- read by item_document and image_file under the caller's row-level security
GRANT EXECUTE ON FUNCTION core.ai_document(bigint), core.ai_latest(bigint, core.ai_stage)
    TO dl_annotator, dl_reviewer, dl_admin;
