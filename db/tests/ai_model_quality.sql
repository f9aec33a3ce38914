-- The AI as a rater: a model (m 1) suggested MEL on images 1 and 2, imported labels said NV on image 3; the annotator
-- takes MEL on image 1 (and outlines the lesion 50 px off the crop stage's mask), answers NV on image 2 and NV on 3.
BEGIN;
SELECT plan(6);

SELECT * FROM tests.fixture(n_images => 3, per_image => 1) \gset
SELECT tests.as_superuser();
CREATE TEMP TABLE imgs AS SELECT id, row_number() OVER (ORDER BY id)::int AS rank FROM core.image WHERE project_id = :project;
GRANT SELECT ON imgs TO PUBLIC;
INSERT INTO core.ai_suggestion (image_id, stage, model_name, model_version, payload, latency_ms)
SELECT id, 'classify', CASE WHEN rank = 3 THEN 'import:legacy' ELSE 'm' END, CASE WHEN rank = 3 THEN 'labels' ELSE '1' END,
       jsonb_build_object('classes', jsonb_build_array(jsonb_build_object(
           'node_id', CASE WHEN rank = 3 THEN :nev ELSE :mel END, 'probability', 0.8))), 1
  FROM imgs;
INSERT INTO core.ai_suggestion (image_id, stage, model_name, model_version, payload, latency_ms)
SELECT id, 'crop', 'm', '1', '{"box": {"x": 0, "y": 0, "width": 10, "height": 10},
                               "mask": {"size": [800, 1000], "counts": "\\al4b1^g000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000dbRa0"}}', 1
  FROM imgs WHERE rank = 1;
-- image 1: MEL taken, with a lesion mask; images 2 and 3: NV
SELECT tests.annotate_all(:a1, :project, jsonb_build_array(
    tests.content(:mel) || '{"regions": [{"type": "mask", "label": "lesion", "rle": {"size": [800, 1000], "counts": "\\cS6b1^g000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000d`k?"}}]}'::jsonb,
    tests.content(:nev), tests.content(:nev)));
SELECT tests.approve_all(:r1, :project);
SELECT tests.as_superuser();
SELECT is((SELECT count(*)::int FROM core.ai_outcome WHERE project_id = :project), 3, 'core.ai_outcome: one row per approved item shown an AI class');
SELECT results_eq(format($$SELECT accepted, distance, mask_iou FROM core.ai_outcome o JOIN imgs i ON i.id = o.image_id
                           WHERE o.project_id = %s ORDER BY i.rank$$, :project),
                  $$VALUES (true, 0::float8, 2500 / 7500.0::float8), (false, 0.5::float8, NULL::float8),
                           (true, 0::float8, NULL::float8)$$,
                  'core.ai_outcome: taken or not, taxonomy distance, the suggested mask''s IoU with the final one');
REFRESH MATERIALIZED VIEW metrics.ai_model_quality;
-- model m: 2 items, 1 taken, 1 agreeing; kappa: po 1/2, pe = (2 x 1) / 4 = 1/2, so 0; distance (0 + 0.5) / 2
SELECT results_eq(format($$SELECT items, accepted, acceptance_rate, agreement_rate, cohen_kappa, mean_taxonomy_distance,
                                  mask_items, mean_mask_iou
                             FROM metrics.ai_model_quality WHERE project_id = %s AND source = 'model'$$, :project),
                  $$VALUES (2::bigint, 1::bigint, 0.5::float8, 0.5::float8, 0::float8, 0.25::float8, 1::bigint, 2500 / 7500.0::float8)$$,
                  'metrics.ai_model_quality: the model''s acceptance, agreement, kappa, distance and mask IoU');
SELECT results_eq(format($$SELECT model_name, model_version, items, acceptance_rate
                             FROM metrics.ai_model_quality WHERE project_id = %s AND source = 'import'$$, :project),
                  $$VALUES ('import:legacy', 'labels', 1::bigint, 1::float8)$$,
                  'metrics.ai_model_quality: imported labels reported apart from models');
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok('SELECT * FROM metrics.ai_model_quality', '42501', NULL, 'metrics.ai_model_quality: not for annotators');
SELECT tests.act_as(:admin, 'admin');
SELECT is(jsonb_array_length(api.metrics(:project, 'ai_model_quality') -> 'rows'), 2, 'api.metrics: admins read it');

SELECT * FROM finish();
ROLLBACK;
