-- What analysts query (psql, BI tools, the dashboard's SQL): one view per materialized view of schema metrics,
-- keeping the rows of the projects whose organizations the caller is analyst (or admin) of. security_barrier:
-- no function an analyst writes into a WHERE clause sees a row before the filter has run. The views run with
-- their owner's right to read metrics.*, which analysts themselves no longer have.
DO $$
DECLARE
    v text;
BEGIN
    FOR v IN SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'metrics' AND c.relkind = 'm' ORDER BY 1 LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                        WHERE a.attrelid = format('metrics.%I', v)::regclass AND a.attname = 'project_id') THEN
            RAISE EXCEPTION 'metrics.% has no project_id column: analysts could not be kept to their organizations', v;
        END IF;
        EXECUTE format('CREATE OR REPLACE VIEW analytics.%I WITH (security_barrier) AS '
                       'SELECT * FROM metrics.%I WHERE project_id = ANY (auth.analyst_projects())', v, v);
        EXECUTE format('COMMENT ON VIEW analytics.%I IS %L', v,
                       format('metrics.%s for the projects of the organizations you are analyst of.', v));
        EXECUTE format('GRANT SELECT ON analytics.%I TO dl_analyst', v);
    END LOOP;
END
$$;

CREATE OR REPLACE VIEW analytics.refreshed_at AS SELECT r.view_name, r.refreshed_at FROM metrics.refreshed_at r;
COMMENT ON VIEW analytics.refreshed_at IS 'When each metrics view was last refreshed.';
GRANT SELECT ON analytics.refreshed_at TO dl_analyst;
