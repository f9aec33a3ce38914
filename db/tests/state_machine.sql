-- The transitions table is the only way to move an item; every illegal move is refused, even for a superuser.
BEGIN;
SELECT plan(12);

SELECT * FROM tests.fixture(n_images => 2) \gset
SELECT min(id) AS item FROM core.work_item WHERE rule_id = :rule \gset

SELECT set_eq($$SELECT from_status::text || '>' || to_status::text FROM core.item_transition$$,
              ARRAY['new>in_progress', 'edits_requested>in_progress', 'in_progress>new', 'in_progress>review',
                    'in_progress>rejected', 'review>done', 'review>edits_requested', 'rejected>new',
                    'rejected>cancelled', 'new>cancelled', 'in_progress>cancelled', 'review>cancelled',
                    'edits_requested>cancelled'],
              'exactly the moves of docs/architecture.md');

SELECT throws_ok(format($$UPDATE core.work_item SET status = 'done' WHERE id = %s$$, :item), 'PT409',
                 NULL, 'new -> done by a direct update is refused');
SELECT throws_ok(format($$UPDATE core.work_item SET status = 'review', annotator_id = %s WHERE id = %s$$, :a1, :item),
                 'PT409', NULL, 'new -> review is refused');
SELECT set_config('dl.action', 'approve', true);
SELECT throws_ok(format($$UPDATE core.work_item SET status = 'in_progress', annotator_id = %s, assignee_id = %s,
                          locked_at = now(), lock_expires_at = now() WHERE id = %s$$, :a1, :a1, :item),
                 'PT409', NULL, 'a legal pair claimed by the wrong action is refused');
SELECT set_config('dl.action', 'next_item', true);
SELECT lives_ok(format($$UPDATE core.work_item SET status = 'in_progress', annotator_id = %s, assignee_id = %s,
                         locked_at = now(), lock_expires_at = now() + interval '5 minutes' WHERE id = %s$$,
                       :a1, :a1, :item), 'the right action may make the move');
SELECT set_config('dl.action', '', true);

-- state invariants as CHECK constraints
SELECT throws_ok(format($$UPDATE core.work_item SET assignee_id = NULL WHERE id = %s$$, :item), '23514', NULL,
                 'an in_progress item without a holder violates a constraint');
SELECT throws_ok(format($$UPDATE core.work_item SET assignee_id = %s WHERE id = %s$$, :a2, :item), '23514', NULL,
                 'in_progress is held by its annotator');

-- done is terminal: approve to done, then nothing moves it
SELECT tests.act_as(:a1, 'annotator');
SELECT api.submit_annotation(:item, tests.content(:mel));
SELECT tests.act_as(:r1, 'reviewer');
SELECT api.next_review(:project);
SELECT is(api.approve(:item) ->> 'status', 'done', 'approve finishes a one-stage item');
SELECT tests.act_as(:admin, 'admin');
SELECT throws_ok(format('SELECT api.cancel_item(%s)', :item), 'PT409', NULL, 'a done item cannot be cancelled');
SELECT tests.as_superuser();
SELECT throws_ok(format($$UPDATE core.work_item SET status = 'new', annotator_id = NULL WHERE id = %s$$, :item),
                 'PT409', NULL, 'done -> new is refused even for a superuser in psql');
SELECT throws_ok(format($$UPDATE core.work_item SET status = 'edits_requested' WHERE id = %s$$, :item),
                 'PT409', NULL, 'done -> edits_requested is refused');

-- every status change is audited with the action that made it
SELECT is((SELECT array_agg(action ORDER BY id) FROM audit.event WHERE entity = 'work_item' AND entity_id = :item),
          ARRAY['next_item', 'submit_annotation', 'next_review', 'approve'], 'the item''s audit trail');

SELECT * FROM finish();
ROLLBACK;
