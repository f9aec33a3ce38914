-- Metrics refresh in seconds at a million items (issue: metrics refresh under 10 s).
--
-- 1. Sealed days. Revisions, reviews and flags are append-only and dated by their own creation, so the per-day,
--    per-hour and all-time counts of a day that is over never change. Each refresh first "seals" the days that
--    ended (an hour ago or more: no transaction that began in them can still commit) into core.sealed_* tables,
--    once; the views then read the sealed rows plus the events since. annotator_daily, review_outcome and
--    throughput no longer scan millions of events at every refresh.
--    Medians of sealed days: annotator_daily's are per day, computed exactly when the day is sealed;
--    review_outcome's median turnaround is all-time, so it is kept as counts per turnaround value (to the second
--    under an hour, to the minute under a day, to the hour beyond) and the median read from them.
-- 2. Agreement inputs kept up to date as items are approved: each final label knows how many final labels its
--    image has in that dimension (n) and how many share its label (c) — what Fleiss' kappa needs — and each pair of
--    raters of an image is a row of core.final_label_pair — what Cohen's kappa needs. The agreement views become
--    single aggregations instead of window sorts and self-joins of every final label.

-- 1. sealed days ------------------------------------------------------------------------------------------------
CREATE INDEX annotation_revision_created_idx ON core.annotation_revision (created_at);
CREATE INDEX review_created_idx ON core.review (created_at);
CREATE INDEX work_item_flag_created_idx ON core.work_item_flag (created_at);

CREATE TABLE core.metrics_seal (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    until     timestamptz NOT NULL,     -- events created before this instant are in the sealed tables
    sealed_at timestamptz
);
INSERT INTO core.metrics_seal (until) VALUES ('-infinity');
COMMENT ON TABLE core.metrics_seal IS
    'Events (revisions, reviews, flags) created before until are counted in core.sealed_*; the metrics views add '
    'the events since. metrics.reseal() starts again from nothing (after a backfill of old events).';

CREATE TABLE core.sealed_annotator_day (
    project_id bigint NOT NULL, annotator_id bigint NOT NULL, day date NOT NULL,
    submitted bigint NOT NULL, approved_first_review bigint NOT NULL, changes_requested bigint NOT NULL,
    rejected_images bigint NOT NULL, median_active_seconds numeric, items_per_hour numeric,
    PRIMARY KEY (project_id, annotator_id, day)
);
CREATE TABLE core.sealed_review_count (
    project_id bigint NOT NULL, dimension text NOT NULL, subject_id bigint NOT NULL,
    reviews bigint NOT NULL, approved bigint NOT NULL, changes_requested bigint NOT NULL,
    PRIMARY KEY (project_id, dimension, subject_id)
);
CREATE TABLE core.sealed_review_turnaround (
    project_id bigint NOT NULL, dimension text NOT NULL, subject_id bigint NOT NULL,
    seconds bigint NOT NULL, reviews bigint NOT NULL,
    PRIMARY KEY (project_id, dimension, subject_id, seconds)
);
CREATE TABLE core.sealed_throughput_hour (
    project_id bigint NOT NULL, hour timestamptz NOT NULL,
    submitted bigint NOT NULL, approved bigint NOT NULL, changes_requested bigint NOT NULL, rejected bigint NOT NULL,
    PRIMARY KEY (project_id, hour)
);
COMMENT ON TABLE core.sealed_annotator_day IS 'metrics.annotator_daily rows of sealed days (core.metrics_seal).';
COMMENT ON TABLE core.sealed_review_count IS 'metrics.review_outcome counts over sealed days.';
COMMENT ON TABLE core.sealed_review_turnaround IS
    'Reviews over sealed days per turnaround value (core.turnaround_bucket), for review_outcome''s median.';
COMMENT ON TABLE core.sealed_throughput_hour IS 'metrics.throughput hours of sealed days.';

-- A turnaround as kept for the all-time median: whole seconds under an hour, minutes under a day, hours beyond.
CREATE FUNCTION core.turnaround_bucket(seconds numeric) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = '' AS $$
    SELECT CASE WHEN seconds < 3600 THEN round(seconds)
                WHEN seconds < 86400 THEN round(seconds / 60) * 60
                ELSE round(seconds / 3600) * 3600 END::bigint
$$;

-- The rows of metrics.annotator_daily for events created in [p_from, p_to): the view's definition in V10 with
-- the time range added. Used to seal days and for the live part of the view. PL/pgSQL (here and below) so that
-- each query is planned knowing the range: a plan for "some range" scans whole tables; one for "since midnight"
-- reads a day through the created_at indexes.
CREATE FUNCTION core.annotator_day_rows(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (project_id bigint, annotator_id bigint, day date, submitted bigint, approved_first_review bigint,
               changes_requested bigint, rejected_images bigint, median_active_seconds numeric,
               items_per_hour numeric)
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH sub AS (
        SELECT w.project_id, r.author_id AS annotator_id, (r.created_at AT TIME ZONE 'UTC')::date AS day,
               count(*) AS submitted,
               round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.created_at - r.locked_at))
                     ::numeric, 1) AS median_active_seconds,
               round(count(*) / nullif(sum(extract(epoch FROM r.created_at - r.locked_at)) / 3600, 0), 1)
                   AS items_per_hour
          FROM core.annotation_revision r JOIN core.work_item w ON w.id = r.item_id
         WHERE r.created_at >= p_from AND r.created_at < p_to
         GROUP BY 1, 2, 3),
    rev AS (
        SELECT w.project_id, r.author_id AS annotator_id, (v.created_at AT TIME ZONE 'UTC')::date AS day,
               count(*) FILTER (WHERE v.decision = 'approved' AND v.stage = 1 AND r.revision_seq = 1)
                   AS approved_first_review,
               count(*) FILTER (WHERE v.decision = 'changes_requested') AS changes_requested
          FROM core.review v JOIN core.annotation_revision r ON r.id = v.revision_id
          JOIN core.work_item w ON w.id = v.item_id
         WHERE v.created_at >= p_from AND v.created_at < p_to
         GROUP BY 1, 2, 3),
    rej AS (
        SELECT w.project_id, f.raised_by AS annotator_id, (f.created_at AT TIME ZONE 'UTC')::date AS day,
               count(*) AS rejected_images
          FROM core.work_item_flag f JOIN core.work_item w ON w.id = f.item_id
         WHERE f.created_at >= p_from AND f.created_at < p_to
         GROUP BY 1, 2, 3)
    SELECT project_id, annotator_id, day,
           coalesce(sub.submitted, 0), coalesce(rev.approved_first_review, 0), coalesce(rev.changes_requested, 0),
           coalesce(rej.rejected_images, 0), sub.median_active_seconds, sub.items_per_hour
      FROM sub FULL JOIN rev USING (project_id, annotator_id, day) FULL JOIN rej USING (project_id, annotator_id, day);
END
$$;

-- Each review created in [p_from, p_to) once per dimension it is counted under: its annotator (whose revision),
-- its class (the revision's; 0 for none) and its reviewer, with its turnaround bucket.
CREATE FUNCTION core.review_facts(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (project_id bigint, dimension text, subject_id bigint, approved boolean, changes_requested boolean,
               seconds bigint)
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT w.project_id, d.dimension, d.subject_id, v.decision = 'approved', v.decision = 'changes_requested',
           core.turnaround_bucket(extract(epoch FROM v.created_at - r.created_at))
      FROM core.review v JOIN core.annotation_revision r ON r.id = v.revision_id
      JOIN core.work_item w ON w.id = v.item_id
     CROSS JOIN LATERAL (VALUES ('annotator', r.author_id), ('class', coalesce(r.class_id, 0)),
                                ('reviewer', v.reviewer_id)) AS d (dimension, subject_id)
     WHERE v.created_at >= p_from AND v.created_at < p_to;
END
$$;

-- metrics.throughput's hours for events created in [p_from, p_to).
CREATE FUNCTION core.throughput_hour_rows(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (project_id bigint, hour timestamptz, submitted bigint, approved bigint, changes_requested bigint,
               rejected bigint)
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT project_id, hour, sum(submitted)::bigint, sum(approved)::bigint, sum(changes_requested)::bigint,
           sum(rejected)::bigint
      FROM (SELECT w.project_id, date_trunc('hour', r.created_at, 'UTC') AS hour, count(*) AS submitted,
                   0::bigint AS approved, 0::bigint AS changes_requested, 0::bigint AS rejected
              FROM core.annotation_revision r JOIN core.work_item w ON w.id = r.item_id
             WHERE r.created_at >= p_from AND r.created_at < p_to GROUP BY 1, 2
            UNION ALL
            SELECT w.project_id, date_trunc('hour', v.created_at, 'UTC'), 0,
                   count(*) FILTER (WHERE v.decision = 'approved'),
                   count(*) FILTER (WHERE v.decision = 'changes_requested'), 0
              FROM core.review v JOIN core.work_item w ON w.id = v.item_id
             WHERE v.created_at >= p_from AND v.created_at < p_to GROUP BY 1, 2
            UNION ALL
            SELECT w.project_id, date_trunc('hour', f.created_at, 'UTC'), 0, 0, 0, count(*)
              FROM core.work_item_flag f JOIN core.work_item w ON w.id = f.item_id
             WHERE f.created_at >= p_from AND f.created_at < p_to GROUP BY 1, 2) ev
     GROUP BY project_id, hour;
END
$$;

CREATE FUNCTION core.seal_metrics() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- Adds the days that ended an hour ago or more to the sealed tables, once. Called by metrics.refresh_all under
-- its advisory lock. The hour's grace: a transaction stamps its rows with its start time (now()), so a submit that
-- began at 23:59:59 may commit after midnight; none takes an hour.
DECLARE
    s core.metrics_seal;
    cutoff timestamptz := date_trunc('day', now() - interval '1 hour', 'UTC');
BEGIN
    SELECT * INTO s FROM core.metrics_seal FOR UPDATE;
    IF cutoff <= s.until THEN
        RETURN jsonb_build_object('sealed', false, 'until', s.until);
    END IF;
    INSERT INTO core.sealed_annotator_day SELECT * FROM core.annotator_day_rows(s.until, cutoff);
    -- the reviews are read once for both tables (a data-modifying WITH)
    WITH f AS MATERIALIZED (SELECT * FROM core.review_facts(s.until, cutoff)),
    counted AS (
        INSERT INTO core.sealed_review_count AS c
        SELECT f.project_id, f.dimension, f.subject_id, count(*), count(*) FILTER (WHERE f.approved),
               count(*) FILTER (WHERE f.changes_requested)
          FROM f GROUP BY 1, 2, 3
        ON CONFLICT ON CONSTRAINT sealed_review_count_pkey DO UPDATE
           SET reviews = c.reviews + excluded.reviews, approved = c.approved + excluded.approved,
               changes_requested = c.changes_requested + excluded.changes_requested)
    INSERT INTO core.sealed_review_turnaround AS t
    SELECT f.project_id, f.dimension, f.subject_id, f.seconds, count(*) FROM f GROUP BY 1, 2, 3, 4
    ON CONFLICT ON CONSTRAINT sealed_review_turnaround_pkey DO UPDATE SET reviews = t.reviews + excluded.reviews;
    INSERT INTO core.sealed_throughput_hour SELECT * FROM core.throughput_hour_rows(s.until, cutoff);
    UPDATE core.metrics_seal SET until = cutoff, sealed_at = now();
    RETURN jsonb_build_object('sealed', true, 'from', s.until, 'until', cutoff);
END
$$;
COMMENT ON FUNCTION core.seal_metrics() IS
    'Seals the days that ended at least an hour ago into core.sealed_* (once each); returns what it did.';

CREATE FUNCTION metrics.reseal() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- For DBAs after loading or correcting old events: the next refresh recomputes every sealed day from the events.
BEGIN
    PERFORM pg_advisory_xact_lock(4471003002);  -- not while a refresh runs
    TRUNCATE core.sealed_annotator_day, core.sealed_review_count, core.sealed_review_turnaround,
             core.sealed_throughput_hour;
    UPDATE core.metrics_seal SET until = '-infinity', sealed_at = NULL;
END
$$;
COMMENT ON FUNCTION metrics.reseal() IS
    'Forgets the sealed days: the next refresh recomputes them from the events (after a backfill of old events).';
REVOKE EXECUTE ON FUNCTION metrics.reseal() FROM PUBLIC;

-- The three views: sealed rows plus the events since. Same columns, same meaning as V10's.
DROP MATERIALIZED VIEW metrics.annotator_daily;
CREATE MATERIALIZED VIEW metrics.annotator_daily AS
    SELECT * FROM core.sealed_annotator_day
    UNION ALL
    SELECT * FROM core.annotator_day_rows((SELECT until FROM core.metrics_seal), 'infinity');
CREATE UNIQUE INDEX ON metrics.annotator_daily (project_id, annotator_id, day);
COMMENT ON MATERIALIZED VIEW metrics.annotator_daily IS
    'Per annotator and UTC day: revisions submitted, first revisions approved at the first review stage, changes '
    'requested of them, images they rejected, median active time (lock to submit) and items per active hour.';

DROP MATERIALIZED VIEW metrics.review_outcome;
CREATE MATERIALIZED VIEW metrics.review_outcome AS
    WITH live AS (SELECT * FROM core.review_facts((SELECT until FROM core.metrics_seal), 'infinity')),
    counts AS (
        SELECT project_id, dimension, subject_id, sum(reviews)::bigint AS reviews, sum(approved)::bigint AS approved,
               sum(changes_requested)::bigint AS changes_requested
          FROM (SELECT project_id, dimension, subject_id, reviews, approved, changes_requested
                  FROM core.sealed_review_count
                UNION ALL
                SELECT project_id, dimension, subject_id, count(*), count(*) FILTER (WHERE approved),
                       count(*) FILTER (WHERE changes_requested)
                  FROM live GROUP BY 1, 2, 3) c
         GROUP BY 1, 2, 3),
    hist AS (
        SELECT project_id, dimension, subject_id, seconds, sum(reviews) AS n
          FROM (SELECT project_id, dimension, subject_id, seconds, reviews FROM core.sealed_review_turnaround
                UNION ALL
                SELECT project_id, dimension, subject_id, seconds, count(*) FROM live GROUP BY 1, 2, 3, 4) h
         GROUP BY 1, 2, 3, 4),
    ranked AS (
        SELECT h.*, sum(n) OVER w AS upto, sum(n) OVER (PARTITION BY project_id, dimension, subject_id) AS total
          FROM hist h
        WINDOW w AS (PARTITION BY project_id, dimension, subject_id ORDER BY seconds)),
    -- the median as percentile_cont(0.5) takes it: the mean of the values at ranks floor and ceil of (N - 1) / 2
    median AS (
        SELECT project_id, dimension, subject_id,
               round((min(seconds) FILTER (WHERE upto > floor((total - 1) / 2.0))
                      + min(seconds) FILTER (WHERE upto > ceil((total - 1) / 2.0))) / 2.0) AS seconds
          FROM ranked GROUP BY 1, 2, 3)
    SELECT c.project_id, c.dimension, c.subject_id,
           coalesce(u.display_name, n.code || ' ' || n.name, '(none)') AS subject,
           c.reviews, c.approved, c.changes_requested,
           round(c.approved::numeric / c.reviews, 4) AS acceptance_rate, m.seconds AS median_turnaround_seconds
      FROM counts c
      JOIN median m USING (project_id, dimension, subject_id)
      LEFT JOIN auth."user" u ON c.dimension <> 'class' AND u.id = c.subject_id
      LEFT JOIN core.taxonomy_node n ON c.dimension = 'class' AND n.id = c.subject_id;
CREATE UNIQUE INDEX ON metrics.review_outcome (project_id, dimension, subject_id);
COMMENT ON MATERIALIZED VIEW metrics.review_outcome IS
    'Review decisions grouped per annotator (whose revision), per class (the revision''s class) and per reviewer: '
    'reviews, approved, changes requested, acceptance rate, median turnaround from submit to decision (to the '
    'second under an hour, to the minute under a day, to the hour beyond).';

DROP MATERIALIZED VIEW metrics.throughput;
CREATE MATERIALIZED VIEW metrics.throughput AS
    WITH hours AS (
        SELECT * FROM core.sealed_throughput_hour
        UNION ALL
        SELECT * FROM core.throughput_hour_rows((SELECT until FROM core.metrics_seal), 'infinity'))
    SELECT h.project_id, g.granularity, date_trunc(g.granularity, h.hour, 'UTC') AS bucket,
           sum(submitted)::bigint AS submitted, sum(approved)::bigint AS approved,
           sum(changes_requested)::bigint AS changes_requested, sum(rejected)::bigint AS rejected
      FROM hours h CROSS JOIN (VALUES ('hour'), ('day')) AS g (granularity)
     GROUP BY h.project_id, g.granularity, date_trunc(g.granularity, h.hour, 'UTC');
CREATE UNIQUE INDEX ON metrics.throughput (project_id, granularity, bucket);
COMMENT ON MATERIALIZED VIEW metrics.throughput IS
    'Revisions submitted, reviews approving or requesting changes, and images rejected per UTC hour and day.';

-- 2. agreement inputs --------------------------------------------------------------------------------------------
ALTER TABLE core.final_label ADD COLUMN n integer NOT NULL DEFAULT 1, ADD COLUMN c integer NOT NULL DEFAULT 1;
COMMENT ON COLUMN core.final_label.n IS 'How many final labels the image has in this dimension.';
COMMENT ON COLUMN core.final_label.c IS 'How many of them equal this one (itself included).';
CREATE INDEX final_label_image_only_idx ON core.final_label (image_id);

CREATE TABLE core.final_label_pair (
    project_id bigint NOT NULL, dimension text NOT NULL, image_id bigint NOT NULL,
    rater_a bigint NOT NULL, rater_b bigint NOT NULL, label_a text NOT NULL, label_b text NOT NULL,
    CHECK (rater_a < rater_b)
);
CREATE INDEX final_label_pair_image_idx ON core.final_label_pair (image_id);
COMMENT ON TABLE core.final_label_pair IS
    'Each pair of raters of an image (rater_a < rater_b) with their final labels, per dimension: Cohen''s input.';

-- The n, c and pairs of some images, from their final labels: after each change of an image's final labels, and
-- for bulk rebuilds.
CREATE FUNCTION core.recount_final_labels(p_images bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- PL/pgSQL, not SQL: its statements are planned once per session, not at every approval
BEGIN
    UPDATE core.final_label f SET n = x.n, c = x.c
      FROM (SELECT l.item_id, l.dimension,
                   count(*) OVER (PARTITION BY l.image_id, l.dimension) AS n,
                   count(*) OVER (PARTITION BY l.image_id, l.dimension, l.label) AS c
              FROM core.final_label l WHERE l.image_id = ANY (p_images)) x
     WHERE f.item_id = x.item_id AND f.dimension = x.dimension AND (f.n, f.c) IS DISTINCT FROM (x.n, x.c);
    DELETE FROM core.final_label_pair p WHERE p.image_id = ANY (p_images);
    INSERT INTO core.final_label_pair
    SELECT a.project_id, a.dimension, a.image_id, a.rater_id, b.rater_id, a.label, b.label
      FROM core.final_label a
      JOIN core.final_label b ON b.image_id = a.image_id AND b.dimension = a.dimension AND b.rater_id > a.rater_id
     WHERE a.image_id = ANY (p_images);
END
$$;

CREATE OR REPLACE FUNCTION core.keep_final_labels() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    IF NEW.status = 'done' THEN
        INSERT INTO core.final_label SELECT * FROM core.final_label_rows(ARRAY[NEW.id]) ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM core.final_label f WHERE f.item_id = NEW.id;
    END IF;
    PERFORM core.recount_final_labels(ARRAY[NEW.image_id]);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION core.final_label_rows(p_items bigint[])
RETURNS SETOF core.final_label
LANGUAGE sql STABLE SET search_path = '' AS $$
    SELECT w.id, 'class', w.project_id, w.image_id, r.author_id, r.class_id::text, 1, 1
      FROM core.work_item w
      JOIN core.annotation_revision r ON r.item_id = w.id AND r.revision_seq = w.last_revision_seq
     WHERE w.id = ANY (p_items) AND w.status = 'done' AND NOT w.gold_check AND r.class_id IS NOT NULL
    UNION ALL
    SELECT w.id, 'descriptor:' || d.key, w.project_id, w.image_id, r.author_id, d.value #>> '{}', 1, 1
      FROM core.work_item w
      JOIN core.annotation_revision r ON r.item_id = w.id AND r.revision_seq = w.last_revision_seq
     CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(r.content -> 'descriptors') = 'object'
                                        THEN r.content -> 'descriptors' ELSE '{}' END) AS d
     WHERE w.id = ANY (p_items) AND w.status = 'done' AND NOT w.gold_check
       AND jsonb_typeof(d.value) IN ('string', 'boolean')
$$;

CREATE OR REPLACE FUNCTION core.rebuild_final_labels(p_project bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- Recomputes the table (one project, or all), with n, c and the pairs: after a bulk load that bypassed triggers.
DECLARE
    rows bigint;
BEGIN
    DELETE FROM core.final_label f WHERE p_project IS NULL OR f.project_id = p_project;
    DELETE FROM core.final_label_pair p WHERE p_project IS NULL OR p.project_id = p_project;
    INSERT INTO core.final_label
    SELECT x.item_id, x.dimension, x.project_id, x.image_id, x.rater_id, x.label,
           count(*) OVER (PARTITION BY x.image_id, x.dimension),
           count(*) OVER (PARTITION BY x.image_id, x.dimension, x.label)
      FROM core.final_label_rows(ARRAY(SELECT w.id FROM core.work_item w
                                        WHERE w.status = 'done'
                                          AND (p_project IS NULL OR w.project_id = p_project))) x;
    GET DIAGNOSTICS rows = ROW_COUNT;
    INSERT INTO core.final_label_pair
    SELECT a.project_id, a.dimension, a.image_id, a.rater_id, b.rater_id, a.label, b.label
      FROM core.final_label a
      JOIN core.final_label b ON b.image_id = a.image_id AND b.dimension = a.dimension AND b.rater_id > a.rater_id
     WHERE a.n >= 2 AND (p_project IS NULL OR a.project_id = p_project);
    RETURN rows;
END
$$;

SELECT core.rebuild_final_labels();

DROP MATERIALIZED VIEW metrics.agreement_pair;
CREATE MATERIALIZED VIEW metrics.agreement_pair AS
    -- Cohen's kappa from counts: po = agreeing / n, pe = sum over labels of (a's count x b's count) / n^2 — the
    -- formula of core.cohen_kappa (db/tests/metrics.sql checks they agree)
    WITH pairs AS (
        SELECT project_id, dimension, rater_a, rater_b, count(*) AS n,
               count(*) FILTER (WHERE label_a = label_b) AS agreeing
          FROM core.final_label_pair GROUP BY 1, 2, 3, 4),
    a AS (SELECT project_id, dimension, rater_a, rater_b, label_a AS label, count(*) AS k
            FROM core.final_label_pair GROUP BY 1, 2, 3, 4, 5),
    b AS (SELECT project_id, dimension, rater_a, rater_b, label_b AS label, count(*) AS k
            FROM core.final_label_pair GROUP BY 1, 2, 3, 4, 5),
    chance AS (
        SELECT project_id, dimension, rater_a, rater_b, sum(a.k * b.k) AS kk
          FROM a JOIN b USING (project_id, dimension, rater_a, rater_b, label) GROUP BY 1, 2, 3, 4)
    SELECT p.project_id, p.dimension, p.rater_a AS annotator_a, p.rater_b AS annotator_b, p.n AS shared_images,
           round(p.agreeing::numeric / p.n, 4) AS observed_agreement,
           round(CASE WHEN coalesce(c.kk, 0)::numeric / (p.n * p.n) >= 1 THEN NULL
                      ELSE (p.agreeing::numeric / p.n - coalesce(c.kk, 0)::numeric / (p.n * p.n))
                           / (1 - coalesce(c.kk, 0)::numeric / (p.n * p.n)) END, 4) AS cohen_kappa,
           p.n >= pr.agreement_min_shared AS sufficient
      FROM pairs p
      LEFT JOIN chance c USING (project_id, dimension, rater_a, rater_b)
      JOIN core.project pr ON pr.id = p.project_id;
CREATE UNIQUE INDEX ON metrics.agreement_pair (project_id, dimension, annotator_a, annotator_b);
COMMENT ON MATERIALIZED VIEW metrics.agreement_pair IS
    'Cohen''s kappa per annotator pair over images both annotated (approved items), for the class and each '
    'categorical descriptor; sufficient is false below the project''s agreement_min_shared.';

DROP MATERIALIZED VIEW metrics.agreement_project;
CREATE MATERIALIZED VIEW metrics.agreement_project AS
    -- V15's one-pass Fleiss with n and c read from the table instead of two window sorts
    WITH totals AS (
        SELECT project_id, dimension, round(sum(1.0::float8 / n))::bigint AS images, count(*) AS ratings,
               sum((c - 1)::float8 / (n * (n - 1))) AS agreement_sum
          FROM core.final_label WHERE n >= 2 GROUP BY project_id, dimension),
    raters AS (
        SELECT project_id, dimension, count(*) AS raters
          FROM (SELECT DISTINCT project_id, dimension, rater_id FROM core.final_label WHERE n >= 2) d
         GROUP BY project_id, dimension),
    shares AS (
        SELECT k.project_id, k.dimension, sum((k.k::float8 / t.ratings) ^ 2) AS pe
          FROM (SELECT project_id, dimension, label, count(*) AS k FROM core.final_label WHERE n >= 2
                 GROUP BY 1, 2, 3) k
          JOIN totals t USING (project_id, dimension)
         GROUP BY k.project_id, k.dimension)
    SELECT t.project_id, t.dimension, t.images, t.ratings, r.raters,
           round(CASE WHEN s.pe >= 1 - 1e-12 THEN NULL
                      ELSE (t.agreement_sum / t.images - s.pe) / (1 - s.pe) END::numeric, 4) AS fleiss_kappa
      FROM totals t JOIN shares s USING (project_id, dimension) JOIN raters r USING (project_id, dimension);
CREATE UNIQUE INDEX ON metrics.agreement_project (project_id, dimension);
COMMENT ON MATERIALIZED VIEW metrics.agreement_project IS
    'Fleiss'' kappa per project over images annotated more than once, for the class and each categorical '
    'descriptor.';

DROP MATERIALIZED VIEW metrics.class_distribution;
CREATE MATERIALIZED VIEW metrics.class_distribution AS
    SELECT f.project_id, f.label::bigint AS class_id, n.code, n.name, count(*) AS items,
           round(count(*)::numeric / sum(count(*)) OVER (PARTITION BY f.project_id), 4) AS share
      FROM core.final_label f JOIN core.taxonomy_node n ON n.id = f.label::bigint
     WHERE f.dimension = 'class'
     GROUP BY f.project_id, f.label, n.code, n.name;
CREATE UNIQUE INDEX ON metrics.class_distribution (project_id, class_id);
COMMENT ON MATERIALIZED VIEW metrics.class_distribution IS
    'Final classes of approved items (gold checks excluded): count and share of the project.';

GRANT SELECT ON metrics.annotator_daily, metrics.review_outcome, metrics.throughput, metrics.agreement_pair,
                metrics.agreement_project, metrics.class_distribution TO dl_analyst, dl_admin;
