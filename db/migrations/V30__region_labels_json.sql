-- api.region_labels and api.set_region_labels answer JSON like every api function (a text[] reached HTTP as a
-- PostgreSQL array literal); R__regions.sql creates them again with RETURNS jsonb.
DROP FUNCTION IF EXISTS api.region_labels(bigint);
DROP FUNCTION IF EXISTS api.set_region_labels(bigint, text[]);
