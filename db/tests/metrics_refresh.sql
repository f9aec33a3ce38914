-- metrics.refresh_all and metrics.reseal: sealed days (V17). annotator_daily, review_outcome and throughput read
-- days that are over from core.sealed_* and only the events since from the event tables. Whatever was sealed,
-- the views must equal the original definitions (V10's, kept here as the reference) computed over every event.
BEGIN;
SELECT plan(12);

SELECT * FROM tests.fixture(n_images => 4, per_image => 2) \gset
SELECT tests.as_superuser();
SELECT metrics.reseal();

-- events on five days: four and two days ago (sealed by the next refresh), and today (not); bypassing the
-- append-only guards to date them
SET LOCAL session_replication_role = replica;
CREATE TEMP TABLE ev AS
SELECT w.id AS item_id, w.image_id, row_number() OVER (ORDER BY w.id) AS k
  FROM core.work_item w WHERE w.project_id = :project;
INSERT INTO core.annotation_revision (item_id, revision_seq, author_id, content, class_id, locked_at, created_at)
SELECT e.item_id, s, CASE WHEN e.k % 2 = 0 THEN :a1 ELSE :a2 END, '{}',
       CASE WHEN e.k % 3 = 0 THEN NULL WHEN e.k % 3 = 1 THEN :mel ELSE :nev END,
       d.at - (40 + e.k * 7 + s) * interval '1 second', d.at
  FROM ev e, generate_series(1, 2) s,
       LATERAL (SELECT date_trunc('day', now(), 'UTC') - ((e.k + s) % 3 * 2) * interval '1 day'
                       + (e.k * 37 + s) * interval '1 minute' AS at) d;
INSERT INTO core.review (item_id, revision_id, stage, reviewer_id, decision, comment, created_at)
SELECT r.item_id, r.id, 1, CASE WHEN r.id % 2 = 0 THEN :r1 ELSE :r2 END,
       CASE WHEN r.revision_seq = 1 THEN 'changes_requested' ELSE 'approved' END::core.review_decision,
       CASE WHEN r.revision_seq = 1 THEN 'again' ELSE '' END,
       r.created_at + (CASE WHEN r.id % 4 = 0 THEN 100 WHEN r.id % 4 = 1 THEN 300 WHEN r.id % 4 = 2 THEN 7200
                            ELSE 90000 END) * interval '1 second'
  FROM core.annotation_revision r JOIN ev ON ev.item_id = r.item_id;
INSERT INTO core.work_item_flag (item_id, image_id, reason, raised_by, created_at)
SELECT e.item_id, e.image_id, 'bad_quality', :a3, date_trunc('day', now(), 'UTC') - e.k * interval '1 day'
  FROM ev e WHERE e.k <= 3;
UPDATE core.work_item w SET last_revision_seq = 2 FROM ev WHERE ev.item_id = w.id;
SET LOCAL session_replication_role = origin;

-- the reference: V10's definitions over every event of the project
CREATE TEMP VIEW ref_annotator_daily AS
    WITH sub AS (
        SELECT w.project_id, r.author_id AS annotator_id, (r.created_at AT TIME ZONE 'UTC')::date AS day,
               count(*) AS submitted,
               round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.created_at - r.locked_at))
                     ::numeric, 1) AS median_active_seconds,
               round(count(*) / nullif(sum(extract(epoch FROM r.created_at - r.locked_at)) / 3600, 0), 1)
                   AS items_per_hour
          FROM core.annotation_revision r JOIN core.work_item w ON w.id = r.item_id GROUP BY 1, 2, 3),
    rev AS (
        SELECT w.project_id, r.author_id AS annotator_id, (v.created_at AT TIME ZONE 'UTC')::date AS day,
               count(*) FILTER (WHERE v.decision = 'approved' AND v.stage = 1 AND r.revision_seq = 1)
                   AS approved_first_review,
               count(*) FILTER (WHERE v.decision = 'changes_requested') AS changes_requested
          FROM core.review v JOIN core.annotation_revision r ON r.id = v.revision_id
          JOIN core.work_item w ON w.id = v.item_id GROUP BY 1, 2, 3),
    rej AS (
        SELECT w.project_id, f.raised_by AS annotator_id, (f.created_at AT TIME ZONE 'UTC')::date AS day,
               count(*) AS rejected_images
          FROM core.work_item_flag f JOIN core.work_item w ON w.id = f.item_id GROUP BY 1, 2, 3)
    SELECT project_id, annotator_id, day, coalesce(sub.submitted, 0) AS submitted,
           coalesce(rev.approved_first_review, 0) AS approved_first_review,
           coalesce(rev.changes_requested, 0) AS changes_requested, coalesce(rej.rejected_images, 0) AS rejected_images,
           sub.median_active_seconds, sub.items_per_hour
      FROM sub FULL JOIN rev USING (project_id, annotator_id, day) FULL JOIN rej USING (project_id, annotator_id, day);
CREATE TEMP VIEW ref_review_outcome AS
    SELECT w.project_id,
           CASE WHEN GROUPING(r.author_id) = 0 THEN 'annotator'
                WHEN GROUPING(r.class_id) = 0 THEN 'class' ELSE 'reviewer' END AS dimension,
           coalesce(CASE WHEN GROUPING(r.author_id) = 0 THEN r.author_id
                         WHEN GROUPING(r.class_id) = 0 THEN r.class_id ELSE v.reviewer_id END, 0) AS subject_id,
           count(*) AS reviews, count(*) FILTER (WHERE v.decision = 'approved') AS approved,
           count(*) FILTER (WHERE v.decision = 'changes_requested') AS changes_requested,
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM v.created_at - r.created_at))
                 ::numeric) AS median_turnaround_seconds
      FROM core.review v JOIN core.annotation_revision r ON r.id = v.revision_id
      JOIN core.work_item w ON w.id = v.item_id
     GROUP BY GROUPING SETS ((w.project_id, r.author_id), (w.project_id, r.class_id), (w.project_id, v.reviewer_id));
CREATE TEMP VIEW ref_throughput AS
    WITH ev AS (
        SELECT w.project_id, date_trunc('hour', r.created_at, 'UTC') AS hour, count(*) AS submitted,
               0::bigint AS approved, 0::bigint AS changes_requested, 0::bigint AS rejected
          FROM core.annotation_revision r JOIN core.work_item w ON w.id = r.item_id GROUP BY 1, 2
        UNION ALL
        SELECT w.project_id, date_trunc('hour', v.created_at, 'UTC'), 0,
               count(*) FILTER (WHERE v.decision = 'approved'), count(*) FILTER (WHERE v.decision = 'changes_requested'), 0
          FROM core.review v JOIN core.work_item w ON w.id = v.item_id GROUP BY 1, 2
        UNION ALL
        SELECT w.project_id, date_trunc('hour', f.created_at, 'UTC'), 0, 0, 0, count(*)
          FROM core.work_item_flag f JOIN core.work_item w ON w.id = f.item_id GROUP BY 1, 2)
    SELECT ev.project_id, g.granularity, date_trunc(g.granularity, ev.hour, 'UTC') AS bucket,
           sum(submitted)::bigint AS submitted, sum(approved)::bigint AS approved,
           sum(changes_requested)::bigint AS changes_requested, sum(rejected)::bigint AS rejected
      FROM ev CROSS JOIN (VALUES ('hour'), ('day')) AS g (granularity)
     GROUP BY ev.project_id, g.granularity, date_trunc(g.granularity, ev.hour, 'UTC');

SELECT metrics.refresh_all('test') ->> 'sealing' AS sealing \gset
SELECT is((:'sealing'::jsonb ->> 'sealed')::boolean, true,
          'metrics.refresh_all: the refresh sealed the days that are over');
SELECT ok((SELECT count(*) FROM core.sealed_annotator_day WHERE project_id = :project) > 0
          AND (SELECT count(*) FROM core.annotation_revision r JOIN ev USING (item_id)
                WHERE r.created_at >= (SELECT until FROM core.metrics_seal)) > 0,
          'metrics.refresh_all: the dataset has sealed days and live events both');

SELECT results_eq(format('SELECT * FROM metrics.annotator_daily WHERE project_id = %s ORDER BY 2, 3', :project),
                  format('SELECT * FROM ref_annotator_daily WHERE project_id = %s ORDER BY 2, 3', :project),
                  'metrics.refresh_all: annotator_daily = the original definition, medians of sealed days included');
SELECT results_eq(format($$SELECT dimension, subject_id, reviews, approved, changes_requested,
                                  median_turnaround_seconds FROM metrics.review_outcome
                            WHERE project_id = %s ORDER BY 1, 2$$, :project),
                  format($$SELECT dimension, subject_id, reviews, approved, changes_requested,
                                  median_turnaround_seconds FROM ref_review_outcome
                            WHERE project_id = %s ORDER BY 1, 2$$, :project),
                  'metrics.refresh_all: review_outcome = the original definition '
                  '(whole-second turnarounds: the median is exact)');
SELECT results_eq(format('SELECT * FROM metrics.throughput WHERE project_id = %s ORDER BY 2, 3', :project),
                  format('SELECT * FROM ref_throughput WHERE project_id = %s ORDER BY 2, 3', :project),
                  'metrics.refresh_all: throughput = the original definition');

-- a second refresh seals nothing more and changes nothing
SELECT is((metrics.refresh_all('test') -> 'sealing' ->> 'sealed')::boolean, false,
          'metrics.refresh_all: a day is sealed once');
SELECT results_eq(format('SELECT * FROM metrics.throughput WHERE project_id = %s ORDER BY 2, 3', :project),
                  format('SELECT * FROM ref_throughput WHERE project_id = %s ORDER BY 2, 3', :project),
                  'metrics.refresh_all: and the views stay equal to the reference');

-- new events of today are counted at the next refresh, without sealing
SELECT tests.act_as(:a3, 'annotator');
SELECT api.next_item(:project) -> 'item' ->> 'id' AS item \gset
SELECT api.submit_annotation(:item, tests.content(:mel));
SELECT tests.as_superuser();
SELECT metrics.refresh_all('test');
SELECT results_eq(format('SELECT * FROM metrics.annotator_daily WHERE project_id = %s ORDER BY 2, 3', :project),
                  format('SELECT * FROM ref_annotator_daily WHERE project_id = %s ORDER BY 2, 3', :project),
                  'metrics.refresh_all: a submit of today is in annotator_daily at the next refresh');

-- an event backdated into a sealed day after it was sealed is not seen until metrics.reseal()
SET LOCAL session_replication_role = replica;
INSERT INTO core.work_item_flag (item_id, image_id, reason, raised_by, created_at)
SELECT item_id, image_id, 'duplicate', :a3, now() - interval '4 days' FROM ev WHERE k = 4;
SET LOCAL session_replication_role = origin;
SELECT metrics.refresh_all('test');
SELECT is((SELECT sum(rejected) FROM metrics.throughput WHERE project_id = :project AND granularity = 'day'),
          3::numeric, 'metrics.refresh_all: a late event in a sealed day is not counted');
SELECT metrics.reseal();
SELECT is((metrics.refresh_all('test') -> 'sealing' ->> 'sealed')::boolean, true,
          'metrics.reseal: recomputes the days at the next refresh');
SELECT results_eq(format('SELECT * FROM metrics.throughput WHERE project_id = %s ORDER BY 2, 3', :project),
                  format('SELECT * FROM ref_throughput WHERE project_id = %s ORDER BY 2, 3', :project),
                  'metrics.reseal: after it the late event is counted');

-- the bucket of turnarounds: seconds under an hour, minutes under a day, hours beyond
SELECT is(ARRAY[core.turnaround_bucket(59.4), core.turnaround_bucket(3599.6), core.turnaround_bucket(5000),
                core.turnaround_bucket(90000), core.turnaround_bucket(100000)]::bigint[],
          ARRAY[59, 3600, 4980, 90000, 100800]::bigint[],
          'core.turnaround_bucket: seconds under an hour, minutes under a day, hours beyond');

SELECT * FROM finish();
ROLLBACK;
