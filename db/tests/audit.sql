-- Append-only history and the audit trail.
BEGIN;
SELECT plan(13);

SELECT * FROM tests.fixture(n_images => 1) \gset
SELECT min(id) AS item FROM core.work_item WHERE rule_id = :rule \gset
SELECT tests.act_as(:a1, 'annotator');
SELECT api.next_item(:project);
SELECT api.submit_annotation(:item, tests.content(:mel));
SELECT tests.act_as(:r1, 'reviewer');
SELECT api.next_review(:project);
SELECT api.request_changes(:item, 'look again');
SELECT tests.as_superuser();

SELECT throws_ok(format('UPDATE core.annotation_revision SET content = %L WHERE item_id = %s', '{}', :item), '25006',
                 NULL, 'a revision cannot be updated, even by a superuser');
SELECT throws_ok(format('DELETE FROM core.annotation_revision WHERE item_id = %s', :item), '25006', NULL,
                 'a revision cannot be deleted');
SELECT throws_ok('TRUNCATE core.annotation_revision CASCADE', '25006', NULL, 'revisions cannot be truncated');
SELECT throws_ok(format($$UPDATE core.review SET comment = 'nicer' WHERE item_id = %s$$, :item), '25006', NULL,
                 'a review cannot be updated');
SELECT throws_ok(format('DELETE FROM core.review WHERE item_id = %s', :item), '25006', NULL, 'a review cannot be deleted');
SELECT throws_ok('UPDATE audit.event SET action = $$x$$', '25006', NULL, 'audit events cannot be updated');
SELECT throws_ok('DELETE FROM audit.event', '25006', NULL, 'audit events cannot be deleted');
SELECT throws_ok('TRUNCATE audit.event', '25006', NULL, 'audit events cannot be truncated');

SELECT ok((SELECT bool_and(request_id = 'req-test' AND actor_id IS NOT NULL) FROM audit.event
            WHERE entity = 'work_item' AND entity_id = :item), 'item events carry the actor and the request id');
SELECT is((SELECT before ->> 'status' || '>' || (after ->> 'status') FROM audit.event
            WHERE entity = 'work_item' AND entity_id = :item AND action = 'request_changes'),
          'review>edits_requested', 'events carry before and after');
SELECT ok(EXISTS (SELECT 1 FROM audit.event WHERE action = 'create_work_rule' AND entity_id = :rule
                                             AND actor_id = :admin), 'configuration changes are audited');
SELECT ok(EXISTS (SELECT 1 FROM audit.event WHERE action = 'register_image' AND entity_id = :img1),
          'image registration is audited');

-- only admins read the audit log
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok('SELECT count(*) FROM audit.event', '42501', NULL, 'an annotator cannot read the audit log');

SELECT * FROM finish();
ROLLBACK;
