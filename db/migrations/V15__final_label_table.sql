-- The final labels of approved items, as a table a trigger keeps current (core.final_rating was a view joining
-- every done item to its last revision and expanding its descriptors). The agreement views read it at every
-- refresh: one compact row per (item, dimension) instead of a million items joined to three million revisions.

CREATE TABLE core.final_label (
    item_id    bigint NOT NULL REFERENCES core.work_item (id),
    dimension  text   NOT NULL,          -- 'class' or 'descriptor:<key>'
    project_id bigint NOT NULL,
    image_id   bigint NOT NULL,
    rater_id   bigint NOT NULL,
    label      text   NOT NULL,
    PRIMARY KEY (item_id, dimension)
);
CREATE INDEX final_label_image_idx ON core.final_label (project_id, dimension, image_id, rater_id);
COMMENT ON TABLE core.final_label IS
    'Final labels of approved items (gold checks excluded) per dimension: the class and each categorical '
    'descriptor of the last revision. Written when an item becomes done (trigger); the input of agreement.';

-- The rows of the given items (those done and not gold checks): used by the trigger and by bulk rebuilds.
CREATE FUNCTION core.final_label_rows(p_items bigint[])
RETURNS SETOF core.final_label
LANGUAGE sql STABLE SET search_path = '' AS $$
    SELECT w.id, 'class', w.project_id, w.image_id, r.author_id, r.class_id::text
      FROM core.work_item w
      JOIN core.annotation_revision r ON r.item_id = w.id AND r.revision_seq = w.last_revision_seq
     WHERE w.id = ANY (p_items) AND w.status = 'done' AND NOT w.gold_check AND r.class_id IS NOT NULL
    UNION ALL
    SELECT w.id, 'descriptor:' || d.key, w.project_id, w.image_id, r.author_id, d.value #>> '{}'
      FROM core.work_item w
      JOIN core.annotation_revision r ON r.item_id = w.id AND r.revision_seq = w.last_revision_seq
     CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(r.content -> 'descriptors') = 'object'
                                        THEN r.content -> 'descriptors' ELSE '{}' END) AS d
     WHERE w.id = ANY (p_items) AND w.status = 'done' AND NOT w.gold_check
       AND jsonb_typeof(d.value) IN ('string', 'boolean')
$$;

CREATE FUNCTION core.rebuild_final_labels(p_project bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- Recomputes the table (one project, or all): after a bulk load that bypassed triggers, or to check it.
DECLARE
    n bigint;
BEGIN
    DELETE FROM core.final_label f WHERE p_project IS NULL OR f.project_id = p_project;
    INSERT INTO core.final_label
    SELECT * FROM core.final_label_rows(ARRAY(SELECT w.id FROM core.work_item w
                                               WHERE w.status = 'done' AND (p_project IS NULL
                                                                             OR w.project_id = p_project)));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION core.rebuild_final_labels(bigint) IS
    'Recomputes core.final_label for one project or all; returns the rows written.';

CREATE FUNCTION core.keep_final_labels() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    IF NEW.status = 'done' THEN
        INSERT INTO core.final_label SELECT * FROM core.final_label_rows(ARRAY[NEW.id]) ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM core.final_label f WHERE f.item_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;
-- Row level with a WHEN clause: evaluated without a function call, so claims, heartbeats and submits (the hot
-- path) pay nothing; only an item entering or leaving done runs it.
CREATE TRIGGER keep_final_labels AFTER UPDATE OF status ON core.work_item
    FOR EACH ROW WHEN ((OLD.status = 'done') <> (NEW.status = 'done'))
    EXECUTE FUNCTION core.keep_final_labels();

SELECT core.rebuild_final_labels();

CREATE OR REPLACE VIEW core.final_rating AS
    SELECT f.project_id, f.dimension, f.image_id, f.rater_id, f.label FROM core.final_label f;
COMMENT ON VIEW core.final_rating IS 'Final labels of approved items per dimension (class, descriptor:<key>).';

-- Fleiss' kappa per project in one ordered pass over the table, in place of one array of every rating of a
-- project: for each rating of an image rated n >= 2 times, c = how many of those n share its label. Then per
-- image P = sum(c - 1) / (n (n - 1)); the mean of P over images is sum over ratings of (c - 1) / (n (n - 1))
-- divided by the number of images (= sum of 1/n); Pe = sum over labels of their share squared. The same
-- formula as core.fleiss_kappa, the worked-example reference (db/tests/metrics.sql checks that they agree).
DROP MATERIALIZED VIEW metrics.agreement_project;
CREATE MATERIALIZED VIEW metrics.agreement_project AS
    WITH rated AS (
        SELECT * FROM (
            SELECT project_id, dimension, image_id, rater_id, label,
                   count(*) OVER (PARTITION BY project_id, dimension, image_id) AS n,
                   count(*) OVER (PARTITION BY project_id, dimension, image_id, label) AS c
              FROM core.final_label) x
         WHERE n >= 2),
    totals AS (
        SELECT project_id, dimension, round(sum(1.0::float8 / n))::bigint AS images, count(*) AS ratings,
               sum((c - 1)::float8 / (n * (n - 1))) AS agreement_sum
          FROM rated GROUP BY project_id, dimension),
    shares AS (
        SELECT k.project_id, k.dimension, sum((k.k::float8 / t.ratings) ^ 2) AS pe
          FROM (SELECT project_id, dimension, label, count(*) AS k FROM rated GROUP BY 1, 2, 3) k
          JOIN totals t USING (project_id, dimension)
         GROUP BY k.project_id, k.dimension),
    raters AS (
        SELECT project_id, dimension, count(*) AS raters
          FROM (SELECT DISTINCT project_id, dimension, rater_id FROM rated) d GROUP BY project_id, dimension)
    SELECT t.project_id, t.dimension, t.images, t.ratings, r.raters,
           round(CASE WHEN s.pe >= 1 - 1e-12 THEN NULL
                      ELSE (t.agreement_sum / t.images - s.pe) / (1 - s.pe) END::numeric, 4) AS fleiss_kappa
      FROM totals t JOIN shares s USING (project_id, dimension) JOIN raters r USING (project_id, dimension);
CREATE UNIQUE INDEX ON metrics.agreement_project (project_id, dimension);
COMMENT ON MATERIALIZED VIEW metrics.agreement_project IS
    'Fleiss'' kappa per project over images annotated more than once, for the class and each categorical '
    'descriptor.';
GRANT SELECT ON metrics.agreement_project TO dl_analyst, dl_admin;
