-- Health: reachable database and the applied schema version, for /healthz and monitoring.

CREATE OR REPLACE FUNCTION api.health()
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = ''
AS $$
    SELECT jsonb_build_object(
        'status', 'ok',
        'database', 'ok',
        'schema_version', (SELECT h.version FROM public.flyway_schema_history h
                            WHERE h.success AND h.version IS NOT NULL
                            ORDER BY h.installed_rank DESC LIMIT 1))
$$;

COMMENT ON FUNCTION api.health() IS
    'Reports that the database answers and which schema version (latest applied Flyway migration) it runs.';

REVOKE EXECUTE ON FUNCTION api.health() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.health() TO dl_anon, dl_annotator, dl_reviewer, dl_admin, dl_analyst;
