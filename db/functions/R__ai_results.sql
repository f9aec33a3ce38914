-- AI results: what a stage's result must look like before it is stored (core.ai_check_payload), classify
-- probabilities mapped onto the project's taxonomy, the red-flag triage rule, the active-learning key, and what the
-- workspaces read of the suggestions (core.ai_latest, core.ai_document, under the caller's row-level security).
-- Called by the worker's ai.complete_job (R__ai_queue.sql) and by the workspaces, export and label import.

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
COMMENT ON FUNCTION core.ai_latest(bigint, core.ai_stage) IS
    'The latest suggestion of one stage for an image (a core.ai_suggestion row, all NULL when there is none), read '
    'under the caller''s row-level security: the worker''s job context and settling, item documents, image files '
    '(the standardised crop), export and click-to-segment (the embedding).';
-- read by item_document and image_file under the caller's row-level security
GRANT EXECUTE ON FUNCTION core.ai_latest(bigint, core.ai_stage) TO dl_annotator, dl_reviewer, dl_admin;

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
-- read by item_document under the caller's row-level security
GRANT EXECUTE ON FUNCTION core.ai_document(bigint) TO dl_annotator, dl_reviewer, dl_admin;

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
COMMENT ON FUNCTION core.ai_check_payload(core.ai_job, jsonb) IS
    'A job''s result checked for its stage before ai.complete_job stores it (22023 naming the field otherwise): the '
    'crop box inside the image, its standardised image and RLE mask; the segment embedding; the recommend steps. A '
    'classify result comes back with its taxonomy mapping (core.ai_map_classes) added.';

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
COMMENT ON FUNCTION core.ai_map_classes(bigint, jsonb) IS
    '{code: probability} onto the project''s taxonomy: {classes: [{node_id, code, name, probability, path, '
    'high_risk}] most probable first, unmapped: {code: probability}}; 22023 unless an object of numbers in [0, 1]. '
    'For classify results and for imported labels (which codes the taxonomy knows).';

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
COMMENT ON FUNCTION core.ai_red_flag(bigint, jsonb) IS
    'The triage rule after a classification (ai.complete_job): the most probable high-risk class at or above the '
    'project''s threshold raises the image''s open items to its red-flag priority (never lowers one); audited.';

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
COMMENT ON FUNCTION core.ai_rekey(bigint[]) IS
    'Sets the active-learning sort key (work_item.ai_uncertainty) of these items, when still new, from their rule''s '
    'method and the image''s latest classification: for new items (core.ai_enqueue), a classification '
    '(core.ai_set_uncertainty) and a rule switched to active learning (api.update_work_rule).';

CREATE OR REPLACE FUNCTION core.ai_set_uncertainty(p_image bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- After a classification: the image's new items of active-learning rules.
BEGIN
    PERFORM core.ai_rekey(ARRAY(SELECT w.id FROM core.work_item w JOIN core.work_rule r ON r.id = w.rule_id
                                 WHERE w.image_id = p_image AND w.status = 'new' AND r.active_learning IS NOT NULL));
END
$$;
COMMENT ON FUNCTION core.ai_set_uncertainty(bigint) IS
    'After a classification (ai.complete_job): re-keys the image''s new items of active-learning rules.';
