-- The admin pages' reads: a project's overview and the user list; admins of the project only.
BEGIN;
SELECT plan(7);

SELECT * FROM tests.fixture(n_images => 3) \gset
SELECT tests.act_as(:a1, 'annotator');
SELECT api.next_item(:project);
SELECT tests.act_as(:admin, 'admin');
SELECT api.project_overview(:project) AS o \gset
SELECT is((SELECT jsonb_object_agg(q ->> 'status', q -> 'items') FROM jsonb_array_elements(:'o'::jsonb -> 'queue') q),
          '{"new": 2, "in_progress": 1}'::jsonb, 'queue by status');
SELECT is((SELECT (m ->> 'holding')::int FROM jsonb_array_elements(:'o'::jsonb -> 'members') m
            WHERE (m ->> 'id')::bigint = :a1), 1, 'a1 holds one item');
SELECT is(jsonb_array_length(:'o'::jsonb -> 'members'), 7, 'seven members: the creating admin and six others');
SELECT is((:'o'::jsonb -> 'rules' -> 0 ->> 'items')::int, 3, 'the rule and its items');
SELECT is(jsonb_array_length(api.list_users()), 7, 'an organization admin lists the people of their organization, no one else');
SELECT tests.act_as(:outsider, 'admin');
SELECT throws_ok(format('SELECT api.project_overview(%s)', :project), 'P0002', NULL,
                 'an admin of another project finds no such project');
SELECT tests.act_as(:a1, 'annotator');
SELECT throws_ok('SELECT api.list_users()', '42501', NULL, 'annotators cannot list users');

SELECT * FROM finish();
ROLLBACK;
