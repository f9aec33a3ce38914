-- Metrics for analysts: materialized views in schema metrics, each with a unique index so that
-- metrics.refresh_all() (R__metrics.sql) can refresh it CONCURRENTLY while dashboards and BI tools read it.
-- Days and hours are UTC. Gold checks (core.work_item.gold_check) are work like any other in the productivity and
-- throughput views, but never in the class distribution or agreement.

-- Agreement statistics, pure functions of the ratings so they can be checked against worked examples.
CREATE FUNCTION core.cohen_kappa(a text[], b text[]) RETURNS numeric
LANGUAGE sql IMMUTABLE SET search_path = '' AS $$
    -- a[i] and b[i] are two raters' labels of subject i. NULL when chance agreement is total (one label only).
    WITH p AS (SELECT x, y FROM unnest(a, b) AS t (x, y) WHERE x IS NOT NULL AND y IS NOT NULL),
         n AS (SELECT count(*)::numeric AS n FROM p),
         po AS (SELECT count(*) FILTER (WHERE x = y) / nullif(n.n, 0) AS v FROM p, n GROUP BY n.n),
         pe AS (SELECT sum(ma.c * mb.c) / nullif(max(n.n) * max(n.n), 0) AS v
                  FROM (SELECT x AS l, count(*)::numeric AS c FROM p GROUP BY x) ma
                  JOIN (SELECT y AS l, count(*)::numeric AS c FROM p GROUP BY y) mb USING (l), n)
    SELECT CASE WHEN coalesce(pe.v, 0) >= 1 THEN NULL ELSE (po.v - coalesce(pe.v, 0)) / (1 - coalesce(pe.v, 0)) END
      FROM po LEFT JOIN pe ON true
$$;
COMMENT ON FUNCTION core.cohen_kappa(text[], text[]) IS
    'Cohen''s kappa of two raters over paired labels: (po - pe) / (1 - pe); NULL when undefined.';

CREATE FUNCTION core.fleiss_kappa(subjects bigint[], labels text[]) RETURNS numeric
LANGUAGE sql IMMUTABLE SET search_path = '' AS $$
    -- One element per rating. Subjects with fewer than two ratings are left out; subjects may have different
    -- numbers of raters (the usual generalisation; with equal numbers it is exactly Fleiss' kappa).
    WITH r AS (SELECT s, l FROM unnest(subjects, labels) AS t (s, l) WHERE s IS NOT NULL AND l IS NOT NULL),
         nij AS (SELECT s, l, count(*)::numeric AS c FROM r GROUP BY s, l),
         ni AS (SELECT s, sum(c) AS n FROM nij GROUP BY s HAVING sum(c) >= 2),
         pi AS (SELECT (sum(nij.c * nij.c) - ni.n) / (ni.n * (ni.n - 1)) AS p
                  FROM nij JOIN ni USING (s) GROUP BY ni.s, ni.n),
         pj AS (SELECT sum(nij.c) / (SELECT sum(n) FROM ni) AS p FROM nij JOIN ni USING (s) GROUP BY nij.l),
         k AS (SELECT (SELECT avg(p) FROM pi) AS pbar, (SELECT sum(p * p) FROM pj) AS pe)
    SELECT CASE WHEN pe IS NULL OR pe >= 1 THEN NULL ELSE (pbar - pe) / (1 - pe) END FROM k
$$;
COMMENT ON FUNCTION core.fleiss_kappa(bigint[], text[]) IS
    'Fleiss'' kappa over ratings given as parallel arrays (subject, label); NULL when undefined.';

-- The final annotation of every approved item, one row per rated dimension: the class, and each categorical
-- (string or boolean) descriptor. The input of the agreement views.
CREATE VIEW core.final_rating AS
    SELECT w.project_id, 'class'::text AS dimension, w.image_id, r.author_id AS rater_id, r.class_id::text AS label
      FROM core.work_item w
      JOIN core.annotation_revision r ON r.item_id = w.id AND r.revision_seq = w.last_revision_seq
     WHERE w.status = 'done' AND NOT w.gold_check AND r.class_id IS NOT NULL
    UNION ALL
    SELECT w.project_id, 'descriptor:' || d.key, w.image_id, r.author_id, d.value #>> '{}'
      FROM core.work_item w
      JOIN core.annotation_revision r ON r.item_id = w.id AND r.revision_seq = w.last_revision_seq
     CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(r.content -> 'descriptors') = 'object'
                                        THEN r.content -> 'descriptors' ELSE '{}' END) AS d
     WHERE w.status = 'done' AND NOT w.gold_check AND jsonb_typeof(d.value) IN ('string', 'boolean');
COMMENT ON VIEW core.final_rating IS 'Final labels of approved items per dimension (class, descriptor:<key>).';

CREATE TABLE metrics.refreshed_at (
    view_name    text PRIMARY KEY,
    refreshed_at timestamptz NOT NULL,
    duration_ms  numeric NOT NULL,
    trigger      text NOT NULL
);
COMMENT ON TABLE metrics.refreshed_at IS 'When each view was last refreshed, how long it took, and by what.';

CREATE MATERIALIZED VIEW metrics.queue_by_status AS
    SELECT w.project_id, w.status::text AS status, count(*) AS items,
           min(s.since) AS oldest_since,
           round(extract(epoch FROM now() - min(s.since))) AS oldest_age_seconds,
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM now() - s.since))::numeric)
               AS median_wait_seconds
      FROM core.work_item w
     CROSS JOIN LATERAL (SELECT CASE w.status WHEN 'new' THEN w.created_at WHEN 'review' THEN w.submitted_at
                                              ELSE w.updated_at END AS since) s
     GROUP BY w.project_id, w.status;
CREATE UNIQUE INDEX ON metrics.queue_by_status (project_id, status);
COMMENT ON MATERIALIZED VIEW metrics.queue_by_status IS
    'Work items per project and status; how long the oldest has waited and the median wait in that status (at '
    'refresh time; new: since created, review: since submitted, others: since the last change).';

CREATE MATERIALIZED VIEW metrics.annotator_daily AS
    -- each source aggregated on its own first, so only small per-day groups are joined (not millions of events)
    WITH sub AS (
        SELECT w.project_id, r.author_id AS annotator_id, (r.created_at AT TIME ZONE 'UTC')::date AS day,
               count(*) AS submitted,
               round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.created_at - r.locked_at))
                     ::numeric, 1) AS median_active_seconds,
               round(count(*) / nullif(sum(extract(epoch FROM r.created_at - r.locked_at)) / 3600, 0), 1)
                   AS items_per_hour
          FROM core.annotation_revision r JOIN core.work_item w ON w.id = r.item_id
         GROUP BY 1, 2, 3),
    rev AS (
        SELECT w.project_id, r.author_id AS annotator_id, (v.created_at AT TIME ZONE 'UTC')::date AS day,
               count(*) FILTER (WHERE v.decision = 'approved' AND v.stage = 1 AND r.revision_seq = 1)
                   AS approved_first_review,
               count(*) FILTER (WHERE v.decision = 'changes_requested') AS changes_requested
          FROM core.review v JOIN core.annotation_revision r ON r.id = v.revision_id
          JOIN core.work_item w ON w.id = v.item_id
         GROUP BY 1, 2, 3),
    rej AS (
        SELECT w.project_id, f.raised_by AS annotator_id, (f.created_at AT TIME ZONE 'UTC')::date AS day,
               count(*) AS rejected_images
          FROM core.work_item_flag f JOIN core.work_item w ON w.id = f.item_id
         GROUP BY 1, 2, 3)
    SELECT project_id, annotator_id, day,
           coalesce(sub.submitted, 0) AS submitted,
           coalesce(rev.approved_first_review, 0) AS approved_first_review,
           coalesce(rev.changes_requested, 0) AS changes_requested,
           coalesce(rej.rejected_images, 0) AS rejected_images,
           sub.median_active_seconds, sub.items_per_hour
      FROM sub FULL JOIN rev USING (project_id, annotator_id, day) FULL JOIN rej USING (project_id, annotator_id, day);
CREATE UNIQUE INDEX ON metrics.annotator_daily (project_id, annotator_id, day);
COMMENT ON MATERIALIZED VIEW metrics.annotator_daily IS
    'Per annotator and UTC day: revisions submitted, first revisions approved at the first review stage, changes '
    'requested of them, images they rejected, median active time (lock to submit) and items per active hour.';

CREATE MATERIALIZED VIEW metrics.review_outcome AS
    WITH g AS (
        SELECT w.project_id,
               CASE WHEN GROUPING(r.author_id) = 0 THEN 'annotator'
                    WHEN GROUPING(r.class_id) = 0 THEN 'class' ELSE 'reviewer' END AS dimension,
               coalesce(CASE WHEN GROUPING(r.author_id) = 0 THEN r.author_id
                             WHEN GROUPING(r.class_id) = 0 THEN r.class_id ELSE v.reviewer_id END, 0) AS subject_id,
               count(*) AS reviews,
               count(*) FILTER (WHERE v.decision = 'approved') AS approved,
               count(*) FILTER (WHERE v.decision = 'changes_requested') AS changes_requested,
               round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM v.created_at - r.created_at))
                     ::numeric) AS median_turnaround_seconds
          FROM core.review v JOIN core.annotation_revision r ON r.id = v.revision_id
          JOIN core.work_item w ON w.id = v.item_id
         GROUP BY GROUPING SETS ((w.project_id, r.author_id), (w.project_id, r.class_id),
                                 (w.project_id, v.reviewer_id)))
    SELECT g.project_id, g.dimension, g.subject_id,
           coalesce(u.display_name, n.code || ' ' || n.name, '(none)') AS subject,
           g.reviews, g.approved, g.changes_requested,
           round(g.approved::numeric / g.reviews, 4) AS acceptance_rate, g.median_turnaround_seconds
      FROM g
      LEFT JOIN auth."user" u ON g.dimension <> 'class' AND u.id = g.subject_id
      LEFT JOIN core.taxonomy_node n ON g.dimension = 'class' AND n.id = g.subject_id;
CREATE UNIQUE INDEX ON metrics.review_outcome (project_id, dimension, subject_id);
COMMENT ON MATERIALIZED VIEW metrics.review_outcome IS
    'Review decisions grouped per annotator (whose revision), per class (the revision''s class) and per reviewer: '
    'reviews, approved, changes requested, acceptance rate, median turnaround from submit to decision.';

CREATE MATERIALIZED VIEW metrics.class_distribution AS
    SELECT w.project_id, r.class_id, n.code, n.name, count(*) AS items,
           round(count(*)::numeric / sum(count(*)) OVER (PARTITION BY w.project_id), 4) AS share
      FROM core.work_item w
      JOIN core.annotation_revision r ON r.item_id = w.id AND r.revision_seq = w.last_revision_seq
      JOIN core.taxonomy_node n ON n.id = r.class_id
     WHERE w.status = 'done' AND NOT w.gold_check
     GROUP BY w.project_id, r.class_id, n.code, n.name;
CREATE UNIQUE INDEX ON metrics.class_distribution (project_id, class_id);
COMMENT ON MATERIALIZED VIEW metrics.class_distribution IS
    'Final classes of approved items (gold checks excluded): count and share of the project.';

CREATE MATERIALIZED VIEW metrics.flags_by_reason AS
    SELECT w.project_id, f.reason::text AS reason, count(*) AS flags,
           count(*) FILTER (WHERE f.resolved_at IS NULL) AS open,
           count(*) FILTER (WHERE f.resolution = 'restored') AS restored,
           count(*) FILTER (WHERE f.resolution = 'image_removed') AS image_removed
      FROM core.work_item_flag f JOIN core.work_item w ON w.id = f.item_id
     GROUP BY w.project_id, f.reason;
CREATE UNIQUE INDEX ON metrics.flags_by_reason (project_id, reason);
COMMENT ON MATERIALIZED VIEW metrics.flags_by_reason IS
    'Rejected images per reason: all, still open, restored to the queue, removed.';

CREATE MATERIALIZED VIEW metrics.throughput AS
    -- per hour from each source, then days rolled up from the hours
    WITH ev AS (
        SELECT w.project_id, date_trunc('hour', r.created_at, 'UTC') AS hour, count(*) AS submitted,
               0::bigint AS approved, 0::bigint AS changes_requested, 0::bigint AS rejected
          FROM core.annotation_revision r JOIN core.work_item w ON w.id = r.item_id GROUP BY 1, 2
        UNION ALL
        SELECT w.project_id, date_trunc('hour', v.created_at, 'UTC'), 0, count(*) FILTER (WHERE v.decision = 'approved'),
               count(*) FILTER (WHERE v.decision = 'changes_requested'), 0
          FROM core.review v JOIN core.work_item w ON w.id = v.item_id GROUP BY 1, 2
        UNION ALL
        SELECT w.project_id, date_trunc('hour', f.created_at, 'UTC'), 0, 0, 0, count(*)
          FROM core.work_item_flag f JOIN core.work_item w ON w.id = f.item_id GROUP BY 1, 2)
    SELECT ev.project_id, g.granularity, date_trunc(g.granularity, ev.hour, 'UTC') AS bucket,
           sum(submitted)::bigint AS submitted, sum(approved)::bigint AS approved,
           sum(changes_requested)::bigint AS changes_requested, sum(rejected)::bigint AS rejected
      FROM ev CROSS JOIN (VALUES ('hour'), ('day')) AS g (granularity)
     GROUP BY ev.project_id, g.granularity, date_trunc(g.granularity, ev.hour, 'UTC');
CREATE UNIQUE INDEX ON metrics.throughput (project_id, granularity, bucket);
COMMENT ON MATERIALIZED VIEW metrics.throughput IS
    'Revisions submitted, reviews approving or requesting changes, and images rejected per UTC hour and day.';

CREATE MATERIALIZED VIEW metrics.agreement_pair AS
    SELECT a.project_id, a.dimension, a.rater_id AS annotator_a, b.rater_id AS annotator_b,
           count(*) AS shared_images,
           round(avg((a.label = b.label)::int), 4) AS observed_agreement,
           round(core.cohen_kappa(array_agg(a.label ORDER BY a.image_id), array_agg(b.label ORDER BY a.image_id)), 4)
               AS cohen_kappa,
           count(*) >= max(p.agreement_min_shared) AS sufficient
      FROM core.final_rating a
      JOIN core.final_rating b ON b.project_id = a.project_id AND b.dimension = a.dimension
                              AND b.image_id = a.image_id AND b.rater_id > a.rater_id
      JOIN core.project p ON p.id = a.project_id
     GROUP BY a.project_id, a.dimension, a.rater_id, b.rater_id;
CREATE UNIQUE INDEX ON metrics.agreement_pair (project_id, dimension, annotator_a, annotator_b);
COMMENT ON MATERIALIZED VIEW metrics.agreement_pair IS
    'Cohen''s kappa per annotator pair over images both annotated (approved items), for the class and each '
    'categorical descriptor; sufficient is false below the project''s agreement_min_shared.';

CREATE MATERIALIZED VIEW metrics.agreement_project AS
    SELECT f.project_id, f.dimension, count(DISTINCT f.image_id) AS images, count(*) AS ratings,
           count(DISTINCT f.rater_id) AS raters,
           round(core.fleiss_kappa(array_agg(f.image_id), array_agg(f.label)), 4) AS fleiss_kappa
      FROM (SELECT r.*, count(*) OVER (PARTITION BY r.project_id, r.dimension, r.image_id) AS n
              FROM core.final_rating r) f
     WHERE f.n >= 2
     GROUP BY f.project_id, f.dimension;
CREATE UNIQUE INDEX ON metrics.agreement_project (project_id, dimension);
COMMENT ON MATERIALIZED VIEW metrics.agreement_project IS
    'Fleiss'' kappa per project over images annotated more than once, for the class and each categorical '
    'descriptor.';

CREATE MATERIALIZED VIEW metrics.gold_accuracy AS
    SELECT w.project_id, r.author_id AS annotator_id, count(*) AS gold_checks,
           count(*) FILTER (WHERE r.class_id = g.class_id) AS correct,
           round(count(*) FILTER (WHERE r.class_id = g.class_id)::numeric / count(*), 4) AS accuracy
      FROM core.work_item w
      JOIN core.annotation_revision r ON r.item_id = w.id AND r.revision_seq = 1
      JOIN core.gold_standard g ON g.image_id = w.image_id
     WHERE w.gold_check
     GROUP BY w.project_id, r.author_id;
CREATE UNIQUE INDEX ON metrics.gold_accuracy (project_id, annotator_id);
COMMENT ON MATERIALIZED VIEW metrics.gold_accuracy IS
    'Per annotator: gold checks answered and how many first answers (revision 1, before any review) matched the '
    'reference class.';

CREATE MATERIALIZED VIEW metrics.review_hints AS
    SELECT h.project_id, h.kind, count(*) AS hints, count(DISTINCT h.item_id) AS items
      FROM core.review_hint h GROUP BY h.project_id, h.kind;
CREATE UNIQUE INDEX ON metrics.review_hints (project_id, kind);
COMMENT ON MATERIALIZED VIEW metrics.review_hints IS 'Review hints raised by the consistency checks, per kind.';

GRANT SELECT ON ALL TABLES IN SCHEMA metrics TO dl_analyst, dl_admin;
