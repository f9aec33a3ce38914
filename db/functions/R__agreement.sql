-- Agreement beyond kappa: Krippendorff's alpha for any number of raters per image with missing reads, under the
-- nominal, ordinal, interval and taxonomy metrics (docs/agreement.md has the formulas and a worked example).

-- core.taxonomy_distance, the taxonomy metric, is created by V28 (metrics.agreement_alpha depends on it).

CREATE OR REPLACE FUNCTION core.krippendorff_alpha(p_units bigint[], p_values text[], p_metric text,
                                                   p_order text[] DEFAULT NULL)
RETURNS double precision
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
-- Ratings as parallel arrays (unit = image, value; NULL values are missing reads). Units with fewer than two values
-- are not pairable and left out. Coincidences o_ck = sum over units of m_uc m_uk / (m_u - 1) (c = k:
-- m_uc (m_uc - 1) / (m_u - 1)); n_c = sum_k o_ck; n = sum n_c. alpha = 1 - (n - 1) sum o_ck d_ck / sum n_c n_k d_ck,
-- with the metric's squared difference d: nominal 0/1; interval (c - k)^2 on numbers; ordinal
-- (sum of n_g for g from c to k - (n_c + n_k) / 2)^2 over ranks (p_order, else numeric order when every value is
-- a number, else text order); taxonomy the Wu-Palmer distance of two node ids. NULL when undefined.
DECLARE
    number_re constant text := '^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$';
    observed double precision;
    expected double precision;
    n double precision;
    numeric_values boolean;
BEGIN
    IF p_metric IS NULL OR p_metric NOT IN ('nominal', 'ordinal', 'interval', 'taxonomy') THEN
        PERFORM core.invalid('metric', 'must be nominal, ordinal, interval or taxonomy');
    END IF;
    IF cardinality(p_units) IS DISTINCT FROM cardinality(p_values) THEN
        PERFORM core.invalid('values', 'must pair with units one to one');
    END IF;
    SELECT bool_and(v ~ number_re) INTO numeric_values FROM unnest(p_values) v WHERE v IS NOT NULL;
    IF p_metric = 'interval' AND NOT numeric_values THEN
        PERFORM core.invalid('values', 'the interval metric needs numbers');
    END IF;
    IF p_metric = 'ordinal' AND p_order IS NOT NULL
       AND EXISTS (SELECT 1 FROM unnest(p_values) v WHERE v IS NOT NULL AND NOT v = ANY (p_order)) THEN
        PERFORM core.invalid('values', 'every value must be one of the given order');
    END IF;
    WITH r AS (SELECT t.u, t.v FROM unnest(p_units, p_values) AS t(u, v) WHERE t.v IS NOT NULL AND t.u IS NOT NULL),
         uc AS (SELECT r.u, r.v, count(*)::double precision AS muc, sum(count(*)) OVER (PARTITION BY r.u) AS mu
                  FROM r GROUP BY r.u, r.v),
         o AS (SELECT a.v AS c, b.v AS k,
                      sum(CASE WHEN a.v = b.v THEN a.muc * (a.muc - 1) ELSE a.muc * b.muc END / (a.mu - 1)) AS o
                 FROM uc a JOIN uc b ON b.u = a.u
                WHERE a.mu >= 2
                GROUP BY a.v, b.v),
         nc AS (SELECT o.c, sum(o.o) AS n FROM o GROUP BY o.c),
         -- ranks for the ordinal metric: cum = n_g summed over the values up to and including this one
         ranked AS (SELECT nc.c, nc.n,
                           sum(nc.n) OVER (ORDER BY array_position(p_order, nc.c),
                                                    CASE WHEN numeric_values THEN nc.c::double precision END, nc.c
                                           ROWS UNBOUNDED PRECEDING) AS cum
                      FROM nc),
         d AS (SELECT a.c, b.c AS k, a.n AS nc, b.n AS nk,
                      CASE WHEN a.c = b.c THEN 0
                           WHEN p_metric = 'nominal' THEN 1
                           WHEN p_metric = 'interval' THEN (a.c::double precision - b.c::double precision) ^ 2
                           WHEN p_metric = 'taxonomy' THEN core.taxonomy_distance(a.c::bigint, b.c::bigint)
                           -- ordinal: n_g from the lower to the higher value, less half of each end's own count
                           ELSE (abs(b.cum - a.cum) + CASE WHEN a.cum < b.cum THEN a.n - (a.n + b.n) / 2
                                                           ELSE b.n - (a.n + b.n) / 2 END) ^ 2 END AS d
                 FROM ranked a, ranked b)
    SELECT (SELECT sum(nc.n) FROM nc),
           (SELECT sum(o.o * d.d) FROM o JOIN d ON d.c = o.c AND d.k = o.k),
           (SELECT sum(d.nc * d.nk * d.d) FROM d)
      INTO n, observed, expected;
    IF n IS NULL OR n < 2 OR expected IS NULL OR expected = 0 THEN
        RETURN NULL;
    END IF;
    RETURN 1 - (n - 1) * observed / expected;
END
$$;
COMMENT ON FUNCTION core.krippendorff_alpha(bigint[], text[], text, text[]) IS
    'Krippendorff''s alpha of ratings given as parallel arrays (unit, value; NULL = missing) under the nominal, '
    'ordinal (ranks from p_order or the values'' order), interval or taxonomy (Wu-Palmer) metric; NULL when '
    'undefined (fewer than two pairable values, or no disagreement possible).';

CREATE OR REPLACE FUNCTION core.mask_overlap(p_a jsonb, p_b jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
-- Two masks of the same size (COCO RLE {size, counts}, already checked): pixels set in both, in each, and the Dice
-- (2|A∩B| / (|A| + |B|)) and IoU (|A∩B| / |A∪B|). Walks both run lists once (two pointers over the foreground
-- intervals), so the cost is the number of runs, not of pixels.
DECLARE
    ra bigint[] := core.rle_counts(p_a ->> 'counts');
    rb bigint[] := core.rle_counts(p_b ->> 'counts');
    i integer := 2;  -- 1-based index of the current foreground run (even positions)
    j integer := 2;
    sa bigint;  -- start of A's current foreground run
    sb bigint;
    area_a bigint := 0;
    area_b bigint := 0;
    inter bigint := 0;
BEGIN
    IF p_a -> 'size' IS DISTINCT FROM p_b -> 'size' THEN
        PERFORM core.invalid('rle.size', 'the two masks must have the same size');
    END IF;
    SELECT coalesce(sum(r) FILTER (WHERE n % 2 = 0), 0) INTO area_a FROM unnest(ra) WITH ORDINALITY AS t(r, n);
    SELECT coalesce(sum(r) FILTER (WHERE n % 2 = 0), 0) INTO area_b FROM unnest(rb) WITH ORDINALITY AS t(r, n);
    sa := ra[1];
    sb := rb[1];
    WHILE i <= cardinality(ra) AND j <= cardinality(rb) LOOP
        inter := inter + greatest(0, least(sa + ra[i], sb + rb[j]) - greatest(sa, sb));
        IF sa + ra[i] <= sb + rb[j] THEN  -- A's run ends first: move to A's next foreground run
            sa := sa + ra[i] + coalesce(ra[i + 1], 0);
            i := i + 2;
        ELSE
            sb := sb + rb[j] + coalesce(rb[j + 1], 0);
            j := j + 2;
        END IF;
    END LOOP;
    RETURN jsonb_build_object(
        'intersection_px', inter, 'area_a_px', area_a, 'area_b_px', area_b,
        'dice', CASE WHEN area_a + area_b > 0 THEN 2.0 * inter / (area_a + area_b) END,
        'iou', CASE WHEN area_a + area_b - inter > 0 THEN inter::numeric / (area_a + area_b - inter) END);
END
$$;
COMMENT ON FUNCTION core.mask_overlap(jsonb, jsonb) IS
    'Pixels two same-size COCO RLE masks share, each one''s area, Dice and IoU (full precision).';

CREATE OR REPLACE FUNCTION core.alpha_bootstrap(p_units bigint[], p_values text[], p_metric text,
                                                p_resamples integer DEFAULT 1000, p_seed bigint DEFAULT 1)
RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
-- A percentile bootstrap over images for Krippendorff's alpha: each resample draws as many pairable images as there
-- are, with replacement, and sums their coincidences weighted by how often each was drawn. Draws come from
-- hashint8extended(resample * 2^20 + draw, seed), so the same data and seed give the same interval whatever the
-- plan. Nominal, interval and taxonomy metrics (their differences do not depend on the resample's marginals).
DECLARE
    images integer;
    result jsonb;
BEGIN
    IF p_metric IS NULL OR p_metric NOT IN ('nominal', 'interval', 'taxonomy') THEN
        PERFORM core.invalid('metric', 'the bootstrap supports nominal, interval and taxonomy');
    END IF;
    IF p_resamples IS NULL OR p_resamples NOT BETWEEN 100 AND 10000 THEN
        PERFORM core.invalid('resamples', 'must be between 100 and 10000');
    END IF;
    WITH r AS (SELECT t.u, t.v FROM unnest(p_units, p_values) AS t(u, v) WHERE t.v IS NOT NULL AND t.u IS NOT NULL),
         uc AS (SELECT r.u, r.v, count(*)::double precision AS muc, sum(count(*)) OVER (PARTITION BY r.u) AS mu
                  FROM r GROUP BY r.u, r.v)
    SELECT count(DISTINCT uc.u) INTO images FROM uc WHERE uc.mu >= 2;
    IF images < 2 THEN
        RETURN jsonb_build_object('alpha', core.krippendorff_alpha(p_units, p_values, p_metric), 'low', NULL,
                                  'high', NULL, 'images', images, 'resamples', p_resamples, 'seed', p_seed);
    END IF;
    WITH r AS (SELECT t.u, t.v FROM unnest(p_units, p_values) AS t(u, v) WHERE t.v IS NOT NULL AND t.u IS NOT NULL),
         uc AS (SELECT r.u, r.v, count(*)::double precision AS muc, sum(count(*)) OVER (PARTITION BY r.u) AS mu
                  FROM r GROUP BY r.u, r.v),
         units AS (SELECT u, row_number() OVER (ORDER BY u) - 1 AS idx
                     FROM (SELECT DISTINCT uc.u FROM uc WHERE uc.mu >= 2) x),
         contrib AS (SELECT a.u, a.v AS c, b.v AS k,
                            CASE WHEN a.v = b.v THEN a.muc * (a.muc - 1) ELSE a.muc * b.muc END / (a.mu - 1) AS o
                       FROM uc a JOIN uc b ON b.u = a.u WHERE a.mu >= 2),
         vals AS (SELECT DISTINCT c FROM contrib),
         delta AS (SELECT a.c, b.c AS k,
                          CASE WHEN a.c = b.c THEN 0
                               WHEN p_metric = 'nominal' THEN 1
                               WHEN p_metric = 'interval' THEN (a.c::double precision - b.c::double precision) ^ 2
                               ELSE core.taxonomy_distance(a.c::bigint, b.c::bigint) END AS d
                     FROM vals a, vals b),
         draws AS (SELECT s.b, abs(hashint8extended(s.b::bigint * 1048576 + i, p_seed)) % images AS idx, count(*) AS w
                     FROM generate_series(1, p_resamples) s(b), generate_series(1, images) i
                    GROUP BY 1, 2),
         o AS (SELECT d.b, c.c, c.k, sum(d.w * c.o) AS o
                 FROM draws d JOIN units un ON un.idx = d.idx JOIN contrib c ON c.u = un.u
                GROUP BY d.b, c.c, c.k),
         nc AS (SELECT o.b, o.c, sum(o.o) AS n FROM o GROUP BY o.b, o.c),
         per AS (SELECT o.b, sum(o.o * dl.d) AS observed FROM o JOIN delta dl ON dl.c = o.c AND dl.k = o.k GROUP BY o.b),
         expd AS (SELECT a.b, sum(a.n * b2.n * dl.d) AS expected
                   FROM nc a JOIN nc b2 ON b2.b = a.b JOIN delta dl ON dl.c = a.c AND dl.k = b2.c GROUP BY a.b),
         tot AS (SELECT nc.b, sum(nc.n) AS n FROM nc GROUP BY nc.b),
         alphas AS (SELECT CASE WHEN e.expected > 0 THEN 1 - (t.n - 1) * p.observed / e.expected END AS alpha
                      FROM per p JOIN expd e USING (b) JOIN tot t USING (b))
    SELECT jsonb_build_object(
               'alpha', core.krippendorff_alpha(p_units, p_values, p_metric),
               'low', percentile_cont(0.025) WITHIN GROUP (ORDER BY alphas.alpha),
               'high', percentile_cont(0.975) WITHIN GROUP (ORDER BY alphas.alpha),
               'images', images, 'resamples', p_resamples, 'seed', p_seed,
               'undefined_resamples', count(*) FILTER (WHERE alphas.alpha IS NULL))
      INTO result FROM alphas;
    RETURN result;
END
$$;
COMMENT ON FUNCTION core.alpha_bootstrap(bigint[], text[], text, integer, bigint) IS
    'Krippendorff''s alpha with a seeded, reproducible 95 % percentile bootstrap interval over images: {alpha, low, '
    'high, images, resamples, seed, undefined_resamples}.';

CREATE OR REPLACE FUNCTION api.agreement_interval(project_id bigint, dimension text DEFAULT 'class',
                                                  metric text DEFAULT 'nominal', resamples integer DEFAULT 1000,
                                                  seed bigint DEFAULT 1)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    units bigint[];
    labels text[];
    min_images integer;
    out jsonb;
BEGIN
    PERFORM core.require_signed_in();
    IF NOT (project_id = ANY (auth.analyst_projects()) OR project_id = ANY (auth.projects_as('admin'))) THEN
        RAISE EXCEPTION 'project % not found', project_id USING ERRCODE = 'P0002';
    END IF;
    metric := coalesce(metric, 'nominal');
    -- the class, or a categorical descriptor of the project's schema: anything else is a mistake, not zero images
    IF dimension IS NULL OR NOT (dimension = 'class'
            OR EXISTS (SELECT 1 FROM core.descriptor_field d WHERE d.project_id = agreement_interval.project_id
                          AND 'descriptor:' || d.key = dimension)
            OR EXISTS (SELECT 1 FROM core.final_label f WHERE f.project_id = agreement_interval.project_id
                          AND f.dimension = agreement_interval.dimension)) THEN
        PERFORM core.invalid('dimension', 'must be class or descriptor:<key> of this project');
    END IF;
    SELECT array_agg(f.image_id), array_agg(f.label) INTO units, labels
      FROM core.final_label f
     WHERE f.project_id = agreement_interval.project_id AND f.dimension = agreement_interval.dimension AND f.n >= 2;
    SELECT p.agreement_min_shared INTO min_images FROM core.project p WHERE p.id = agreement_interval.project_id;
    out := core.alpha_bootstrap(coalesce(units, '{}'), coalesce(labels, '{}'), metric, resamples, seed);
    RETURN out || jsonb_build_object('project_id', project_id, 'dimension', dimension, 'metric', metric,
                                     'sufficient', (out ->> 'images')::integer >= min_images);
END
$$;
COMMENT ON FUNCTION api.agreement_interval(bigint, text, text, integer, bigint) IS
    'Admins of the project and analysts of its organization: Krippendorff''s alpha of a dimension (class, '
    'descriptor:<key>) over approved items, with a seeded 95 % bootstrap interval over images (default 1,000 '
    'resamples, seed 1: the same data and seed give the same interval); metric nominal, taxonomy (class) or interval. '
    'images says how many images lie behind it; sufficient is false below the project''s agreement_min_shared.';
GRANT EXECUTE ON FUNCTION api.agreement_interval(bigint, text, text, integer, bigint) TO dl_admin, dl_analyst;
