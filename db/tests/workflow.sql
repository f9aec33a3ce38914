-- The annotator cycle: next_item order and locking, drafts, submit and revision_seq, release, reject,
-- lock expiry, vacation, private pools, expertise, double annotation, validation leaving no change.
BEGIN;
SELECT plan(47);

SELECT * FROM tests.fixture(n_images => 6, per_image => 2) \gset

SELECT is((SELECT count(*)::int FROM core.work_item WHERE rule_id = :rule), 12,
          'registering 6 images under an active double-annotation rule created 12 items');

-- next_item: the oldest highest-priority item, locked to the caller
SELECT tests.act_as(:a1, 'annotator');
SELECT api.next_item(:project) ->> 'item' IS NOT NULL AS got \gset
SELECT ok(:'got', 'an annotator gets an item');
SELECT tests.as_superuser();
SELECT id AS item1, image_id AS item1_image FROM core.work_item WHERE assignee_id = :a1 \gset
SELECT is((SELECT min(id) FROM core.work_item WHERE rule_id = :rule), :item1::bigint,
          'equal priority: the oldest (lowest id) item first');
SELECT ok((SELECT status = 'in_progress' AND annotator_id = :a1 AND locked_at IS NOT NULL
                  AND lock_expires_at > now() + interval '29 minutes'
             FROM core.work_item WHERE id = :item1), 'the item is in_progress, locked to a1 for the project lock time');

-- asking again resumes the same item
SELECT tests.act_as(:a1, 'annotator');
SELECT is((api.next_item(:project) -> 'item' ->> 'id')::bigint, :item1::bigint, 'next_item again resumes my item');

-- a2 gets a different image's item first? No: the other slot of the same image is fine for someone else
SELECT tests.act_as(:a2, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS item2 \gset
SELECT isnt(:item2::bigint, :item1::bigint, 'a2 never gets the item a1 holds');
SELECT tests.as_superuser();
SELECT is((SELECT image_id FROM core.work_item WHERE id = :item2), :item1_image::bigint,
          'a2 gets the second slot of the same image (double annotation)');

-- priority beats age
SELECT max(id) AS urgent FROM core.work_item WHERE rule_id = :rule \gset
UPDATE core.work_item SET priority = 5 WHERE id = :urgent;
SELECT tests.act_as(:a3, 'annotator');
SELECT is((api.next_item(:project) -> 'item' ->> 'id')::bigint, :urgent::bigint, 'a higher-priority item comes first');

-- save_draft: stored for the author, extends the lock, shape checked but not completeness
SELECT tests.act_as(:a1, 'annotator');
SELECT lives_ok(format($$SELECT api.save_draft(%s, '{"description": "half done"}')$$, :item1),
                'an incomplete draft (no class yet) is saved');
SELECT throws_ok(format($$SELECT api.save_draft(%s, '{"colour": "red"}')$$, :item1), '22023', NULL,
                 'a draft with an unknown field is refused');
SELECT is(api.item_detail(:item1) -> 'draft' ->> 'description', 'half done', 'the draft comes back with the item');

-- submit: validation failures change nothing
SELECT throws_ok(format($$SELECT api.submit_annotation(%s, '{"description": "no class"}')$$, :item1),
                 '22023', 'class: is required', 'submit without a class names the field');
SELECT throws_ok(format($$SELECT api.submit_annotation(%s, %L)$$, :item1,
                        tests.content(:mel) || '{"descriptors": {"colours": ["green"]}}'),
                 '22023', 'descriptors.colours: must be a list of brown, black, blue, red, white',
                 'a colour outside the schema is refused, naming the descriptor');
SELECT throws_ok(format($$SELECT api.submit_annotation(%s, %L)$$, :item1,
                        tests.content(:mel) || '{"descriptors": {"colours": ["brown"], "diameter_mm": 900}}'),
                 '22023', 'descriptors.diameter_mm: must be between 0 and 200', 'out-of-range number refused');
SELECT throws_ok(format($$SELECT api.submit_annotation(%s, %L)$$, :item1,
                        tests.content(:mel) || '{"descriptors": {"border": "irregular"}}'),
                 '22023', 'descriptors.colours: is required', 'a missing required descriptor is refused');
SELECT throws_ok(format($$SELECT api.submit_annotation(%s, %L)$$, :item1,
                        tests.content(:mel) || '{"regions": [{"type": "bbox", "x": 950, "y": 10, "w": 100, "h": 10}]}'),
                 '22023', NULL, 'a box outside the 1000x800 image is refused');
SELECT throws_ok(format($$SELECT api.submit_annotation(%s, %L)$$, :item1,
                        tests.content(:mel) || '{"regions": [{"type": "polygon", "points": [[1,1],[2,2]]}]}'),
                 '22023', 'regions[0].points: a polygon needs at least 3 points', 'a two-point polygon is refused');
SELECT throws_ok(format($$SELECT api.submit_annotation(%s, %L)$$, :item1,
                        tests.content(:mel) || jsonb_build_object('description', repeat('x', 20001))),
                 '22023', 'description: at most 20000 characters', 'an over-long description is refused');
SELECT throws_ok(format($$SELECT api.submit_annotation(%s, %L)$$, :item1,
                        tests.content(:mel) || '{"confidence": "certain"}'),
                 '22023', 'confidence: must be low, medium or high', 'an unknown confidence is refused');
SELECT throws_ok(format($$SELECT api.submit_annotation(%s, %L)$$, :item1,
                        tests.content(:mel) || '{"class": 999999999}'),
                 '22023', 'class: is not an active condition of this project''s taxonomy',
                 'a class from nowhere is refused');
SELECT tests.as_superuser();
SELECT ok((SELECT status = 'in_progress' AND last_revision_seq = 0 FROM core.work_item WHERE id = :item1)
          AND NOT EXISTS (SELECT 1 FROM core.annotation_revision WHERE item_id = :item1),
          'after all those refusals nothing changed');

-- a valid submit: revision 1, status review, lock and draft gone
SELECT tests.act_as(:a1, 'annotator');
SELECT is(api.submit_annotation(:item1, tests.content(:mel)) ->> 'revision_seq', '1', 'first submit is revision 1');
SELECT tests.as_superuser();
SELECT ok((SELECT status = 'review' AND assignee_id IS NULL AND lock_expires_at IS NULL AND annotator_id = :a1
             FROM core.work_item WHERE id = :item1), 'the item is in review, unlocked, still a1''s');
SELECT is((SELECT class_id FROM core.annotation_revision WHERE item_id = :item1), :mel::bigint,
          'the revision records its class');
SELECT ok(NOT EXISTS (SELECT 1 FROM core.annotation_draft WHERE item_id = :item1), 'the draft is gone');
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok(format($$SELECT api.submit_annotation(%s, %L)$$, :item1, tests.content(:mel)), 'PT409', NULL,
                 'submitting an item in review again is a lost lock (409)');

-- never a second item of an image a1 annotated: a1's next item is from another image
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS item3 \gset
SELECT tests.as_superuser();
SELECT isnt((SELECT image_id FROM core.work_item WHERE id = :item3), :item1_image::bigint,
            'a1 never gets the other slot of an image they annotated');

-- release: back to new, for anyone
SELECT tests.act_as(:a1, 'annotator');
SELECT is(api.release_item(:item3) ->> 'status', 'new', 'release gives the item back');
SELECT tests.as_superuser();
SELECT ok((SELECT status = 'new' AND annotator_id IS NULL AND assignee_id IS NULL FROM core.work_item
            WHERE id = :item3), 'a released item is new and unowned');

-- reject_image: a flag, the image flagged, the item rejected
SELECT tests.act_as(:a1, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS item4 \gset
SELECT throws_ok(format($$SELECT api.reject_image(%s, 'blurry')$$, :item4), '22023', NULL, 'an unknown reason is refused');
SELECT throws_ok(format($$SELECT api.reject_image(%s, 'other')$$, :item4), '22023', 'comment: say why when the reason is other',
                 'reason other needs a comment');
SELECT is(api.reject_image(:item4, 'bad_quality', 'out of focus') ->> 'status', 'rejected', 'reject_image rejects');
SELECT tests.as_superuser();
SELECT ok((SELECT i.status = 'flagged' FROM core.image i JOIN core.work_item w ON w.image_id = i.id WHERE w.id = :item4)
          AND EXISTS (SELECT 1 FROM core.work_item_flag WHERE item_id = :item4 AND reason = 'bad_quality'
                                                          AND raised_by = :a1),
          'the image is flagged and the flag recorded');

-- lock expiry: a2's item lapses; a3 takes it over; the item is a3's now, so for a2 it no longer exists (404):
-- another annotator's item answers like a missing one, whoever held it before
UPDATE core.work_item SET lock_expires_at = now() - interval '1 second' WHERE id = :item2;
SELECT tests.act_as(:admin, 'admin');
SELECT api.cancel_item(:urgent, 'triaged elsewhere');
SELECT tests.act_as(:a3, 'annotator');
SELECT is((api.next_item(:project) -> 'item' ->> 'id')::bigint, :item2::bigint,
          'an expired lock makes the item available to others');
SELECT tests.act_as(:a2, 'annotator');
SELECT throws_ok(format($$SELECT api.submit_annotation(%s, %L)$$, :item2, tests.content(:mel)), 'P0002', NULL,
                 'the former holder gets not found on submit');
SELECT throws_ok(format($$SELECT api.heartbeat(%s)$$, :item2), 'P0002', NULL, 'and on heartbeat');
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok(format($$SELECT api.save_draft(%s, '{}')$$, :item2), 'P0002', 'work item ' || :item2 || ' not found',
                 'a fellow member guessing another annotator''s item id gets not found, as for a missing id');
SELECT tests.as_superuser();
SELECT is((SELECT assignee_id FROM core.work_item WHERE id = :item2), :a3::bigint, 'a3 holds it now');

-- heartbeat extends the holder's lock
UPDATE core.work_item SET lock_expires_at = now() + interval '1 minute' WHERE id = :item2;
SELECT tests.act_as(:a3, 'annotator');
SELECT ok((api.heartbeat(:item2) ->> 'lock_expires_at')::timestamptz > now() + interval '29 minutes',
          'heartbeat extends the lock');

-- vacation: nothing
SELECT tests.as_superuser();
UPDATE auth."user" SET on_vacation = true WHERE id = :a2;
SELECT tests.act_as(:a2, 'annotator');
SELECT is(api.next_item(:project), '{"item": null, "reason": "on_vacation"}'::jsonb, 'an annotator on vacation gets nothing');

-- private pool and expertise: a rule only a1 may work on, and one that needs a tag only a1 has
SELECT tests.as_superuser();
UPDATE auth."user" SET on_vacation = false WHERE id = :a2;
UPDATE core.work_rule SET active = false WHERE id = :rule;
SELECT tests.act_as(:admin, 'admin');
SELECT (api.create_work_rule(:project, 'pool', 100, priority => 9, pool_user_ids => ARRAY[:a1]::bigint[]) ->> 'id')::bigint AS pool_rule \gset
SELECT api.generate_work_items(:pool_rule);
SELECT tests.act_as(:a2, 'annotator');
SELECT is(api.next_item(:project) -> 'item', 'null'::jsonb, 'a2 gets nothing from a pool they are not in');
SELECT tests.act_as(:a1, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS pool_item \gset
SELECT is((SELECT rule_id FROM core.work_item WHERE id = :pool_item), :pool_rule::bigint,
          'a1, in the pool, gets its item');
SELECT tests.act_as(:admin, 'admin');
SELECT api.update_work_rule(:pool_rule, '{"pool_user_ids": null, "expertise": "dermoscopy"}');
SELECT tests.act_as(:a2, 'annotator');
SELECT is(api.next_item(:project) -> 'item', 'null'::jsonb, 'a2 lacks the dermoscopy expertise the rule needs');

-- outsiders: a project you are not in does not exist for you
SELECT tests.act_as(:outsider, 'annotator');
SELECT throws_ok(format('SELECT api.next_item(%s)', :project), 'P0002', NULL, 'a non-member gets not found');
SELECT throws_ok(format($$SELECT api.submit_annotation(%s, '{}')$$, :item1), 'P0002', NULL,
                 'an item of another project does not exist for a non-member');

-- the role wall: reviewers and admins cannot annotate, anonymous cannot call at all
SELECT tests.act_as(:r1, 'reviewer');
SELECT throws_ok(format('SELECT api.next_item(%s)', :project), '42501', NULL, 'a reviewer cannot call next_item');
SELECT tests.act_as(:r1, 'annotator');
SELECT throws_ok(format('SELECT api.next_item(%s)', :project), 'P0002', format('project %s not found', :project),
                 'the SQL role alone is not enough: the user must hold the role in the project');

SELECT * FROM finish();
ROLLBACK;
