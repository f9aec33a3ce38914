-- The access audit: every read of image bytes or an item's document is a row; admins and analysts of the
-- organization ask who viewed an image; the record is append-only and partitioned by month.
BEGIN;
SELECT plan(11);

SELECT * FROM tests.fixture(n_images => 2) \gset
SELECT tests.act_as(:a1, 'annotator');
SELECT api.next_item(:project) -> 'item' AS it \gset
SELECT (:'it'::jsonb -> 'image' ->> 'id')::bigint AS img, (:'it'::jsonb ->> 'id')::bigint AS item \gset
SELECT api.image_file(:img, 'original');
SELECT api.image_file(:img, 'thumb');
SELECT api.item_detail(:item);
SELECT throws_ok(format($$SELECT api.image_file(%s, 'everything')$$, :img), '22023', NULL, 'a variant it does not know');

SELECT tests.as_superuser();
SELECT is((SELECT array_agg(what ORDER BY at) FROM audit.access WHERE image_id = :img AND actor_id = :a1),
          '{item,original,thumb,item}'::text[], 'next_item, the original, the thumbnail and item_detail are recorded');
SELECT ok((SELECT bool_and(request_id = 'req-test' AND organization_id = (SELECT organization_id FROM core.project
                                                                           WHERE id = :project))
             FROM audit.access WHERE image_id = :img), 'with the request and the organization');
SELECT ok(to_regclass('audit.access_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')) IS NOT NULL,
          'this month has its partition');
SELECT is((SELECT count(*)::int FROM audit.access_default), 0, 'nothing falls into the default partition');

SELECT tests.act_as(:admin, 'admin');
SELECT api.image_access(:img) AS seen \gset
SELECT is(jsonb_array_length(:'seen'::jsonb), 4, 'the organization''s admin sees every read of the image');
SELECT is(:'seen'::jsonb -> 0 -> 'actor' ->> 'id', :'a1', 'and who it was');
SELECT tests.act_as(:outsider, 'admin');
SELECT throws_ok(format('SELECT api.image_access(%s)', :img), 'P0002', NULL,
                 'another organization''s admin finds no such image');
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok(format('SELECT api.image_access(%s)', :img), '42501', NULL, 'an annotator may not ask');

SELECT tests.as_superuser();
SELECT throws_ok('DELETE FROM audit.access', '25006', NULL, 'the record is append-only');
SELECT throws_ok('UPDATE audit.access SET what = ''thumb''', '25006', NULL, 'and never rewritten');

SELECT * FROM finish();
ROLLBACK;
