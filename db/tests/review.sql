-- QC review: never your own annotation, request_changes back to the same annotator, two-stage review.
BEGIN;
SELECT plan(22);

SELECT * FROM tests.fixture(n_images => 3, stages => 2) \gset

-- a1 annotates one item; r1 doubles as annotator to prove "never your own annotation"
UPDATE core.project_member SET annotator = true WHERE user_id = :r1 AND project_id = :project;
SELECT tests.act_as(:a1, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS item \gset
SELECT api.submit_annotation(:item, tests.content(:mel));
SELECT tests.act_as(:r1, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS own \gset
SELECT api.submit_annotation(:own, tests.content(:nev));

SELECT tests.act_as(:r1, 'reviewer');
SELECT is((api.next_review(:project) -> 'item' ->> 'id')::bigint, :item::bigint,
          'r1 gets a1''s item, never their own annotation');
SELECT is(api.next_review(:project) -> 'item' ->> 'id', :'item', 'asking again resumes the held review');
SELECT tests.act_as(:r2, 'reviewer');
SELECT is((api.next_review(:project) -> 'item' ->> 'id')::bigint, :own::bigint,
          'r2 gets the other item: r1 holds the first');
SELECT tests.act_as(:r3, 'reviewer');
SELECT is(api.next_review(:project), '{"item": null, "reason": "queue_empty"}'::jsonb, 'nothing left for r3');

-- request_changes needs a comment and sends the item back to a1 only
SELECT tests.act_as(:r1, 'reviewer');
SELECT throws_ok(format($$SELECT api.request_changes(%s, '  ')$$, :item), '22023', 'comment: say what must change',
                 'request_changes without a comment is refused');
SELECT throws_ok(format($$SELECT api.approve(%s)$$, :own), 'PT409', NULL, 'approving an item you do not hold is 409');
SELECT is(api.request_changes(:item, 'Border is irregular: reconsider') ->> 'status', 'edits_requested',
          'request_changes sends it back');
SELECT tests.act_as(:a2, 'annotator');
SELECT isnt((api.next_item(:project) -> 'item' ->> 'id')::bigint, :item::bigint, 'another annotator never gets it');
SELECT tests.act_as(:a1, 'annotator');
SELECT api.next_item(:project) AS back \gset
SELECT is((:'back'::jsonb -> 'item' ->> 'id')::bigint, :item::bigint, 'a1 gets the edits first');
SELECT is(:'back'::jsonb -> 'item' -> 'last_review' ->> 'comment', 'Border is irregular: reconsider',
          'with the reviewer''s comment');
SELECT is((:'back'::jsonb -> 'item' -> 'latest_revision' ->> 'revision_seq')::int, 1, 'and the previous revision');
SELECT is((:'back'::jsonb -> 'item' ->> 'sent_back')::boolean, true, 'marked as sent back');
SELECT is(api.submit_annotation(:item, tests.content(:nev)) ->> 'revision_seq', '2', 'the edit is revision 2');

-- two stages: stage 1 by r1 (level 1), stage 2 only by a level-2 reviewer other than r1
SELECT tests.act_as(:r1, 'reviewer');
SELECT is((api.next_review(:project) -> 'item' ->> 'id')::bigint, :item::bigint, 'r1 takes the resubmitted item');
SELECT is(api.approve(:item, 'fine') ->> 'review_stage', '2', 'stage-1 approval moves it to stage 2');
SELECT tests.as_superuser();
SELECT ok((SELECT status = 'review' AND assignee_id IS NULL FROM core.work_item WHERE id = :item),
          'still in review, unlocked');
SELECT tests.as_superuser();
UPDATE core.project_member SET review_level = 2 WHERE user_id = :r1 AND project_id = :project;
SELECT tests.act_as(:r1, 'reviewer');
SELECT is(api.next_review(:project) -> 'item', 'null'::jsonb,
          'even at level 2, the stage-1 reviewer never does stage 2 of the same revision');
SELECT tests.as_superuser();
UPDATE core.project_member SET review_level = 1 WHERE user_id = :r1 AND project_id = :project;
SELECT tests.act_as(:r2, 'reviewer');
SELECT api.approve(:own);  -- r2 finishes stage 1 of the other item first
SELECT tests.act_as(:r3, 'reviewer');
SELECT is((api.next_review(:project) -> 'item' ->> 'id')::bigint, :item::bigint,
          'a different level-2 reviewer takes stage 2 (stage-2 items first)');
SELECT is(api.approve(:item) ->> 'status', 'done', 'stage-2 approval finishes the item');
SELECT tests.as_superuser();
SELECT is((SELECT array_agg(stage::text || ':' || decision::text || ':' || (reviewer_id = :r3)::text ORDER BY id)
             FROM core.review WHERE item_id = :item),
          ARRAY['1:changes_requested:false', '1:approved:false', '2:approved:true'], 'the review history');
SELECT tests.as_superuser();
UPDATE core.project_member SET review_level = 1 WHERE user_id = :r3 AND project_id = :project;
SELECT tests.act_as(:r3, 'reviewer');
SELECT is(api.next_review(:project) -> 'item', 'null'::jsonb, 'a level-1 reviewer never takes a stage-2 item');
SELECT tests.as_superuser();
UPDATE core.project_member SET review_level = 2 WHERE user_id = :r3 AND project_id = :project;
SELECT tests.act_as(:r3, 'reviewer');
SELECT is((api.next_review(:project) -> 'item' ->> 'id')::bigint, :own::bigint, 'at level 2 they do');

SELECT * FROM finish();
ROLLBACK;
