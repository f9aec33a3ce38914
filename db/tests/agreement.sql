-- Krippendorff's alpha under the taxonomy metric (Wu-Palmer distance) on a hand-computed example; the nominal,
-- ordinal and interval metrics are checked against the krippendorff package in tests/test_agreement_alpha.py.
BEGIN;
SELECT plan(17);

SELECT * FROM tests.fixture(n_images => 0) \gset
SELECT tests.act_as(:admin, 'admin');
SELECT (api.upsert_taxonomy_node(:project, 'INF', 'Inflammatory') ->> 'id')::bigint AS inf \gset
SELECT (api.upsert_taxonomy_node(:project, 'PSO', 'Psoriasis', 'INF') ->> 'id')::bigint AS pso \gset
SELECT id AS neo FROM core.taxonomy_node WHERE project_id = :project AND code = 'NEO' \gset
SELECT tests.as_superuser();

SELECT is(core.taxonomy_distance(:mel, :mel), 0::double precision, 'core.taxonomy_distance: a node and itself: 0');
SELECT is(core.taxonomy_distance(:mel, :nev), 0.5::double precision,
          'core.taxonomy_distance: siblings under NEO: 1 - 2*1/(2+2) = 0.5');
SELECT ok(abs(core.taxonomy_distance(:mel, :neo) - 1.0 / 3) < 1e-12,
          'core.taxonomy_distance: a less specific answer on the same branch: 1 - 2*1/(2+1) = 1/3');
SELECT is(core.taxonomy_distance(:mel, :pso), 1::double precision,
          'core.taxonomy_distance: different top-level branches: 1');
-- three images, two reads each: (MEL, MEL), (MEL, NV), (NV, PSO). n = 6; n_MEL 3, n_NV 2, n_PSO 1.
-- observed: 2 d(MEL,NV) + 2 d(NV,PSO) = 3; expected: 2 (3*2*0.5 + 3*1*1 + 2*1*1) = 16; alpha = 1 - 5 * 3 / 16
SELECT ok(abs(core.krippendorff_alpha(ARRAY[1, 1, 2, 2, 3, 3]::bigint[],
                                      ARRAY[:mel, :mel, :mel, :nev, :nev, :pso]::text[], 'taxonomy') - 0.0625) < 1e-12,
          'core.krippendorff_alpha: taxonomy metric, hand-computed 0.0625');
-- nominal on the same reads: observed 4, expected 2 (6 + 3 + 2) = 22: alpha = 1 - 5 * 4 / 22
SELECT ok(abs(core.krippendorff_alpha(ARRAY[1, 1, 2, 2, 3, 3]::bigint[],
                                      ARRAY[:mel, :mel, :mel, :nev, :nev, :pso]::text[], 'nominal') - (1 - 20.0 / 22)) < 1e-12,
          'core.krippendorff_alpha: nominal gives no partial credit (1 - 20/22)');
SELECT ok(abs(core.krippendorff_alpha(ARRAY[1, 1, 2, 2, 3, 3, 4]::bigint[], ARRAY['I', 'II', 'II', 'II', 'V', 'VI', 'III'],
                                      'ordinal', ARRAY['I', 'II', 'III', 'IV', 'V', 'VI'])
              - core.krippendorff_alpha(ARRAY[1, 1, 2, 2, 3, 3, 4]::bigint[], ARRAY['1', '2', '2', '2', '5', '6', '3'],
                                        'ordinal')) < 1e-12,
          'core.krippendorff_alpha: ordinal ranks follow the given order (Fitzpatrick I-VI as 1-6)');
SELECT throws_ok($$SELECT core.krippendorff_alpha('{1,1}', '{a,b}', 'cosine')$$, '22023',
                 'metric: must be nominal, ordinal, interval or taxonomy', 'core.krippendorff_alpha: unknown metric refused');


-- metrics.agreement_alpha against core.krippendorff_alpha on the same final labels: 60 images, 1-5 reads each
-- (random, seeded), classes over both branches, one categorical descriptor. Written directly (item ids are made
-- up: foreign keys off for this transaction), then counted the way approvals count them.
SET LOCAL session_replication_role = replica;
SELECT setseed(0.42);
INSERT INTO core.final_label (item_id, dimension, project_id, image_id, rater_id, label, n, c)
SELECT 900000 + row_number() OVER (), d.dimension, :project, 800000 + img, 700000 + rater,
       CASE WHEN d.dimension = 'class' THEN (ARRAY[:mel, :mel, :nev, :neo, :pso, :inf])[1 + floor(random() * 6)::int]::text
            ELSE (ARRAY['regular', 'irregular', 'irregular'])[1 + floor(random() * 3)::int] END, 1, 1
  FROM generate_series(1, 60) img
 CROSS JOIN LATERAL generate_series(1, 1 + floor(random() * 5)::int + img * 0) rater
 CROSS JOIN (VALUES ('class'), ('descriptor:border')) d(dimension);
SELECT core.recount_final_labels(ARRAY(SELECT DISTINCT image_id FROM core.final_label WHERE project_id = :project));
SET LOCAL session_replication_role = origin;
REFRESH MATERIALIZED VIEW metrics.agreement_alpha;
CREATE TEMP TABLE alpha_check AS
SELECT v.dimension, v.metric, v.alpha AS from_view,
       core.krippendorff_alpha(array_agg(f.image_id), array_agg(f.label), v.metric) AS from_function
  FROM metrics.agreement_alpha v JOIN core.final_label f ON f.project_id = v.project_id AND f.dimension = v.dimension
 WHERE v.project_id = :project GROUP BY v.dimension, v.metric, v.alpha;
SELECT is((SELECT count(*)::int FROM alpha_check), 3, 'metrics.agreement_alpha: class nominal and taxonomy, border nominal');
SELECT ok((SELECT abs(from_view - from_function) < 1e-12 FROM alpha_check WHERE dimension = 'class' AND metric = 'nominal'),
          'metrics.agreement_alpha: the class, nominal, equals core.krippendorff_alpha');
SELECT ok((SELECT abs(from_view - from_function) < 1e-12 FROM alpha_check WHERE dimension = 'class' AND metric = 'taxonomy'),
          'metrics.agreement_alpha: the class, taxonomy metric, equals core.krippendorff_alpha');
SELECT ok((SELECT abs(from_view - from_function) < 1e-12 FROM alpha_check WHERE dimension = 'descriptor:border'),
          'metrics.agreement_alpha: a descriptor, nominal, equals core.krippendorff_alpha');

SELECT count(DISTINCT image_id)::int AS rated_twice FROM core.final_label
 WHERE project_id = :project AND dimension = 'class' AND n >= 2 \gset
SELECT tests.act_as(:admin, 'admin');
SELECT is((api.agreement_interval(:project, 'class', 'taxonomy', 200, 3) ->> 'images')::int, :rated_twice,
          'api.agreement_interval: the admin gets alpha with the number of images behind it');
SELECT ok((SELECT (r ->> 'low')::float8 <= (r ->> 'alpha')::float8 AND (r ->> 'alpha')::float8 <= (r ->> 'high')::float8
             FROM api.agreement_interval(:project, 'class', 'taxonomy', 200, 3) r),
          'api.agreement_interval: the interval holds the estimate');
SELECT throws_ok(format($$SELECT api.agreement_interval(%s, 'bogus')$$, :project), '22023',
                 'dimension: must be class or descriptor:<key> of this project',
                 'api.agreement_interval: an unknown dimension is named, not answered with zero images');
SELECT is(api.agreement_interval(:project, 'class', NULL, 200, 3) ->> 'metric', 'nominal',
          'api.agreement_interval: a null metric is the default, nominal');
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok(format('SELECT api.agreement_interval(%s)', :project), '42501', NULL,
                 'api.agreement_interval: not for annotators');

SELECT * FROM finish();
ROLLBACK;
