-- Skip defers the item for whoever skipped it; a rule's new priority reaches its open items in one statement.
BEGIN;
SELECT plan(13);

SELECT * FROM tests.fixture(n_images => 3) \gset
SELECT tests.act_as(:a1, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS first \gset
SELECT api.release_item(:first);
SELECT isnt((api.next_item(:project) -> 'item' ->> 'id')::bigint, :first::bigint,
            'api.release_item: a skipped item is not handed straight back');
SELECT tests.act_as(:a2, 'annotator');
SELECT is((api.next_item(:project) -> 'item' ->> 'id')::bigint, :first::bigint,
          'api.next_item: another annotator gets it at once (the oldest)');
SELECT api.release_item(:first);
-- a1 holds the second item; the third is the only other one left for a1 after it
SELECT tests.act_as(:a1, 'annotator');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS second \gset
SELECT api.submit_annotation(:second, tests.content(:mel));
SELECT isnt((api.next_item(:project) -> 'item' ->> 'id')::bigint, :first::bigint,
            'api.next_item: while something else is left, the skipped item waits');
SELECT (api.next_item(:project) -> 'item' ->> 'id')::bigint AS third \gset
SELECT api.submit_annotation(:third, tests.content(:mel));
SELECT is((api.next_item(:project) -> 'item' ->> 'id')::bigint, :first::bigint,
          'api.next_item: when nothing else is left, the skipped item comes back');
SELECT api.release_item(:first);
SELECT tests.act_as(:admin, 'admin');
SELECT throws_ok(format('SELECT api.set_skip_minutes(%s, -1)', :project), '22023',
                 'minutes: must be between 0 and 10080 (a week)', 'api.set_skip_minutes: a negative time is refused');
SELECT api.set_skip_minutes(:project, 0);
SELECT tests.act_as(:a1, 'annotator');
SELECT is((api.next_item(:project) -> 'item' ->> 'id')::bigint, :first::bigint,
          'api.set_skip_minutes: at 0 a skipped item is not deferred');

-- priority: 40 new items of one rule; one raised apart
SELECT tests.as_superuser();
SELECT set_config('request.jwt.claims', jsonb_build_object('sub', :admin)::text, true);
SELECT api.register_image(:project, 'k/pri/' || g, encode(sha256(('pri' || g)::bytea), 'hex'), 100, 100, 'image/png')
  FROM generate_series(1, 40) g;
SELECT set_config('request.jwt.claims', '', true);
SELECT tests.act_as(:admin, 'admin');
SELECT api.generate_work_items(:rule);
SELECT min(id) AS raised FROM core.work_item WHERE rule_id = :rule AND status = 'new' \gset
SELECT api.set_item_priority(:raised, 100);
SELECT throws_ok(format($$SELECT api.update_work_rule(%s, '{"priority": null}')$$, :rule), '22023',
                 'priority: must be a whole number between -1000000 and 1000000',
                 'api.update_work_rule: a null priority is named (not a row dump from a NOT NULL violation)');
SELECT is((SELECT count(*)::int FROM core.work_item WHERE rule_id = :rule AND priority = 0 AND status = 'new'),
          (SELECT count(*)::int FROM core.work_item WHERE rule_id = :rule AND status = 'new' AND id <> :raised),
          'api.update_work_rule: a refused priority moved nothing');
SELECT is((api.update_work_rule(:rule, '{"priority": 7}') ->> 'priority')::int, 7, 'api.update_work_rule: the rule''s priority is 7');
SELECT tests.as_superuser();
SELECT is((SELECT count(*)::int FROM core.work_item WHERE rule_id = :rule AND status IN ('new', 'in_progress', 'edits_requested')
                                                      AND priority <> 7 AND id <> :raised), 0,
          'api.update_work_rule: every open item of the rule follows');
SELECT is((SELECT priority FROM core.work_item WHERE id = :raised), 100, 'api.update_work_rule: an item raised apart keeps its priority');
SELECT is((SELECT count(*)::int FROM core.work_item WHERE rule_id = :rule AND status = 'done' AND priority = 7), 0,
          'api.update_work_rule: finished items keep the priority they had');
SELECT is((SELECT (after ->> 'items')::int FROM audit.event WHERE action = 'reprioritise_rule' AND entity_id = :rule),
          (SELECT count(*)::int FROM core.work_item WHERE rule_id = :rule AND priority = 7),
          'api.update_work_rule: one audit event says how many items moved');

SELECT * FROM finish();
ROLLBACK;
