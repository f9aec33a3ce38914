-- Row-level security as the HTTP layer meets it: what each role sees when reading core tables.
BEGIN;
SELECT plan(16);

SELECT * FROM tests.fixture(n_images => 4) \gset
SELECT tests.act_as(:a1, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS i1 \gset
SELECT api.save_draft(:i1, '{"description": "secret draft"}');
SELECT tests.act_as(:a2, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS i2 \gset
SELECT api.submit_annotation(:i2, tests.content(:nev));

SELECT tests.act_as(:a1, 'annotator');
SELECT is((SELECT array_agg(id) FROM core.work_item), ARRAY[:i1]::bigint[], 'a1 sees only the item they hold');
SELECT is((SELECT count(*)::int FROM core.annotation_draft), 1, 'a1 sees their own draft');
SELECT throws_ok(format('SELECT api.item_detail(%s)', :i2), 'P0002', NULL,
                 'a2''s item answers a1 exactly like a missing one');
SELECT throws_ok('SELECT api.item_detail(987654321)', 'P0002', NULL, 'a missing item: the same answer');
SELECT is((SELECT count(*)::int FROM core.annotation_revision), 0, 'a1 sees no one else''s revisions');

SELECT tests.act_as(:a2, 'annotator');
SELECT is((SELECT count(*)::int FROM core.annotation_draft), 0, 'a2 cannot read a1''s draft');
SELECT is((SELECT count(*)::int FROM core.work_item WHERE id = :i1), 0, 'nor a1''s in-progress item');
SELECT is(api.item_detail(:i2) -> 'latest_revision' ->> 'revision_seq', '1', 'a2 reads their own submitted item');

SELECT tests.act_as(:r1, 'reviewer');
SELECT is((SELECT array_agg(id) FROM core.work_item), ARRAY[:i2]::bigint[], 'a reviewer sees the items in review');
SELECT is((SELECT count(*)::int FROM core.annotation_draft), 0, 'a reviewer sees no drafts');

SELECT tests.act_as(:admin, 'admin');
SELECT is((SELECT count(*)::int FROM core.work_item), 4, 'an admin sees every item of their project');
SELECT tests.act_as(:outsider, 'admin');
SELECT is((SELECT count(*)::int FROM core.work_item WHERE project_id = :project)
          + (SELECT count(*)::int FROM core.image WHERE project_id = :project)
          + (SELECT count(*)::int FROM core.project WHERE id = :project), 0,
          'an admin of another organization''s project sees none of this one');
SELECT throws_ok(format('SELECT api.item_detail(%s)', :i1), 'P0002', NULL, 'and item_detail says not found');

SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok('SELECT password_hash FROM auth."user"', '42501', NULL, 'no role can read password hashes');
SELECT tests.act_as(:a1, 'analyst');
SELECT throws_ok('SELECT count(*) FROM core.work_item', '42501', NULL, 'an analyst cannot read core tables');
SELECT throws_ok('SELECT count(*) FROM auth."user"', '42501', NULL, 'nor users');

SELECT * FROM finish();
ROLLBACK;
