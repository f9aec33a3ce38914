-- Vacation cover in bulk: every open item of one annotator to another, each through reassign_item.
BEGIN;
SELECT plan(10);

SELECT * FROM tests.fixture(n_images => 3, per_image => 2) \gset
-- a1: image 1 submitted then sent back for edits, image 2 in progress; a2 holds the second slot of image 1
SELECT tests.act_as(:a1, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS i1 \gset
SELECT api.submit_annotation(:i1, tests.content(:mel));
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS i2 \gset
SELECT tests.act_as(:r1, 'reviewer');
SELECT api.next_review(:project);
SELECT api.request_changes(:i1, 'look at the border again');
SELECT tests.act_as(:a2, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS b \gset
SELECT tests.as_superuser();
SELECT is((SELECT image_id FROM core.work_item WHERE id = :b), (SELECT image_id FROM core.work_item WHERE id = :i1),
          'a2 annotates image 1 too (setup)');

SELECT tests.act_as(:admin, 'admin');
SELECT api.reassign_user_items(:project, :a1, :a2) AS out \gset
SELECT is(:'out'::jsonb -> 'moved', jsonb_build_array(:i2), 'the item of image 2 moves to a2');
SELECT is((:'out'::jsonb -> 'kept' -> 0 ->> 'item_id')::bigint, :i1::bigint,
          'the item of image 1 stays: a2 already annotates that image');
SELECT matches(:'out'::jsonb -> 'kept' -> 0 ->> 'reason', 'already annotates', 'and says why');
SELECT tests.as_superuser();
SELECT results_eq(format('SELECT annotator_id, assignee_id, status::text FROM core.work_item WHERE id = %s', :i2),
                  format('VALUES (%s::bigint, %s::bigint, %L)', :a2, :a2, 'in_progress'),
                  'a2 now holds it, in progress');
SELECT is((SELECT count(*)::int FROM audit.event WHERE entity = 'work_item' AND entity_id = :i2
                                                   AND action = 'reassign_item'), 1, 'audited like a single reassignment');

SELECT tests.act_as(:admin, 'admin');
SELECT is(api.reassign_item(:i1, :a3) ->> 'annotator_id', :a3::text,
          'a single item sent back for edits can go to a third annotator');
SELECT throws_ok(format('SELECT api.reassign_user_items(%s, %s, %s)', :project, :a1, :r1), '22023',
                 'to_user: must be an active annotator of the project', 'only to an annotator of the project');
SELECT throws_ok(format('SELECT api.reassign_user_items(%s, %s, %s)', :project, :a1, :a1), '22023',
                 'to_user: must be someone else', 'not to the same person');
SELECT tests.act_as(:a2, 'annotator');
SELECT throws_ok(format('SELECT api.reassign_user_items(%s, %s, %s)', :project, :a1, :a2), '42501', NULL,
                 'annotators may not call it');

SELECT * FROM finish();
ROLLBACK;
