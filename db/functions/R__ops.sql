-- Operational figures for /metrics, read by the app's login role (no api function: no caller of the API, signed
-- in or not, reads another organization's counts): queue sizes by project and status, the AI pipeline's jobs.

CREATE OR REPLACE FUNCTION ops.queue_stats()
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('project_id', s.project_id, 'status', s.status, 'items', s.n)
                              ORDER BY s.project_id, s.status), '[]')
      FROM (SELECT w.project_id, w.status, count(*) AS n FROM core.work_item w GROUP BY 1, 2) s
$$;
COMMENT ON FUNCTION ops.queue_stats() IS
    'Work items per project and status, for monitoring (/metrics): ids and counts only.';
GRANT EXECUTE ON FUNCTION ops.queue_stats() TO dl_authenticator;

CREATE OR REPLACE FUNCTION ops.ai_queue_stats()
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- Counts only, no ids of images.
BEGIN
    RETURN jsonb_build_object(
        'jobs', (SELECT coalesce(jsonb_agg(jsonb_build_object('stage', j.stage, 'status', j.status, 'n', j.n)), '[]')
                   FROM (SELECT x.stage, x.status, count(*) AS n FROM core.ai_job x GROUP BY 1, 2) j),
        'attempt_errors', (SELECT coalesce(jsonb_object_agg(a.stage, a.n), '{}')
                             FROM (SELECT x.stage, count(*) AS n FROM core.ai_attempt t
                                     JOIN core.ai_job x ON x.id = t.job_id
                                    WHERE t.outcome IN ('error', 'lease_expired') GROUP BY 1) a),
        'latency_ms', (SELECT coalesce(jsonb_object_agg(l.stage, jsonb_build_object('p50', l.p50, 'p95', l.p95,
                                                                                   'n', l.n)), '{}')
                         FROM (SELECT s.stage, count(*) AS n,
                                      percentile_cont(0.5) WITHIN GROUP (ORDER BY s.latency_ms) AS p50,
                                      percentile_cont(0.95) WITHIN GROUP (ORDER BY s.latency_ms) AS p95
                                 FROM core.ai_suggestion s WHERE s.created_at > now() - interval '1 hour'
                                GROUP BY 1) l));
END
$$;
COMMENT ON FUNCTION ops.ai_queue_stats() IS
    'AI pipeline counts for monitoring (/metrics): jobs per stage and status, failed attempts per stage, model '
    'latency p50/p95 per stage over the last hour.';
GRANT EXECUTE ON FUNCTION ops.ai_queue_stats() TO dl_authenticator;
