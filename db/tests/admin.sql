-- Admin configuration: rules (limits, idempotence, trigger on upload, whole images), image registration,
-- flags, cancellation, reassignment, priority.
BEGIN;
SELECT plan(24);

SELECT * FROM tests.fixture(n_images => 0) \gset
SELECT tests.act_as(:admin, 'admin');

-- images: a re-upload is reported, not duplicated
SELECT is(api.register_image(:project, 'a/1', repeat('a', 64), 640, 480, 'image/png', 'derm', 'b1') ->> 'duplicate',
          'false', 'a new image is registered');
SELECT is(api.register_image(:project, 'a/1-again', repeat('a', 64), 640, 480, 'image/png', 'derm', 'b1') ->> 'duplicate',
          'true', 'the same sha256 again is reported as a duplicate');
SELECT throws_ok(format($$SELECT api.register_image(%s, 'x', 'nothex', 1, 1, 'image/png')$$, :project), '23514',
                 NULL, 'a malformed sha256 is refused');
SELECT throws_ok(format($$SELECT api.register_image(%s, 'x', %L, 1, 1, 'text/html')$$, :project, repeat('b', 64)),
                 '22023', 'media_type: must be image/jpeg, image/png, image/tiff, image/webp or application/dicom',
                 'a non-image media type is refused');
SELECT is((SELECT count(*)::int FROM core.image WHERE project_id = :project), 1, 'one image after all that');

-- a rule over source class "derm" with room for 5 items, double annotation
SELECT (api.create_work_rule(:project, 'derm x2', 5, source_classes => '{derm}', annotations_per_image => 2)
        ->> 'id')::bigint AS r \gset
SELECT is((SELECT count(*)::int FROM core.work_item WHERE rule_id = :r), 0, 'creating a rule creates no items by itself');
SELECT is(api.generate_work_items(:r) ->> 'created', '2', 'generate: both slots of the one matching image');
SELECT is(api.generate_work_items(:r) ->> 'created', '0', 'generate again: nothing new (idempotent)');

-- uploads that match get items by trigger, whole images only, never beyond the limit
SELECT api.register_image(:project, 'a/' || i, md5(i::text) || md5(i::text), 640, 480, 'image/png', 'derm', 'b2')
  FROM generate_series(2, 5) i;
SELECT is((SELECT count(*)::int FROM core.work_item WHERE rule_id = :r), 4,
          'later uploads got items up to the limit of 5, whole images only (2 + 2)');
SELECT is((SELECT count(DISTINCT image_id)::int FROM core.work_item WHERE rule_id = :r), 2, 'two images covered');
SELECT api.register_image(:project, 'c/1', repeat('c', 64), 640, 480, 'image/png', 'other', 'b2');
SELECT is((SELECT count(*)::int FROM core.work_item w JOIN core.image i ON i.id = w.image_id
            WHERE i.source_class = 'other' AND w.rule_id = :r), 0, 'an image of another source class gets no item');
SELECT api.update_work_rule(:r, '{"max_items": 8}');
SELECT is(api.generate_work_items(:r) ->> 'created', '4', 'raising the limit lets generate fill it');
SELECT throws_ok(format($$SELECT api.update_work_rule(%s, '{"max_items": "many"}')$$, :r), '22023', NULL,
                 'a wrongly typed patch is refused');
SELECT throws_ok(format($$SELECT api.update_work_rule(%s, '{"colour": 1}')$$, :r), '22023',
                 'patch.colour: is not a field of a work rule', 'an unknown patch field is refused');
SELECT throws_ok(format($$SELECT api.create_work_rule(%s, 'bad pool', 3, pool_user_ids => ARRAY[%s]::bigint[])$$,
                        :project, :outsider), '22023', NULL, 'a private pool of non-members is refused');

-- metadata filter
SELECT api.register_image(:project, 'm/1', repeat('d', 64), 640, 480, 'image/png', 'meta', 'b3', '{"site": "back"}');
SELECT api.register_image(:project, 'm/2', repeat('e', 64), 640, 480, 'image/png', 'meta', 'b3', '{"site": "face"}');
SELECT (api.create_work_rule(:project, 'backs', 10, metadata_filter => '{"site": "back"}') ->> 'id')::bigint AS mr \gset
SELECT is(api.generate_work_items(:mr) ->> 'created', '1', 'metadata filter: only the image whose metadata contains it');

-- priority and cancellation
SELECT min(id) AS item FROM core.work_item WHERE rule_id = :r \gset
SELECT is(api.set_item_priority(:item, 50) ->> 'priority', '50', 'set_item_priority');
SELECT is(api.cancel_item(:item, 'not needed') ->> 'status', 'cancelled', 'cancel_item');
SELECT throws_ok(format('SELECT api.cancel_item(%s)', :item), 'PT409', NULL, 'cancelling twice is 409');

-- flags: restore puts the item back; remove_image closes every item of the image
SELECT tests.act_as(:a1, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS flagged_item \gset
SELECT (api.reject_image(:flagged_item, 'not_skin') ->> 'flag_id')::bigint AS flag \gset
SELECT tests.act_as(:admin, 'admin');
SELECT is(jsonb_array_length(api.open_flags(:project)), 1, 'the flag is open');
SELECT is(api.resolve_flag(:flag, 'restore') ->> 'resolution', 'restore', 'restore');
SELECT tests.as_superuser();
SELECT ok((SELECT w.status = 'new' AND i.status = 'active' FROM core.work_item w JOIN core.image i ON i.id = w.image_id
            WHERE w.id = :flagged_item), 'restored: item new, image active');
SELECT tests.act_as(:a2, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS again \gset
SELECT (api.reject_image(:again, 'identifiable') ->> 'flag_id')::bigint AS flag2 \gset
SELECT tests.act_as(:admin, 'admin');
SELECT api.resolve_flag(:flag2, 'remove_image', 'face visible');
SELECT tests.as_superuser();
SELECT ok((SELECT bool_and(w.status IN ('cancelled', 'done')) AND bool_and(i.status = 'removed')
             FROM core.work_item w JOIN core.image i ON i.id = w.image_id
            WHERE w.image_id = (SELECT image_id FROM core.work_item WHERE id = :again)),
          'remove_image: the image is out and all its unfinished items are closed');
SELECT tests.act_as(:admin, 'admin');
SELECT throws_ok(format($$SELECT api.resolve_flag(%s, 'restore')$$, :flag2), 'PT409', NULL,
                 'a resolved flag cannot be resolved again');

SELECT * FROM finish();
ROLLBACK;
