-- Krippendorff's alpha per project and dimension (docs/agreement.md), refreshed with the other metrics. Read from
-- the tables the approvals keep current (core.final_label's n and c, core.final_label_pair), in one pass each:
-- nominal alpha = 1 - (N - 1) sum over ratings of (n - c) / (n - 1) / (N^2 - sum over labels of k^2), with N the
-- ratings of images rated at least twice, n an image's ratings, c those sharing the rating's label, k a label's
-- ratings; the taxonomy metric weighs each pair of different classes by their Wu-Palmer distance, pairs grouped by
-- (labels, n) first so the distance is computed once per pair of classes. Full precision: round in the page.
CREATE FUNCTION core.taxonomy_distance(p_a bigint, p_b bigint) RETURNS double precision
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
-- Wu-Palmer distance between two taxonomy nodes: 1 - 2 depth(lowest common ancestor) / (depth(a) + depth(b)),
-- depths counted from a virtual root (top-level nodes have depth 1). 0 for the same node, 1 for nodes under
-- different top-level branches; a more or less specific answer on the same branch lies between.
DECLARE
    pa jsonb;
    pb jsonb;
    common integer := 0;
BEGIN
    IF p_a = p_b THEN
        RETURN 0;
    END IF;
    SELECT n.path INTO pa FROM core.taxonomy_node n WHERE n.id = p_a;
    SELECT n.path INTO pb FROM core.taxonomy_node n WHERE n.id = p_b;
    IF pa IS NULL OR pb IS NULL THEN
        RETURN 1;
    END IF;
    WHILE common < least(jsonb_array_length(pa), jsonb_array_length(pb))
          AND pa -> common -> 'id' = pb -> common -> 'id' LOOP
        common := common + 1;
    END LOOP;
    RETURN 1 - 2.0 * common / (jsonb_array_length(pa) + jsonb_array_length(pb));
END
$$;
COMMENT ON FUNCTION core.taxonomy_distance(bigint, bigint) IS
    'Wu-Palmer distance between two taxonomy nodes (0 same node, 1 different top-level branches): the taxonomy '
    'metric of Krippendorff''s alpha.';

CREATE MATERIALIZED VIEW metrics.agreement_alpha AS
    WITH totals AS (
        SELECT project_id, dimension, round(sum(1.0::float8 / n))::bigint AS images, count(*) AS ratings,
               sum((n - c)::float8 / (n - 1)) AS disagreement
          FROM core.final_label WHERE n >= 2 GROUP BY project_id, dimension),
    labels AS (
        SELECT project_id, dimension, label, count(*)::float8 AS k
          FROM core.final_label WHERE n >= 2 GROUP BY project_id, dimension, label),
    nominal AS (
        SELECT t.project_id, t.dimension, 'nominal'::text AS metric, t.images, t.ratings,
               CASE WHEN t.ratings::float8 ^ 2 - s.kk <= 0 THEN NULL
                    ELSE 1 - (t.ratings - 1) * t.disagreement / (t.ratings::float8 ^ 2 - s.kk) END AS alpha
          FROM totals t
          JOIN (SELECT project_id, dimension, sum(k * k) AS kk FROM labels GROUP BY 1, 2) s USING (project_id, dimension)),
    class_pairs AS (  -- unordered pairs of different classes within an image, weighted 1 / (n - 1)
        SELECT p.project_id, p.label_a, p.label_b, sum(1.0::float8 / (f.n - 1)) AS w
          FROM core.final_label_pair p
          JOIN core.final_label f ON f.image_id = p.image_id AND f.dimension = 'class' AND f.rater_id = p.rater_a
         WHERE p.dimension = 'class' AND p.label_a <> p.label_b AND f.n >= 2
         GROUP BY p.project_id, p.label_a, p.label_b),
    taxonomy AS (
        SELECT t.project_id, t.dimension, 'taxonomy'::text AS metric, t.images, t.ratings,
               CASE WHEN coalesce(e.expected, 0) <= 0 THEN NULL
                    ELSE 1 - (t.ratings - 1) * coalesce(o.observed, 0) / e.expected END AS alpha
          FROM totals t
          LEFT JOIN (SELECT project_id, sum(2 * w * core.taxonomy_distance(label_a::bigint, label_b::bigint)) AS observed
                       FROM class_pairs GROUP BY project_id) o USING (project_id)
          LEFT JOIN (SELECT a.project_id, sum(a.k * b.k * core.taxonomy_distance(a.label::bigint, b.label::bigint)) AS expected
                       FROM labels a JOIN labels b ON b.project_id = a.project_id AND b.dimension = 'class'
                                                  AND b.label <> a.label
                      WHERE a.dimension = 'class' GROUP BY a.project_id) e USING (project_id)
         WHERE t.dimension = 'class')
    SELECT * FROM nominal UNION ALL SELECT * FROM taxonomy;
CREATE UNIQUE INDEX ON metrics.agreement_alpha (project_id, dimension, metric);
COMMENT ON MATERIALIZED VIEW metrics.agreement_alpha IS
    'Krippendorff''s alpha per project over images rated more than once (any number of raters, missing reads '
    'allowed): nominal for the class and each categorical descriptor, and the taxonomy metric (Wu-Palmer distance) '
    'for the class. Full precision; images and ratings say how much lies behind each figure.';
