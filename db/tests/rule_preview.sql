-- Previewing a work rule: the images its filters take and the items generate_work_items would create, from the
-- same predicate, before the rule exists.
BEGIN;
SELECT plan(9);

SELECT * FROM tests.fixture(n_images => 0) \gset
SELECT tests.act_as(:admin, 'admin');
-- 6 dermoscopy images (4 in batch b1, of which 2 from the left arm), 3 clinical, 1 dermoscopy image removed
SELECT api.register_image(:project, 'p/' || i, md5('p' || i) || md5('q' || i), 640, 480, 'image/png',
                          CASE WHEN i <= 7 THEN 'dermoscopy' ELSE 'clinical' END,
                          CASE WHEN i <= 4 THEN 'b1' ELSE 'b2' END,
                          CASE WHEN i <= 2 THEN '{"site": "left arm"}'::jsonb ELSE '{}'::jsonb END)
  FROM generate_series(1, 10) i;
SELECT tests.as_superuser();
UPDATE core.image SET status = 'removed' WHERE project_id = :project AND storage_key = 'p/7';
SELECT tests.act_as(:admin, 'admin');

SELECT is(api.preview_work_rule(:project), '{"images": 9, "items": 9, "would_create": 9}',
          'no filter: every active image (the removed one left out), one item each');
SELECT is(api.preview_work_rule(:project, source_classes => '{dermoscopy}', annotations_per_image => 2),
          '{"images": 6, "items": 12, "would_create": 12}', 'by source class, double annotation');
SELECT is(api.preview_work_rule(:project, source_classes => '{dermoscopy}', upload_batch => 'b1',
                                metadata_filter => '{"site": "left arm"}'),
          '{"images": 2, "items": 2, "would_create": 2}', 'batch and metadata narrow it down');
SELECT is(api.preview_work_rule(:project, source_classes => '{dermoscopy}', annotations_per_image => 2,
                                max_items => 5) ->> 'would_create', '4', 'max_items: whole images only (2 x 2)');

-- what the preview promised is what generation creates
SELECT (api.create_work_rule(:project, 'derm x2', 5, source_classes => '{dermoscopy}', annotations_per_image => 2)
        ->> 'id')::bigint AS r \gset
SELECT is(api.generate_work_items(:r) ->> 'created', '4', 'generate creates what the preview said');

SELECT throws_ok(format('SELECT api.preview_work_rule(%s, annotations_per_image => 0)', :project), '22023',
                 'annotations_per_image: must be between 1 and 10', 'a bad slot count is refused');
SELECT throws_ok(format($$SELECT api.preview_work_rule(%s, metadata_filter => '[1]')$$, :project), '22023',
                 'metadata_filter: must be a JSON object matched by containment',
                 'a metadata filter must be an object (the checks of create_work_rule)');
SELECT tests.as_superuser();
SELECT tests.act_as(:outsider, 'admin');
SELECT throws_ok(format('SELECT api.preview_work_rule(%s)', :project), 'P0002', NULL,
                 'an admin of other projects finds no such project');
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok(format('SELECT api.preview_work_rule(%s)', :project), '42501', NULL, 'annotators may not call it');

SELECT * FROM finish();
ROLLBACK;
