-- Region agreement on approved reads: two readers outline image 1's lesion as two 100x50 rectangles shifted by 50 px
-- (intersection 2500 of 5000 each: Dice 0.5, IoU 1/3); on image 2 one draws a lesion and the other vessels (nothing
-- to compare); a read's two masks of one label count as their union.
BEGIN;
SELECT plan(8);

SELECT * FROM tests.fixture(n_images => 2, per_image => 2) \gset
SELECT tests.as_superuser();
CREATE TEMP TABLE plan_of (rank int, annotator bigint, regions jsonb);
GRANT SELECT ON plan_of TO PUBLIC;
INSERT INTO plan_of VALUES
    (1, :a1, '[{"type": "mask", "label": "lesion", "rle": {"size": [800, 1000], "counts": "\\al4b1^g000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000dbRa0"}}]'),
    (1, :a2, '[{"type": "mask", "label": "lesion", "rle": {"size": [800, 1000], "counts": "\\cS6b1^g000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000d`k?"}},
               {"type": "mask", "label": "lesion", "rle": {"size": [800, 1000], "counts": "hZe>T3le000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000XiY7"}}]'),
    (2, :a1, '[{"type": "mask", "label": "lesion", "rle": {"size": [800, 1000], "counts": "\\al4b1^g000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000dbRa0"}}]'),
    (2, :a2, '[{"type": "mask", "label": "vessels", "rle": {"size": [800, 1000], "counts": "\\cS6b1^g000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000d`k?"}}]');
CREATE FUNCTION pg_temp.reads(p_user bigint, p_class bigint) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_agg(tests.content(p_class) || jsonb_build_object('regions', regions) ORDER BY rank)
      FROM plan_of WHERE annotator = p_user
$$;
SELECT tests.annotate_all(:a1, :project, pg_temp.reads(:a1, :mel));
SELECT tests.as_superuser();
SELECT tests.annotate_all(:a2, :project, pg_temp.reads(:a2, :mel));
SELECT tests.as_superuser();
SELECT is((SELECT count(*)::int FROM core.final_mask WHERE project_id = :project), 0, 'core.final_mask: nothing before approval');
SELECT tests.approve_all(:r1, :project);
SELECT tests.as_superuser();
SELECT is((SELECT count(*)::int FROM core.final_mask WHERE project_id = :project), 4,
          'core.final_mask: one row per approved read and label');
SELECT is((SELECT area FROM core.final_mask WHERE project_id = :project AND rater_id = :a2 AND label = 'lesion'), 15000::bigint,
          'core.final_mask: a read''s two lesion masks are their union');
REFRESH MATERIALIZED VIEW metrics.region_agreement_pair;
REFRESH MATERIALIZED VIEW metrics.region_agreement_project;
-- a2's lesion is B plus C: the intersection with A is still 2500, the union of areas 5000 + 15000
SELECT results_eq(format($$SELECT images, mean_dice, mean_iou FROM metrics.region_agreement_pair
                           WHERE project_id = %s AND label = 'lesion'$$, :project),
                  $$VALUES (1::bigint, 2 * 2500 / 20000.0::float8, 2500 / 17500.0::float8)$$,
                  'metrics.region_agreement_pair: Dice and IoU of the two readers'' lesions');
SELECT is((SELECT mean_dice FROM metrics.region_agreement_pair WHERE project_id = :project AND label = 'lesion'),
          (SELECT (core.mask_overlap('{"size": [800, 1000], "counts": "\\al4b1^g000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000dbRa0"}',
                                     '{"size": [800, 1000], "counts": "\\cS6b1^g000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000d`k?"}') ->> 'intersection_px')::float8 * 2 / 20000),
          'metrics.region_agreement_pair: the intersection agrees with core.mask_overlap');
SELECT results_eq(format($$SELECT label, images_drawn, masks, images_compared, pairs FROM metrics.region_agreement_project
                           WHERE project_id = %s ORDER BY label$$, :project),
                  $$VALUES ('lesion', 2::bigint, 3::bigint, 1::bigint, 1::bigint), ('vessels', 1::bigint, 1::bigint, 0::bigint, 0::bigint)$$,
                  'metrics.region_agreement_project: lesions drawn on two images, compared on one; vessels never compared');
SELECT is((SELECT mean_dice FROM metrics.region_agreement_project WHERE project_id = :project AND label = 'vessels'), NULL,
          'metrics.region_agreement_project: no pair, no Dice');
SELECT tests.act_as(:admin, 'admin');
SELECT is((api.metrics(:project, 'region_agreement_project') -> 'rows' -> 0 ->> 'label'), 'lesion',
          'api.metrics: the dashboard reads it');

SELECT * FROM finish();
ROLLBACK;
