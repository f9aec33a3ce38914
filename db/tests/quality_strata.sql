-- metrics.quality_by_stratum on hand-built data: four images read twice, two of skin type I (the readers agree), two
-- of skin type V (they disagree); the AI says MEL everywhere but NV on image 2; image 1 becomes gold and a third
-- annotator misses it. Expected per stratum worked out in the comments.
BEGIN;
SELECT plan(9);

SELECT * FROM tests.fixture(n_images => 4, per_image => 2) \gset
SELECT tests.act_as(:admin, 'admin');
SELECT api.set_descriptor_schema(:project, '[
    {"key": "colours", "kind": "multi", "options": ["brown", "black"], "required": true},
    {"key": "skin", "kind": "single", "options": ["I", "II", "III", "IV", "V", "VI"]},
    {"key": "diameter_mm", "kind": "number", "min": 0, "max": 200}]');
SELECT throws_ok(format($$SELECT api.set_quality_strata(%s, '{diameter_mm}')$$, :project), '22023',
                 'keys: diameter_mm is not a single-choice or yes/no descriptor of this project',
                 'api.set_quality_strata: only categorical descriptors stratify');
SELECT is(api.set_quality_strata(:project, '{skin}') -> 'quality_strata', '["skin"]'::jsonb,
          'api.set_quality_strata: the admin picks the skin type');
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok(format($$SELECT api.set_quality_strata(%s, '{skin}')$$, :project), '42501', NULL,
                 'api.set_quality_strata: not for annotators');

SELECT tests.as_superuser();
SELECT id AS img1 FROM core.image WHERE project_id = :project ORDER BY id LIMIT 1 \gset
-- image rank 0: MEL/MEL, 1: NV/NV (type I); 2: MEL/NV, 3: NV/MEL (type V)
CREATE FUNCTION pg_temp.read(p_class bigint, p_skin text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('class', p_class, 'descriptors', jsonb_build_object('colours', '["brown"]'::jsonb, 'skin', p_skin))
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pg_temp TO PUBLIC;
SELECT tests.annotate_all(:a1, :project, jsonb_build_array(pg_temp.read(:mel, 'I'), pg_temp.read(:nev, 'I'),
                                                          pg_temp.read(:mel, 'V'), pg_temp.read(:nev, 'V')));
SELECT tests.annotate_all(:a2, :project, jsonb_build_array(pg_temp.read(:mel, 'I'), pg_temp.read(:nev, 'I'),
                                                          pg_temp.read(:nev, 'V'), pg_temp.read(:mel, 'V')));
SELECT tests.approve_all(:r1, :project);
SELECT tests.as_superuser();
SELECT is((SELECT count(*)::int FROM core.work_item WHERE project_id = :project AND status = 'done'), 8, 'eight reads approved');

-- the AI's top class: MEL, but NV for image 2
INSERT INTO core.ai_suggestion (image_id, stage, model_name, model_version, payload, latency_ms)
SELECT i.id, 'classify', 'm', '1',
       jsonb_build_object('classes', jsonb_build_array(jsonb_build_object('node_id', CASE WHEN i.rank = 2 THEN :nev ELSE :mel END,
                                                                          'probability', 0.9))), 1
  FROM (SELECT id, row_number() OVER (ORDER BY id) AS rank FROM core.image WHERE project_id = :project) i;
-- image 1 becomes gold; a3 is handed it as a gold check and answers NV
SELECT tests.act_as(:admin, 'admin');
SELECT api.set_gold(:img1);
SELECT api.update_work_rule(:rule, '{"gold_rate": 0.5}');
SELECT tests.act_as(:a3, 'annotator');
SELECT api.submit_annotation((tests.until_gold(:project) -> 'item' ->> 'id')::bigint,
                             jsonb_build_object('class', :nev, 'descriptors', '{"colours": ["brown"], "skin": "I"}'::jsonb));
SELECT tests.as_superuser();
REFRESH MATERIALIZED VIEW metrics.quality_by_stratum;

-- type I: 4 ratings, all agreeing, labels MEL 2 and NV 2: alpha 1. AI: MEL on image 1 (2 agree), NV on image 2 (2
-- agree): 4 of 4. Gold: one check, wrong: 0.
SELECT results_eq(format($$SELECT images, images_read_twice, ratings, class_alpha, gold_checks, gold_accuracy,
                                  ai_items, ai_agreement_rate
                             FROM metrics.quality_by_stratum WHERE project_id = %s AND stratum = 'skin' AND value = 'I'$$,
                         :project),
                  $$VALUES (2::bigint, 2::bigint, 4::bigint, 1::float8, 1::bigint, 0::float8, 4::bigint, 1::float8)$$,
                  'metrics.quality_by_stratum: type I, readers agree, the gold check missed, the AI right');
-- type V: 4 ratings each with one disagreeing partner: disagreement 4; MEL 2, NV 2: alpha = 1 - 3 * 4 / (16 - 8)
-- = -0.5. AI MEL: agrees with one read of each image: 2 of 4. No gold.
SELECT results_eq(format($$SELECT images, ratings, class_alpha, gold_checks, gold_accuracy, ai_items, ai_agreement_rate
                             FROM metrics.quality_by_stratum WHERE project_id = %s AND stratum = 'skin' AND value = 'V'$$,
                         :project),
                  $$VALUES (2::bigint, 4::bigint, -0.5::float8, 0::bigint, NULL::float8, 4::bigint, 0.5::float8)$$,
                  'metrics.quality_by_stratum: type V, readers disagree, the AI half right');
SELECT is((SELECT class_alpha FROM metrics.quality_by_stratum WHERE project_id = :project AND value = 'V'),
          (SELECT core.krippendorff_alpha(array_agg(f.image_id), array_agg(f.label), 'nominal')
             FROM core.final_label f
            WHERE f.project_id = :project AND f.dimension = 'class'
              AND f.image_id IN (SELECT image_id FROM core.final_label WHERE dimension = 'descriptor:skin' AND label = 'V')),
          'metrics.quality_by_stratum: the stratum''s alpha equals core.krippendorff_alpha on its images');
SELECT is((SELECT count(*)::int FROM metrics.quality_by_stratum WHERE project_id = :project), 2,
          'metrics.quality_by_stratum: one row per value that occurs');
SELECT ok(EXISTS (SELECT 1 FROM pg_views WHERE schemaname = 'analytics' AND viewname = 'quality_by_stratum'),
          'analysts read it as analytics.quality_by_stratum');

SELECT * FROM finish();
ROLLBACK;
