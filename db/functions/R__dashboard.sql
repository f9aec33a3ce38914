-- What the metrics dashboard reads besides the views (api.metrics): which projects' metrics the caller may see, the
-- project's settings the charts need, and the names of the project's people, so that the page shows people by name
-- instead of by id. Names are given only for people of the project: its members and anyone its metrics count
-- (who may since have left it); never the rest of the directory.

CREATE OR REPLACE FUNCTION api.dashboard_context(project_id bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- The same readers as api.metrics: the project's admins, and analysts (and admins) of its organization.
DECLARE
    visible bigint[];
    pid bigint := dashboard_context.project_id;
BEGIN
    PERFORM core.require_signed_in();
    SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') INTO visible
      FROM unnest(auth.analyst_projects() || auth.projects_as('admin')) x;
    IF pid IS NULL THEN
        pid := visible[1];  -- the page without ?project=: the first project whose metrics the caller may see
    ELSIF NOT pid = ANY (visible) THEN
        RAISE EXCEPTION 'project % not found', pid USING ERRCODE = 'P0002';
    END IF;
    RETURN jsonb_build_object(
        'projects', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', p.id, 'name', p.name) ORDER BY p.id), '[]')
                       FROM core.project p WHERE p.id = ANY (visible)),
        'project', (SELECT jsonb_build_object('id', p.id, 'name', p.name,
                                              'agreement_min_shared', p.agreement_min_shared,
                                              'quality_strata', to_jsonb(p.quality_strata))
                      FROM core.project p WHERE p.id = pid),
        'admin', coalesce(pid = ANY (auth.projects_as('admin')), false),
        'people', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', u.id, 'display_name', u.display_name)
                                             ORDER BY u.display_name, u.id), '[]')
                     FROM auth."user" u
                    WHERE u.id IN (SELECT m.user_id FROM core.project_member m WHERE m.project_id = pid
                                   UNION SELECT d.annotator_id FROM metrics.annotator_daily d WHERE d.project_id = pid
                                   UNION SELECT g.annotator_id FROM metrics.gold_accuracy g WHERE g.project_id = pid
                                   UNION SELECT a.annotator_a FROM metrics.agreement_pair a WHERE a.project_id = pid
                                   UNION SELECT a.annotator_b FROM metrics.agreement_pair a WHERE a.project_id = pid
                                   UNION SELECT r.annotator_a FROM metrics.region_agreement_pair r
                                          WHERE r.project_id = pid
                                   UNION SELECT r.annotator_b FROM metrics.region_agreement_pair r
                                          WHERE r.project_id = pid
                                   UNION SELECT o.subject_id FROM metrics.review_outcome o
                                          WHERE o.project_id = pid AND o.dimension <> 'class')));
END
$$;
COMMENT ON FUNCTION api.dashboard_context(bigint) IS
    'Admin of the project, or analyst of its organization: what the metrics dashboard needs besides api.metrics: '
    'projects (id, name) whose metrics you may read, the project (id, name, agreement_min_shared, quality_strata; '
    'without project_id the first of projects, or null when there is none), admin (whether you administer it: '
    'refresh_metrics is yours), and people (id, display_name) of the project: its members and everyone its '
    'metrics count.';
GRANT EXECUTE ON FUNCTION api.dashboard_context(bigint) TO dl_admin, dl_analyst;
