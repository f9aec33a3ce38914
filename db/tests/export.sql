-- The export: which approved items, each record field by field, filters, keyset pages, the manifest and its audit.
BEGIN;
SELECT plan(29);

SELECT * FROM tests.fixture(n_images => 3) \gset
SELECT id AS img2 FROM core.image WHERE project_id = :project ORDER BY id OFFSET 1 LIMIT 1 \gset
-- a1 annotates all three (MEL, NV, MEL); r1 approves the first two; the third stays in review
SELECT tests.act_as(:a1, 'annotator');
SELECT api.next_item(:project);
SELECT api.submit_annotation(w.id, tests.content(:mel)) FROM core.work_item w WHERE w.assignee_id = :a1;
SELECT api.next_item(:project);
\set regions2 '[{"type": "polygon", "points": [[0,0],[10,0],[10,10]], "label": "streaks"}, {"type": "mask", "label": "lesion", "rle": {"size": [800, 1000], "counts": "0:fh00000000000000000000000000000000000000Pdmg0"}}, {"type": "line", "points": [[1.5, 2], [30, 40.25]], "label": "vessels"}]'
SELECT api.submit_annotation(w.id, tests.content(:nev) || jsonb_build_object('regions', :'regions2'::jsonb))
  FROM core.work_item w WHERE w.assignee_id = :a1;
SELECT api.next_item(:project);
SELECT api.submit_annotation(w.id, tests.content(:mel)) FROM core.work_item w WHERE w.assignee_id = :a1;
SELECT tests.act_as(:r1, 'reviewer');
SELECT api.next_review(:project);
SELECT api.approve(w.id) FROM core.work_item w WHERE w.assignee_id = :r1;
SELECT api.next_review(:project);
SELECT api.approve(w.id) FROM core.work_item w WHERE w.assignee_id = :r1;

SELECT tests.act_as(:admin, 'admin');
SELECT api.export_page(:project) AS page \gset
SELECT is(jsonb_array_length(:'page'::jsonb), 2, 'only approved items are exported');
SELECT is(:'page'::jsonb -> 0 -> 'class', jsonb_build_object('id', :mel, 'code', 'MEL', 'name', 'Melanoma',
                                                             'icd10', 'C43', 'snomed_ct', '372244006',
                                                             'path', '["NEO", "MEL"]'::jsonb),
          'the class with its codes and path');
SELECT is(:'page'::jsonb -> 0 -> 'descriptors', '{"colours": ["brown"], "diameter_mm": 6}', 'descriptors');
SELECT is(:'page'::jsonb -> 0 ->> 'description', 'Asymmetric **pigmented** lesion', 'description');
SELECT is(:'page'::jsonb -> 0 -> 'regions' -> 0 ->> 'type', 'bbox', 'regions');
SELECT is((:'page'::jsonb -> 0 ->> 'annotator_id')::bigint, :a1::bigint, 'annotator');
SELECT is(:'page'::jsonb -> 0 -> 'reviewer_ids', jsonb_build_array(:r1), 'reviewers');
SELECT is((:'page'::jsonb -> 0 ->> 'revision_count')::int, 1, 'revision count');
SELECT is(:'page'::jsonb -> 0 ->> 'sha256', (SELECT sha256 FROM core.image WHERE id = :img1), 'sha256 of the image');
SELECT is(:'page'::jsonb -> 1 -> 'regions' -> 0 ->> 'label', 'streaks', 'the polygon of the second');
SELECT is(:'page'::jsonb -> 1 -> 'regions', :'regions2'::jsonb, 'masks and lines come through as they were submitted');

-- keyset pages and filters
SELECT is(api.export_page(:project, '{}', 0, 0, 1), jsonb_build_array(:'page'::jsonb -> 0),
          'a page holds at most max_rows records');
SELECT is(jsonb_array_length(api.export_page(:project, '{}', (:'page'::jsonb -> 0 ->> 'image_id')::bigint,
                                             (:'page'::jsonb -> 0 ->> 'item_id')::bigint, 1000)), 1,
          'the page after the first record holds the second');
SELECT is(jsonb_array_length(api.export_page(:project, '{"classes": ["NEO"]}')), 2, 'a class matches its descendants');
SELECT is(api.export_page(:project, '{"classes": ["NV"]}') -> 0 -> 'class' ->> 'code', 'NV', 'filter by class');
SELECT throws_ok(format($$SELECT api.export_page(%s, '{"classes": ["XX"]}')$$, :project), '22023',
                 'filters.classes: not in the taxonomy: XX', 'unknown classes are refused');
SELECT is(api.export_page(:project, jsonb_build_object('image_ids', jsonb_build_array(:'page'::jsonb -> 1 -> 'image_id'))),
          jsonb_build_array(:'page'::jsonb -> 1), 'filter by image');
SELECT is(api.export_page(:project, '{"image_ids": [987654321]}'), '[]', 'an image without records gives nothing');
SELECT throws_ok(format($$SELECT api.export_page(%s, '{"image_ids": [1.5]}')$$, :project), '22023',
                 'filters.image_ids: must be a list of 1 to 10000 image ids', 'image ids are whole numbers');
SELECT throws_ok(format($$SELECT api.export_page(%s, '{"image_ids": "7"}')$$, :project), '22023',
                 'filters.image_ids: must be a list of 1 to 10000 image ids', 'image ids come as a list');
SELECT throws_ok(format($$SELECT api.export_page(%s, '{"image_ids": [99999999999999999999999]}')$$, :project), '22023',
                 'filters.image_ids: must be a list of 1 to 10000 image ids', 'image ids fit an id');
SELECT throws_ok(format($$SELECT api.export_page(%s, '{"to": "2020-13-45"}')$$, :project), '22023',
                 'filters.to: is not a real date or time', 'a bad upper bound is named as the upper bound');
SELECT throws_ok(format($$SELECT api.export_page(%s, '{"from": "yesterday"}')$$, :project), '22023',
                 'filters.from: must be an ISO date or timestamp (2026-01-31, 2026-01-31T08:00Z)',
                 'a relative date is refused: the manifest would not mean the same later');
SELECT is(jsonb_array_length(api.export_page(:project, '{"from": "2000-01-01", "to": "2999-12-31T23:59:59+01:00"}')), 2,
          'ISO dates and timestamps bound the approval time');
SELECT throws_ok(format($$SELECT api.export_page(%s, '{"from": "infinity"}')$$, :project), '22023', NULL,
                 'infinity is no date');

-- the manifest: counts, taxonomy version, audited; annotators may not export
SELECT results_eq(format($$SELECT (m ->> 'items')::int, m -> 'classes', m ->> 'taxonomy_version' ~ '^tx-[0-9a-f]{16}$'
                             FROM api.export_manifest(%s, '{}', 'coco') m$$, :project),
                  $$VALUES (2, '{"MEL": 1, "NV": 1}'::jsonb, true)$$, 'manifest counts and taxonomy version');
SELECT is(ARRAY(SELECT api.export_manifest(:project, '{}', f) ->> 'format' FROM unnest(ARRAY['isic', 'dicom_seg']) f),
          ARRAY['isic', 'dicom_seg'], 'the mask archives are export formats');
SELECT throws_ok(format($$SELECT api.export_manifest(%s, '{}', 'png')$$, :project), '22023',
                 'format: must be jsonl, csv, coco, isic or dicom_seg', 'other formats are refused');
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok(format('SELECT api.export_page(%s)', :project), '42501', NULL, 'annotators cannot export');

SELECT * FROM finish();
ROLLBACK;
