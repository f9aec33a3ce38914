-- Click-to-segment's SQL side (api.segment_source): who may ask about an item (those who may open it, everyone else
-- answered like a missing id, before the prompt is looked at), what it answers (where the bytes and the prepared
-- embedding are), and the prompt's checks, each naming its field.
BEGIN;
SELECT plan(35);

SELECT * FROM tests.fixture(n_images => 2) \gset
SELECT tests.act_as(:a1, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS item \gset
SELECT tests.as_superuser();
SELECT image_id AS img FROM core.work_item WHERE id = :item \gset
SELECT id AS other_item FROM core.work_item WHERE project_id = :project AND id <> :item LIMIT 1 \gset

-- What the holder of the item gets.
SELECT tests.act_as(:a1, 'annotator');
SELECT api.segment_source(:item, '{"points": [[500, 400, 1]]}') AS src \gset
SELECT is(:'src'::jsonb - 'storage_key',
          jsonb_build_object('item_id', :item, 'image_id', :img, 'media_type', 'image/jpeg', 'width', 1000,
                             'height', 800, 'embedding_key', NULL, 'points', '[[500, 400, 1]]'::jsonb, 'box', NULL),
          'the image''s size and type, no embedding yet, the prompt back');
SELECT is(:'src'::jsonb ->> 'storage_key', (SELECT storage_key FROM core.image WHERE id = :img),
          'where the image''s bytes are');
SELECT tests.as_superuser();
INSERT INTO core.ai_suggestion (image_id, stage, model_name, model_version, payload, latency_ms)
VALUES (:img, 'segment', 'm', '1', '{"embedding": {"storage_key": "derived/1/x/seg-old.txt", "bytes": 5}}', 1),
       (:img, 'segment', 'm', '2', '{"embedding": {"storage_key": "derived/1/x/seg-new.txt", "bytes": 5}}', 1);
SELECT tests.act_as(:a1, 'annotator');
SELECT is(api.segment_source(:item, '{"points": [[500, 400, 1]]}') ->> 'embedding_key', 'derived/1/x/seg-new.txt',
          'the latest prepared embedding once the pipeline has made one');
SELECT is(api.segment_source(:item, '{"points": [[0, 0, 1], [1000, 800, 0.0], [10.5, 20.25, 1.0]], "box": null}')
              -> 'points', '[[0, 0, 1], [1000, 800, 0], [10.5, 20.25, 1]]'::jsonb,
          'points on the image''s edges are inside; labels come back as 0 and 1');
SELECT is(api.segment_source(:item, '{"box": [100, 100, 300, 200]}'),
          api.segment_source(:item, '{"points": [], "box": [100, 100, 300, 200]}'),
          'a box alone needs no point');
SELECT is(api.segment_source(:item, '{"points": [[50, 50, 0]], "box": [0, 0, 1000, 800]}') -> 'box',
          '[0, 0, 1000, 800]'::jsonb, 'a box as large as the image, with a not-lesion click');

-- Who may ask: those who may open the item (item_detail's rule); everyone else as if it did not exist.
SELECT tests.act_as(:admin, 'admin');
SELECT is(api.segment_source(:item, '{"points": [[1, 1, 1]]}') ->> 'item_id', :'item', 'the project''s admin may');
SELECT tests.act_as(:a2, 'annotator');
SELECT throws_ok(format($$SELECT api.segment_source(%s, '{"points": [[1, 1, 1]]}')$$, :item), 'P0002',
                 format('work item %s not found', :item), 'another annotator''s item is not found');
SELECT throws_ok(format($$SELECT api.segment_source(%s, '{"points": "bad"}')$$, :item), 'P0002',
                 format('work item %s not found', :item), 'whatever the prompt: it is not looked at');
SELECT tests.act_as(:r1, 'reviewer');
SELECT throws_ok(format($$SELECT api.segment_source(%s, '{"points": [[1, 1, 1]]}')$$, :item), 'P0002', NULL,
                 'a reviewer before the item is in review');
SELECT tests.act_as(:outsider, 'admin');
SELECT throws_ok(format($$SELECT api.segment_source(%s, '{"points": [[1, 1, 1]]}')$$, :item), 'P0002',
                 format('work item %s not found', :item), 'an admin of another organization');
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok($$SELECT api.segment_source(987654321, '{"points": [[1, 1, 1]]}')$$, 'P0002',
                 'work item 987654321 not found', 'a missing item: the same answer');
SELECT tests.act_as(NULL, 'anon');
SELECT throws_ok(format($$SELECT api.segment_source(%s, '{"points": [[1, 1, 1]]}')$$, :item), '42501', NULL,
                 'nobody signed in may not call it');
SELECT tests.act_as(:a1, 'analyst');
SELECT throws_ok(format($$SELECT api.segment_source(%s, '{"points": [[1, 1, 1]]}')$$, :item), '42501', NULL,
                 'nor may an analyst');
SELECT tests.as_superuser();
UPDATE core.image SET status = 'removed' WHERE id = :img;
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok(format($$SELECT api.segment_source(%s, '{"points": [[1, 1, 1]]}')$$, :item), 'P0002', NULL,
                 'an item whose image was removed from the dataset');
SELECT tests.as_superuser();
UPDATE core.image SET status = 'active' WHERE id = :img;
SELECT tests.act_as(:a1, 'annotator');

-- The prompt, checked against the 1000x800 image.
SELECT throws_ok(format($$SELECT api.segment_source(%s, %L)$$, :item, t.prompt), '22023', t.message, t.why)
  FROM (VALUES
    ('[[1, 1, 1]]', 'prompt: must be an object {"points": [[x, y, 1|0], …], "box": [x, y, w, h] | null}',
     'a prompt is an object'),
    ('{"points": [[1, 1, 1]], "size": [1, 1]}', 'size: is not part of a prompt (points, box)', 'unknown keys'),
    ('{}', 'points: click the lesion at least once (a point [x, y, 1]), or give a box', 'an empty prompt'),
    ('{"points": [[10, 10, 0]]}', 'points: click the lesion at least once (a point [x, y, 1]), or give a box',
     'only not-lesion clicks and no box'),
    ('{"points": {"x": 1}}', 'points: must be a list of [x, y, 1|0] (1 = lesion, 0 = not lesion)', 'points a list'),
    ('{"points": [[1, 1, 1], [2, 2]]}', 'points[1]: must be [x, y, 1|0] (1 = lesion, 0 = not lesion)',
     'a point has three values, the faulty one named'),
    ('{"points": [[1, "1", 1]]}', 'points[0]: must be [x, y, 1|0] (1 = lesion, 0 = not lesion)', 'numbers'),
    ('{"points": [5]}', 'points[0]: must be [x, y, 1|0] (1 = lesion, 0 = not lesion)', 'a point is a list'),
    ('{"points": [[1, 1, 2]]}', 'points[0]: the third value is 1 (lesion) or 0 (not lesion)', 'labels 0 or 1'),
    ('{"points": [[1, 1, true]]}', 'points[0]: must be [x, y, 1|0] (1 = lesion, 0 = not lesion)',
     'labels are numbers, not booleans'),
    ('{"points": [[1000.5, 10, 1]]}', 'points[0]: must lie inside the 1000x800 image', 'x beyond the width'),
    ('{"points": [[10, -1, 1]]}', 'points[0]: must lie inside the 1000x800 image', 'y above the image'),
    ('{"points": [[10, 801, 1]]}', 'points[0]: must lie inside the 1000x800 image', 'y below the image'),
    ('{"box": [0, 0, 0, 10]}', 'box: must have a size and lie inside the 1000x800 image', 'a box has a width'),
    ('{"box": [900, 0, 101, 10]}', 'box: must have a size and lie inside the 1000x800 image',
     'a box inside the image'),
    ('{"box": [-1, 0, 10, 10]}', 'box: must have a size and lie inside the 1000x800 image', 'not left of it'),
    ('{"box": [0, 0, 10]}', 'box: must be [x, y, w, h] in pixels of the image, or null', 'a box has four values'),
    ('{"box": {"x": 0}}', 'box: must be [x, y, w, h] in pixels of the image, or null', 'a box is a list')
  ) AS t(prompt, message, why);
SELECT throws_ok(format($$SELECT api.segment_source(%s, %L)$$, :item,
                        jsonb_build_object('points', (SELECT jsonb_agg(jsonb_build_array(g, g, 1))
                                                        FROM generate_series(1, 51) g))),
                 '22023', 'points: at most 50 points', 'at most 50 points');
SELECT lives_ok(format($$SELECT api.segment_source(%s, %L)$$, :item,
                       jsonb_build_object('points', (SELECT jsonb_agg(jsonb_build_array(g, g, 1))
                                                       FROM generate_series(1, 50) g))),
                'fifty are fine');

SELECT * FROM finish();
ROLLBACK;
