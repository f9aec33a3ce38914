-- Who looked at what: every read of an image's bytes (original, thumbnail, standardised crop, DICOM file, frames)
-- and of an item's document is a row of audit.access, written in the transaction that served it (so no
-- acknowledged read goes unrecorded), append-only, partitioned by month so that years of reads stay cheap to keep,
-- query and drop. Organization admins ask "who viewed this image" (api.image_access); analysts read
-- analytics.image_access for their organizations.

CREATE TABLE audit.access (
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    organization_id bigint NOT NULL,
    project_id      bigint NOT NULL,
    image_id        bigint NOT NULL,
    item_id         bigint,
    actor_id        bigint,
    key_id          bigint,
    what            text NOT NULL CHECK (what IN ('original', 'thumb', 'standardised', 'dicom', 'frame', 'item')),
    request_id      text
) PARTITION BY RANGE (at);
COMMENT ON TABLE audit.access IS
    'Every read of image bytes or of an item''s document: who (person or key), what, when, in which request.';
CREATE TABLE audit.access_default PARTITION OF audit.access DEFAULT;
CREATE INDEX access_image_idx ON audit.access (image_id, at);
CREATE INDEX access_actor_idx ON audit.access (actor_id, at);
CREATE INDEX access_organization_idx ON audit.access (organization_id, at);
REVOKE ALL ON audit.access FROM PUBLIC;

-- the month partitions: this one and the next two now; the metrics refresher keeps creating them ahead
CREATE FUNCTION audit.ensure_access_partitions(p_months_ahead integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    m date;
    made integer := 0;
BEGIN
    FOR i IN 0 .. p_months_ahead LOOP
        m := (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i))::date;
        IF to_regclass(format('audit.access_%s', to_char(m, 'YYYY_MM'))) IS NULL THEN
            EXECUTE format('CREATE TABLE audit.%I PARTITION OF audit.access FOR VALUES FROM (%L) TO (%L)',
                           'access_' || to_char(m, 'YYYY_MM'), m::text || ' 00:00:00+00',
                           (m + interval '1 month')::date::text || ' 00:00:00+00');
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END
$$;
COMMENT ON FUNCTION audit.ensure_access_partitions(integer) IS
    'Creates the monthly partitions of audit.access from this month to p_months_ahead ahead; returns how many.';
REVOKE EXECUTE ON FUNCTION audit.ensure_access_partitions(integer) FROM PUBLIC;
SELECT audit.ensure_access_partitions(2);

-- image_file now records the read, so it takes the variant being served (and is no longer STABLE)
DROP FUNCTION IF EXISTS api.image_file(bigint);
