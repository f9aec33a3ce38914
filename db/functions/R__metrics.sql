-- Refreshing the metrics views, and reading them for the dashboard.

CREATE OR REPLACE FUNCTION core.metrics_views() RETURNS text[]
LANGUAGE sql STABLE SET search_path = '' AS $$
    SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}')
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'metrics' AND c.relkind = 'm'
$$;
COMMENT ON FUNCTION core.metrics_views() IS 'The materialized views of schema metrics, by name.';

CREATE OR REPLACE FUNCTION metrics.refresh_all(p_trigger text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' SET work_mem = '256MB'
SET parallel_setup_cost = 0 SET parallel_tuple_cost = 0 AS $$
-- work_mem: the views sort and hash millions of rows (medians, distinct counts); in memory, not on disk.
-- Parallel costs at zero: the planner otherwise keeps these scans, joins and sorts serial; with workers the
-- refresh of a million items takes about two thirds of the time (it then uses every core while it runs).
-- One refresher at a time (an advisory lock; a second caller returns at once). CONCURRENTLY: readers keep
-- reading the previous contents until this transaction commits.
DECLARE
    v text;
    t0 timestamptz;
    ms numeric;
    done jsonb := '{}';
    started timestamptz := clock_timestamp();
    sealed jsonb;
BEGIN
    IF NOT pg_try_advisory_xact_lock(4471003002) THEN
        RETURN jsonb_build_object('refreshed', false, 'reason', 'already_running');
    END IF;
    -- the access audit's monthly partitions, made before their month begins (V23)
    PERFORM audit.ensure_access_partitions(2);
    -- days that are over are counted once, into core.sealed_* (V17); the views add the events since
    sealed := core.seal_metrics()
              || jsonb_build_object('ms', round(extract(epoch FROM clock_timestamp() - started) * 1000, 1));
    FOREACH v IN ARRAY core.metrics_views() LOOP
        t0 := clock_timestamp();
        EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY metrics.%I', v);
        ms := round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
        INSERT INTO metrics.refreshed_at AS r (view_name, refreshed_at, duration_ms, trigger)
        VALUES (v, now(), ms, p_trigger)
        ON CONFLICT ON CONSTRAINT refreshed_at_pkey DO UPDATE
           SET refreshed_at = EXCLUDED.refreshed_at, duration_ms = EXCLUDED.duration_ms, trigger = EXCLUDED.trigger;
        done := done || jsonb_build_object(v, ms);
    END LOOP;
    RETURN jsonb_build_object('refreshed', true, 'views_ms', done, 'sealing', sealed,
                              'total_ms', round(extract(epoch FROM clock_timestamp() - started) * 1000, 1));
END
$$;
COMMENT ON FUNCTION metrics.refresh_all(text) IS
    'Refreshes every metrics view CONCURRENTLY unless another refresh is running. The app''s scheduler calls it '
    'as its login role; admins call api.refresh_metrics.';
REVOKE EXECUTE ON FUNCTION metrics.refresh_all(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA metrics TO dl_authenticator;
GRANT EXECUTE ON FUNCTION metrics.refresh_all(text) TO dl_authenticator;

CREATE OR REPLACE FUNCTION api.refresh_metrics()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    out jsonb;
BEGIN
    PERFORM core.require_role('admin');
    out := metrics.refresh_all('admin');
    PERFORM core.audit('refresh_metrics', 'metrics', NULL, NULL, out);
    RETURN out;
END
$$;
COMMENT ON FUNCTION api.refresh_metrics() IS
    'Admin: refreshes all metrics views now (they also refresh on a schedule); {refreshed: false} when a refresh '
    'is already running. Returns the milliseconds each view took.';

CREATE OR REPLACE FUNCTION core.metrics_rows(p_project bigint, p_view text) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
-- One view's rows for a project, and when it was refreshed. p_view must be one of core.metrics_views().
DECLARE
    rows jsonb;
BEGIN
    EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(m) - ''project_id''), ''[]'') FROM metrics.%I m '
                   'WHERE m.project_id = $1', p_view) INTO rows USING p_project;
    RETURN jsonb_build_object('view', p_view, 'project_id', p_project, 'rows', rows,
                              'refreshed_at', (SELECT r.refreshed_at FROM metrics.refreshed_at r
                                                WHERE r.view_name = p_view));
END
$$;

CREATE OR REPLACE FUNCTION api.metrics(project_id bigint, view text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- Analysts (and admins) of the project's organization, and the project's admins; anyone else: not found.
DECLARE
    me bigint := core.require_signed_in();
BEGIN
    IF NOT (project_id = ANY (auth.analyst_projects()) OR project_id = ANY (auth.projects_as('admin'))) THEN
        RAISE EXCEPTION 'project % not found', project_id USING ERRCODE = 'P0002';
    END IF;
    IF view IS NULL THEN  -- the whole dashboard in one call
        RETURN (SELECT jsonb_object_agg(v, core.metrics_rows(project_id, v)) FROM unnest(core.metrics_views()) v);
    END IF;
    IF NOT view = ANY (core.metrics_views()) THEN
        PERFORM core.invalid('view', 'must be one of ' || array_to_string(core.metrics_views(), ', '));
    END IF;
    RETURN core.metrics_rows(project_id, view);
END
$$;
COMMENT ON FUNCTION api.metrics(bigint, text) IS
    'Admin of the project, or analyst of its organization: {view, rows, refreshed_at} of one metrics view for a project, or '
    'without view an object of every view. Views: queue_by_status, annotator_daily, review_outcome, '
    'class_distribution, flags_by_reason, throughput, agreement_pair, agreement_project, gold_accuracy, '
    'review_hints.';

GRANT EXECUTE ON FUNCTION api.refresh_metrics() TO dl_admin;
GRANT EXECUTE ON FUNCTION api.metrics(bigint, text) TO dl_admin, dl_analyst;
