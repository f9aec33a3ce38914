-- Operational figures for /metrics: queue sizes by project and status (ids and counts only, no content).

CREATE OR REPLACE FUNCTION api.queue_stats()
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('project_id', s.project_id, 'status', s.status, 'items', s.n)
                              ORDER BY s.project_id, s.status), '[]')
      FROM (SELECT w.project_id, w.status, count(*) AS n FROM core.work_item w GROUP BY 1, 2) s
$$;
COMMENT ON FUNCTION api.queue_stats() IS
    'Work items per project and status, for monitoring (/metrics): ids and counts only.';

GRANT EXECUTE ON FUNCTION api.queue_stats() TO dl_anon, dl_admin, dl_analyst;
