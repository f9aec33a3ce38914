-- The AI pipeline for project admins: run it again for an image, see its jobs and failures, set the red-flag
-- triage rule. (The queue and the worker's calls: R__ai_queue.sql; results: R__ai_results.sql.)

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
GRANT EXECUTE ON FUNCTION api.rerun_ai(bigint) TO dl_admin;

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
GRANT EXECUTE ON FUNCTION api.ai_status(bigint) TO dl_admin;

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
GRANT EXECUTE ON FUNCTION api.configure_red_flags(bigint, text[], numeric, integer) TO dl_admin;
