-- Labels made elsewhere come in as suggestions: matched by sha256 and class code, shown like a model's, audited.
BEGIN;
SELECT plan(11);

SELECT * FROM tests.fixture(n_images => 3) \gset
SELECT tests.act_as(:admin, 'admin');
SELECT sha256 AS sha1 FROM core.image WHERE id = :img1 \gset

SELECT api.import_labels(:project, jsonb_build_array(
    jsonb_build_object('sha256', upper(:'sha1'), 'class', jsonb_build_object('code', 'mel', 'name', 'Melanoma'),
                       'descriptors', '{"border": "irregular"}'::jsonb, 'description', 'from the old tool'),
    jsonb_build_object('sha256', repeat('f', 64), 'class', 'NV'),
    (SELECT jsonb_build_object('sha256', sha256, 'class_code', 'XYZ') FROM core.image
      WHERE project_id = :project AND id <> :img1 ORDER BY id LIMIT 1)), 'legacy') AS out \gset

SELECT is((:'out'::jsonb ->> 'imported')::int, 2, 'two records matched an image of the project');
SELECT is(:'out'::jsonb -> 'unmatched_images', jsonb_build_array(repeat('f', 64)), 'the unknown image is reported');
SELECT is(:'out'::jsonb -> 'unmapped_classes', '{"XYZ": 1}', 'and the code the taxonomy lacks');

SELECT tests.as_superuser();
SELECT results_eq(format($$SELECT model_name, stage::text, payload -> 'classes' -> 0 ->> 'code',
                                 (payload -> 'classes' -> 0 ->> 'probability')::numeric,
                                 payload -> 'imported' ->> 'description'
                            FROM core.ai_suggestion WHERE image_id = %s$$, :img1),
                  $$VALUES ('import:legacy', 'classify', 'MEL', 1::numeric, 'from the old tool')$$,
                  'stored as a classification suggestion named after its source, the rest of the label kept');
SELECT is((SELECT count(*)::int FROM audit.event WHERE action = 'import_labels' AND entity_id = :project), 1,
          'the import is audited');

-- the annotator sees it like a model's suggestion
SELECT tests.act_as(:a1, 'annotator');
SELECT api.next_item(:project) AS doc \gset
SELECT is(:'doc'::jsonb -> 'item' -> 'ai' -> 'classify' ->> 'model', 'import:legacy',
          'the workspace shows the imported label as a suggestion');

-- a bad batch is refused whole and stores nothing
SELECT tests.act_as(:admin, 'admin');
SELECT throws_ok(format($$SELECT api.import_labels(%s, '[{"sha256": "%s", "class": "MEL"}, {"class": "MEL"}]')$$,
                        :project, :'sha1'), '22023', 'records[1].sha256: is required', 'a record without sha256');
SELECT throws_ok(format($$SELECT api.import_labels(%s, '[{"sha256": "%s"}]')$$, :project, :'sha1'), '22023',
                 'records[0].class: needs class.code (or class_code)', 'a record without a class');
SELECT throws_ok(format($$SELECT api.import_labels(%s, '{"sha256": "x"}')$$, :project), '22023',
                 'records: must be a JSON array of records', 'not an array');
SELECT tests.as_superuser();
SELECT is((SELECT count(*)::int FROM core.ai_suggestion WHERE image_id = :img1), 1, 'nothing more was stored');
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok(format($$SELECT api.import_labels(%s, '[]')$$, :project), '42501', NULL, 'annotators may not import');

SELECT * FROM finish();
ROLLBACK;
