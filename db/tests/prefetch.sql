-- next_item names the image of the item likely to come next, so the workspace can fetch it ahead.
BEGIN;
SELECT plan(5);

SELECT * FROM tests.fixture(n_images => 3) \gset
SELECT tests.act_as(:a1, 'annotator');
SELECT api.next_item(:project) AS first \gset
SELECT tests.as_superuser();
SELECT is(:'first'::jsonb ->> 'upcoming_image',
          '/images/' || (SELECT image_id FROM core.work_item WHERE rule_id = :rule AND status = 'new'
                          ORDER BY priority DESC, created_at, id LIMIT 1),
          'the image of the best remaining new item');
SELECT is((:'first'::jsonb -> 'item' ->> 'sent_back')::boolean, false, 'a fresh item is not marked sent back');
SELECT is((SELECT count(*)::int FROM core.work_item WHERE rule_id = :rule AND status = 'in_progress'), 1,
          'only the first is claimed');
SELECT tests.act_as(:a1, 'annotator');
SELECT is(api.next_item(:project) ->> 'upcoming_image', NULL, 'resuming my own item names none');
SELECT tests.act_as(:a2, 'annotator');
SELECT api.next_item(:project);
SELECT tests.act_as(:a3, 'annotator');
SELECT is(api.next_item(:project) ->> 'upcoming_image', NULL, 'the last item has nothing after it');

SELECT * FROM finish();
ROLLBACK;
