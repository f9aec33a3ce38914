-- Work rules (R__rules.sql; the item count V18): previewing a rule from the same predicate generation uses, before
-- the rule exists; and work_rule.items, what max_items limits, kept by triggers instead of counted at every upload.
BEGIN;
SELECT plan(16);

-- api.preview_work_rule
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
          'api.preview_work_rule: no filter: every active image (the removed one left out), one item each');
SELECT is(api.preview_work_rule(:project, source_classes => '{dermoscopy}', annotations_per_image => 2),
          '{"images": 6, "items": 12, "would_create": 12}',
          'api.preview_work_rule: by source class, double annotation');
SELECT is(api.preview_work_rule(:project, source_classes => '{dermoscopy}', upload_batch => 'b1',
                                metadata_filter => '{"site": "left arm"}'),
          '{"images": 2, "items": 2, "would_create": 2}', 'api.preview_work_rule: batch and metadata narrow it down');
SELECT is(api.preview_work_rule(:project, source_classes => '{dermoscopy}', annotations_per_image => 2,
                                max_items => 5) ->> 'would_create', '4',
          'api.preview_work_rule: max_items: whole images only (2 x 2)');

-- what the preview promised is what generation creates
SELECT (api.create_work_rule(:project, 'derm x2', 5, source_classes => '{dermoscopy}', annotations_per_image => 2)
        ->> 'id')::bigint AS r \gset
SELECT is(api.generate_work_items(:r) ->> 'created', '4', 'api.generate_work_items: creates what the preview said');

SELECT throws_ok(format('SELECT api.preview_work_rule(%s, annotations_per_image => 0)', :project), '22023',
                 'annotations_per_image: must be between 1 and 10',
                 'api.preview_work_rule: a bad slot count is refused');
SELECT throws_ok(format($$SELECT api.preview_work_rule(%s, metadata_filter => '[1]')$$, :project), '22023',
                 'metadata_filter: must be a JSON object matched by containment',
                 'api.preview_work_rule: a metadata filter must be an object (the checks of create_work_rule)');
SELECT tests.as_superuser();
SELECT tests.act_as(:outsider, 'admin');
SELECT throws_ok(format('SELECT api.preview_work_rule(%s)', :project), 'P0002', NULL,
                 'api.preview_work_rule: an admin of other projects finds no such project');
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok(format('SELECT api.preview_work_rule(%s)', :project), '42501', NULL,
                 'api.preview_work_rule: annotators may not call it');

-- work_rule.items: core.count_added_items (per statement) and core.count_changed_item (per row), V18
SELECT tests.as_superuser();
SELECT * FROM tests.fixture(n_images => 4, per_image => 2, max_items => 10) \gset
CREATE TEMP VIEW counted AS
    SELECT r.id, r.items AS kept, (SELECT count(*)::int FROM core.work_item w WHERE w.rule_id = r.id
                                    AND w.status <> 'cancelled' AND NOT w.gold_check) AS actual
      FROM core.work_rule r;
GRANT SELECT ON counted TO PUBLIC;

SELECT is((SELECT kept FROM counted WHERE id = :rule), 8, 'core.count_added_items: generation counted: 4 images x 2');
SELECT tests.act_as(:admin, 'admin');
SELECT api.register_image(:project, 'k/extra', repeat('e', 64), 10, 10, 'image/png');
SELECT is((SELECT kept FROM counted WHERE id = :rule), 10, 'core.count_added_items: an upload adds its items');
SELECT api.register_image(:project, 'k/extra2', repeat('f', 64), 10, 10, 'image/png');
SELECT is((SELECT kept FROM counted WHERE id = :rule), 10,
          'core.generate_items: a full rule takes no more (whole images only)');

SELECT id AS victim FROM core.work_item WHERE rule_id = :rule AND status = 'new' ORDER BY id LIMIT 1 \gset
SELECT api.cancel_item(:victim, 'not needed');
SELECT is((SELECT kept FROM counted WHERE id = :rule), 9, 'core.count_changed_item: a cancelled item no longer counts');

-- a gold check is not limited by max_items; inserting one changes nothing
SELECT tests.as_superuser();
INSERT INTO core.work_item (project_id, image_id, rule_id, slot, gold_check)
SELECT project_id, image_id, rule_id, 9, true FROM core.work_item WHERE id = :victim;
SELECT is((SELECT kept FROM counted WHERE id = :rule), 9, 'core.count_added_items: gold checks do not count');

-- and the kept count equals a count of the items for every rule of the database
SELECT is((SELECT count(*)::int FROM counted WHERE kept <> actual), 0,
          'core.count_added_items, core.count_changed_item: kept = counted, every rule');
-- items are not deleted by any api function; if a DBA deletes one, the count follows
DELETE FROM core.work_item WHERE id = (SELECT max(id) FROM core.work_item WHERE rule_id = :rule AND status = 'new'
                                                                           AND NOT gold_check);
SELECT is((SELECT kept FROM counted WHERE id = :rule), 8, 'core.count_changed_item: a deleted item no longer counts');

SELECT * FROM finish();
ROLLBACK;
