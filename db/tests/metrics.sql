-- Metrics views on a small dataset built through the workflow, with every expected number worked out by hand;
-- kappa against published worked examples; gold checks; review hints; what the analyst role may read.
BEGIN;
SELECT plan(47);

-- Cohen's kappa, worked example (Wikipedia "Cohen's kappa"): 50 proposals, yes/yes 20, yes/no 5, no/yes 10,
-- no/no 15: po = 0.7, pe = 0.5, kappa = 0.4.
SELECT is(round(core.cohen_kappa(
    array_fill('yes'::text, ARRAY[25]) || array_fill('no'::text, ARRAY[25]),
    array_fill('yes'::text, ARRAY[20]) || array_fill('no'::text, ARRAY[5]) || array_fill('yes'::text, ARRAY[10])
        || array_fill('no'::text, ARRAY[15])), 4), 0.4000, 'Cohen''s kappa of the worked example is 0.4');
SELECT is(core.cohen_kappa('{a,a}', '{a,a}'), NULL, 'Cohen''s kappa is undefined when only one label is used');
SELECT is(core.cohen_kappa('{a,b}', '{b,a}'), -1.0, 'complete disagreement on balanced labels is -1');

-- Fleiss' kappa, worked example (Wikipedia "Fleiss' kappa"): 10 subjects, 14 raters, 5 categories: 0.210.
SELECT is(round(core.fleiss_kappa(array_agg(t.s), array_agg(t.j::text)), 3), 0.210,
          'Fleiss'' kappa of the worked example is 0.210')
  FROM (SELECT x.s, j FROM (VALUES (1, ARRAY[0, 0, 0, 0, 14]), (2, ARRAY[0, 2, 6, 4, 2]), (3, ARRAY[0, 0, 3, 5, 6]),
                                   (4, ARRAY[0, 3, 9, 2, 0]), (5, ARRAY[2, 2, 8, 1, 1]), (6, ARRAY[7, 7, 0, 0, 0]),
                                   (7, ARRAY[3, 2, 6, 3, 0]), (8, ARRAY[2, 5, 3, 2, 2]), (9, ARRAY[6, 5, 2, 1, 0]),
                                   (10, ARRAY[0, 2, 2, 3, 7])) AS x (s, c),
               generate_subscripts(x.c, 1) AS j, generate_series(1, x.c[j])) t;

-- The dataset: 4 images annotated twice; a1: MEL, MEL, NV; a2: MEL, NV, NV on images 1-3; a1's image-2 annotation
-- gets changes requested once; a3 rejects image 4; r1 reviews everything.
SELECT * FROM tests.fixture(n_images => 4, per_image => 2) \gset
SELECT id AS neo FROM core.taxonomy_node WHERE project_id = :project AND code = 'NEO' \gset
SELECT id AS img2 FROM core.image WHERE project_id = :project ORDER BY id OFFSET 1 LIMIT 1 \gset
SELECT id AS img3 FROM core.image WHERE project_id = :project ORDER BY id OFFSET 2 LIMIT 1 \gset

SELECT tests.act_as(:admin, 'admin');
SELECT api.create_consistency_rule(:project, :mel, 'colours', 'contains', '"black"', 'Melanoma without black?');
SELECT api.create_consistency_rule(:project, :neo, 'border', 'equals', '"regular"', 'Check the border');
SELECT throws_ok(format($$SELECT api.create_consistency_rule(%s, %s, 'shape', 'equals', '"x"', 'm')$$, :project, :mel),
                 '22023', 'field: no descriptor ''shape'' in this project', 'a rule names a real descriptor');

CREATE TEMP TABLE plan_ (who bigint, img bigint, cls bigint, border text);
INSERT INTO plan_ VALUES (:a1, :img1, :mel, NULL), (:a1, :img2, :mel, NULL), (:a1, :img3, :nev, 'regular'),
                         (:a2, :img1, :mel, NULL), (:a2, :img2, :nev, NULL), (:a2, :img3, :nev, 'irregular');
GRANT SELECT ON plan_ TO PUBLIC;
SELECT tests.as_superuser();

DO $$
DECLARE
    pr bigint := (SELECT max(id) FROM core.project);
    p record;
    it jsonb;
    c jsonb;
BEGIN
    FOR p IN SELECT * FROM plan_ ORDER BY who, img LOOP
        PERFORM tests.act_as(p.who, 'annotator');
        it := api.next_item(pr) -> 'item';
        IF (it -> 'image' ->> 'id')::bigint <> p.img THEN
            RAISE EXCEPTION 'expected image %, got %', p.img, it -> 'image' ->> 'id';
        END IF;
        c := tests.content(p.cls);
        IF p.border IS NOT NULL THEN
            c := jsonb_set(c, '{descriptors,border}', to_jsonb(p.border));
        END IF;
        PERFORM api.submit_annotation((it ->> 'id')::bigint, c);
    END LOOP;
END
$$;

CREATE FUNCTION pg_temp.review_all(p_reviewer bigint, p_changes_for bigint, p_image bigint) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    it jsonb;
    n int := 0;
BEGIN
    PERFORM tests.act_as(p_reviewer, 'reviewer');
    LOOP
        it := api.next_review((SELECT max(id) FROM core.project)) -> 'item';
        EXIT WHEN it IS NULL OR it = 'null'::jsonb;
        n := n + 1;
        IF (it ->> 'annotator_id')::bigint = p_changes_for AND (it -> 'image' ->> 'id')::bigint = p_image
           AND (it ->> 'revision_seq')::int = 1 THEN
            PERFORM api.request_changes((it ->> 'id')::bigint, 'Look again at the network');
        ELSE
            PERFORM api.approve((it ->> 'id')::bigint);
        END IF;
    END LOOP;
    RETURN n;
END
$$;
SELECT is(pg_temp.review_all(:r1, :a1, :img2), 6, 'r1 reviews the six annotations');

SELECT tests.act_as(:a1, 'annotator');
SELECT is((api.next_item(:project) -> 'item' ->> 'status'), 'in_progress', 'a1 gets the item sent back');
SELECT api.submit_annotation(w.id, tests.content(:mel)) FROM core.work_item w
 WHERE w.project_id = :project AND w.annotator_id = :a1 AND w.image_id = :img2;
SELECT is(pg_temp.review_all(:r1, 0, 0), 1, 'and r1 approves the second revision');

-- a3 rejects image 4; its second slot is cancelled so that only gold checks are left for a3
SELECT tests.act_as(:a3, 'annotator');
SELECT api.reject_image((api.next_item(:project) -> 'item' ->> 'id')::bigint, 'bad_quality');
SELECT tests.as_superuser();
SELECT set_config('dl.action', 'cancel_item', true);
UPDATE core.work_item SET status = 'cancelled' WHERE project_id = :project AND status = 'new';

-- gold: image 1 (MEL by both) becomes gold; the rule mixes gold checks in at rate 0.5
SELECT tests.act_as(:admin, 'admin');
SELECT throws_ok(format('SELECT api.set_gold(%s)', (SELECT max(id) FROM core.image WHERE project_id = :project)),
                 '22023', 'image_id: only an image with an approved annotation can be gold',
                 'an image without an approved annotation cannot be gold');
SELECT is(api.set_gold(:img1) ->> 'class_id', :mel::text, 'image 1 becomes gold with class MEL');
SELECT is(api.update_work_rule(:rule, '{"gold_rate": 0.5}') ->> 'gold_rate', '0.5', 'the rule mixes in gold');
SELECT throws_ok(format($$SELECT api.update_work_rule(%s, '{"gold_rate": 0.9}')$$, :rule), '22023',
                 'gold_rate: must be between 0 and 0.5', 'at most half of a queue is gold');

SELECT tests.act_as(:a3, 'annotator');
SELECT tests.until_gold(:project) AS gold_doc \gset
SELECT is((:'gold_doc'::jsonb -> 'item' -> 'image' ->> 'id')::bigint, :img1::bigint,
          'a3 (who never saw image 1) is handed the gold image');
SELECT ok(NOT (:'gold_doc'::jsonb -> 'item') ?| ARRAY['gold_check', 'gold', 'reference'],
          'nothing in the item tells a gold check apart');
SELECT is((SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(:'gold_doc'::jsonb -> 'item') k),
          (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(core.item_document(
              (SELECT min(id) FROM core.work_item WHERE project_id = :project), false)) k),
          'a gold check has exactly the fields of any item');
SELECT api.submit_annotation((:'gold_doc'::jsonb -> 'item' ->> 'id')::bigint, tests.content(:nev));
SELECT is(pg_temp.review_all(:r1, 0, 0), 1, 'the gold check is reviewed like any item');

SELECT tests.as_superuser();
SELECT ok((metrics.refresh_all('test') ->> 'refreshed')::boolean, 'the views refresh');
SELECT is((SELECT count(*)::int FROM metrics.refreshed_at WHERE trigger = 'test'), 16, 'each view records its refresh');

SELECT set_eq(format('SELECT status, items FROM metrics.queue_by_status WHERE project_id = %s', :project),
              $$VALUES ('done', 7::bigint), ('rejected', 1), ('cancelled', 1)$$, 'queue by status');

SELECT set_eq(format('SELECT code, items, share FROM metrics.class_distribution WHERE project_id = %s', :project),
              $$VALUES ('MEL', 3::bigint, 0.5000), ('NV', 3, 0.5000)$$,
              'class distribution of approved items, the gold check left out');

SELECT results_eq(format($$SELECT shared_images, observed_agreement, cohen_kappa, sufficient
                             FROM metrics.agreement_pair WHERE project_id = %s AND dimension = 'class'
                              AND annotator_a = %s AND annotator_b = %s$$, :project, least(:a1, :a2), greatest(:a1, :a2)),
                  $$VALUES (3::bigint, 0.6667, 0.4000, false)$$,
                  'a1 and a2 agree on 2 of 3 classes: kappa (2/3 - 4/9) / (5/9) = 0.4, too few images to count');
SELECT results_eq(format($$SELECT shared_images, observed_agreement FROM metrics.agreement_pair
                            WHERE project_id = %s AND dimension = 'descriptor:border'$$, :project),
                  $$VALUES (1::bigint, 0.0000)$$, 'agreement over a categorical descriptor (border)');
SELECT results_eq(format($$SELECT images, ratings, raters, fleiss_kappa FROM metrics.agreement_project
                            WHERE project_id = %s AND dimension = 'class'$$, :project),
                  $$VALUES (3::bigint, 6::bigint, 2::bigint, 0.3333)$$,
                  'Fleiss: P = (1 + 0 + 1) / 3, Pe = 0.5, kappa = 1/3');

SELECT is((SELECT fleiss_kappa FROM metrics.agreement_project WHERE project_id = :project AND dimension = 'class'),
          (SELECT round(core.fleiss_kappa(array_agg(image_id), array_agg(label)), 4) FROM core.final_label
            WHERE project_id = :project AND dimension = 'class'),
          'the view''s one-pass Fleiss equals the reference function');
-- the final labels the agreement views read are written as items are approved, and equal a rebuild from scratch
SELECT is((SELECT count(*)::int FROM core.final_label WHERE project_id = :project AND dimension = 'class'), 6,
          'one final class per approved item, the gold check left out');
CREATE TEMP TABLE kept AS SELECT * FROM core.final_label WHERE project_id = :project;
CREATE TEMP TABLE kept_pairs AS SELECT * FROM core.final_label_pair WHERE project_id = :project;
SELECT core.rebuild_final_labels(:project);
SELECT set_eq(format('SELECT * FROM core.final_label WHERE project_id = %s', :project), 'SELECT * FROM kept',
              'the trigger wrote exactly what a rebuild computes (n and c included)');
SELECT set_eq(format('SELECT * FROM core.final_label_pair WHERE project_id = %s', :project), 'SELECT * FROM kept_pairs',
              'and the same rater pairs');
SELECT is((SELECT cohen_kappa FROM metrics.agreement_pair WHERE project_id = :project AND dimension = 'class'),
          (SELECT round(core.cohen_kappa(array_agg(a.label ORDER BY a.image_id), array_agg(b.label ORDER BY a.image_id)), 4)
             FROM core.final_label a JOIN core.final_label b ON b.image_id = a.image_id AND b.dimension = a.dimension
                                                           AND b.rater_id > a.rater_id
            WHERE a.project_id = :project AND a.dimension = 'class'),
          'the view''s Cohen''s kappa from counts equals the reference function');

SELECT results_eq(format($$SELECT reviews, approved, changes_requested, acceptance_rate FROM metrics.review_outcome
                            WHERE project_id = %s AND dimension = 'annotator' AND subject_id = %s$$, :project, :a1),
                  $$VALUES (4::bigint, 3::bigint, 1::bigint, 0.7500)$$, 'a1: 3 of 4 reviews approved');
SELECT results_eq(format($$SELECT reviews, approved, acceptance_rate FROM metrics.review_outcome
                            WHERE project_id = %s AND dimension = 'reviewer' AND subject_id = %s$$, :project, :r1),
                  $$VALUES (8::bigint, 7::bigint, 0.8750)$$, 'r1 approved 7 of 8');
SELECT results_eq(format($$SELECT subject, reviews, approved FROM metrics.review_outcome
                            WHERE project_id = %s AND dimension = 'class' AND subject_id = %s$$, :project, :mel),
                  $$VALUES ('MEL Melanoma', 4::bigint, 3::bigint)$$, 'MEL revisions: 3 of 4 approved');

SELECT results_eq(format($$SELECT submitted, approved_first_review, changes_requested, rejected_images
                            FROM metrics.annotator_daily WHERE project_id = %s AND annotator_id = %s$$, :project, :a1),
                  $$VALUES (4::bigint, 2::bigint, 1::bigint, 0::bigint)$$,
                  'a1 today: 4 revisions, 2 approved at first review, 1 sent back');
SELECT results_eq(format($$SELECT submitted, rejected_images FROM metrics.annotator_daily
                            WHERE project_id = %s AND annotator_id = %s$$, :project, :a3),
                  $$VALUES (1::bigint, 1::bigint)$$, 'a3 today: the gold check and one rejected image');

SELECT results_eq(format($$SELECT flags, open, restored FROM metrics.flags_by_reason
                            WHERE project_id = %s AND reason = 'bad_quality'$$, :project),
                  $$VALUES (1::bigint, 1::bigint, 0::bigint)$$, 'flags by reason');
SELECT results_eq(format($$SELECT granularity, submitted, approved, changes_requested, rejected
                            FROM metrics.throughput WHERE project_id = %s ORDER BY granularity$$, :project),
                  $$VALUES ('day', 8::bigint, 7::bigint, 1::bigint, 1::bigint),
                           ('hour', 8::bigint, 7::bigint, 1::bigint, 1::bigint)$$,
                  'throughput per day and hour');
SELECT results_eq(format($$SELECT gold_checks, correct, accuracy FROM metrics.gold_accuracy
                            WHERE project_id = %s AND annotator_id = %s$$, :project, :a3),
                  $$VALUES (1::bigint, 0::bigint, 0.0000)$$, 'a3 answered NV where gold says MEL');
SELECT results_eq(format($$SELECT hints, items FROM metrics.review_hints
                            WHERE project_id = %s AND kind = 'class_descriptor_conflict'$$, :project),
                  $$VALUES (5::bigint, 4::bigint)$$,
                  'four MEL revisions without black, one NV (a NEO descendant) with an irregular border');

-- hints reach the reviewer, not the annotator
SELECT tests.act_as(:r1, 'reviewer');
SELECT is(jsonb_array_length(api.item_detail(w.id) -> 'hints'), 2, 'the reviewer sees the item''s hints')
  FROM core.work_item w WHERE w.project_id = :project AND w.annotator_id = :a1 AND w.image_id = :img2;
SELECT tests.act_as(:a1, 'annotator');
SELECT is(jsonb_array_length(api.item_detail(w.id) -> 'hints'), 0, 'the annotator does not')
  FROM core.work_item w WHERE w.project_id = :project AND w.annotator_id = :a1 AND w.image_id = :img2;

-- a submit much faster than the author's usual pace (ten earlier revisions of 100 s, then one of 5 s)
SELECT tests.as_superuser();
SELECT id AS fast_item FROM core.work_item WHERE project_id = :project AND status = 'rejected' \gset
INSERT INTO core.annotation_revision (item_id, revision_seq, author_id, content, class_id, locked_at)
SELECT :fast_item, 100 + s, :a2, tests.content(:nev), :nev, now() - interval '100 s' FROM generate_series(1, 10) s;
SELECT is((SELECT count(*)::int FROM core.review_hint WHERE kind = 'fast_submit' AND project_id = :project), 0,
          'ordinary pace raises nothing');
INSERT INTO core.annotation_revision (item_id, revision_seq, author_id, content, class_id, locked_at)
VALUES (:fast_item, 111, :a2, tests.content(:nev), :nev, now() - interval '5 s');
SELECT is((SELECT message FROM core.review_hint WHERE kind = 'fast_submit' AND project_id = :project),
          'Submitted after 5 s; this annotator usually takes 100 s.', 'a 5 s submit against a 100 s median is flagged');

-- the analyst reads metrics and nothing else
SELECT tests.act_as(:admin, 'analyst');
SELECT lives_ok('SELECT count(*) FROM analytics.queue_by_status', 'the analyst reads the metrics (analytics views)');
SELECT throws_ok('SELECT count(*) FROM core.work_item', '42501', NULL, 'but not the work items');
SELECT throws_ok('SELECT count(*) FROM audit.event', '42501', NULL, 'nor the audit log');
SELECT tests.as_superuser();
SELECT is((SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT IN ('analytics', 'pg_catalog', 'information_schema', 'tap', 'tests')
              AND n.nspname NOT LIKE 'pg\_%' AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
              AND has_table_privilege('dl_analyst', c.oid, 'SELECT')), 0,
          'dl_analyst may SELECT from no table or view outside analytics');
SELECT is((SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'metrics' AND (has_table_privilege('dl_analyst', c.oid, 'INSERT')
                                             OR has_table_privilege('dl_analyst', c.oid, 'UPDATE')
                                             OR has_table_privilege('dl_analyst', c.oid, 'DELETE'))), 0,
          'and writes nothing there');
SELECT throws_ok($$SELECT metrics.refresh_all('analyst')$$, '42501', NULL, 'nor refreshes') FROM tests.act_as(:admin, 'analyst');

SELECT * FROM finish();
ROLLBACK;
