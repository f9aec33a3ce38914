-- Organizations and per-project roles: the takeover across teams is refused, roles apply at the next call,
-- double reads stay independent, analysts see their organization only, anonymous callers reach sign-in alone.
BEGIN;
SELECT plan(32);

-- Two organizations: the fixture's (its admin administers it) and another with its own admin and project.
SELECT * FROM tests.fixture(n_images => 2, per_image => 2) \gset
SELECT organization_id AS org_a FROM core.project WHERE id = :project \gset
SELECT tests.user('other-admin-' || md5(random()::text) || '@t.org', '{admin}') AS admin_b \gset
SELECT tests.project(:admin_b, 'b-' || md5(random()::text)) AS project_b \gset
SELECT organization_id AS org_b FROM core.project WHERE id = :project_b \gset
SELECT tests.user('b-ann-' || md5(random()::text) || '@t.org', '{annotator}') AS ann_b \gset
SELECT tests.join(:project_b, :ann_b);
-- a project admin of org A who does not administer the organization
SELECT tests.user('padmin-' || md5(random()::text) || '@t.org', '{admin}') AS padmin \gset
SELECT tests.join(:project, :padmin);

-- 1. the takeover: an admin of one organization cannot touch an account of another
SELECT tests.act_as(:admin_b, 'admin');
SELECT throws_ok(format($$SELECT api.set_password(%s, 'taken over at last')$$, :a1), 'P0002',
                 format('user %s not found', :a1), 'another organization''s admin cannot reset a password');
SELECT throws_ok(format('SELECT api.set_user_active(%s, false)', :a1), 'P0002', NULL,
                 'nor deactivate the account');
SELECT throws_ok(format('SELECT api.set_vacation(%s, true)', :a1), 'P0002', NULL, 'nor send them on vacation');
SELECT throws_ok(format('SELECT api.set_project_roles(%s, %s, ''{admin}'')', :project, :a1), 'P0002', NULL,
                 'nor give roles in a project of the other organization');
SELECT throws_ok(format('SELECT api.add_project_member(%s, %s, ''{annotator}'')', :project_b, :a1), 'P0002',
                 format('user %s not found', :a1), 'nor pull someone of another organization into their project');
SELECT is((SELECT count(*)::int FROM jsonb_array_elements(api.list_users()) u WHERE (u ->> 'id')::bigint = :a1), 0,
          'list_users shows nobody of another organization');
SELECT throws_ok(format('SELECT api.project_overview(%s)', :project), 'P0002', NULL,
                 'another organization''s project does not exist for them');
SELECT tests.as_superuser();
SELECT ok((SELECT password_hash = crypt('correct horse battery', password_hash) FROM auth."user" WHERE id = :a1)
          AND (SELECT active AND NOT on_vacation FROM auth."user" WHERE id = :a1),
          'the account is untouched');

-- a project admin is not an organization admin: people are the organization's to manage
SELECT tests.act_as(:padmin, 'admin');
SELECT throws_ok(format($$SELECT api.set_password(%s, 'taken over at last')$$, :a1), 'P0002', NULL,
                 'a project admin cannot reset a colleague''s password');
SELECT is(api.set_project_roles(:project, :a1, '{annotator,reviewer}') -> 'roles', '["annotator", "reviewer"]'::jsonb,
          'but gives roles in their project');
-- the organization admin manages its people
SELECT tests.act_as(:admin, 'admin');
SELECT is(api.set_password(:a2, 'a brand new password') ->> 'ok', 'true', 'the organization admin resets a password');

-- a person in two organizations is changed only by the operator or by themselves
SELECT tests.as_superuser();
INSERT INTO core.org_member (organization_id, user_id) VALUES (:org_b, :a3);
SELECT tests.act_as(:admin, 'admin');
SELECT throws_ok(format($$SELECT api.set_password(%s, 'taken over at last')$$, :a3), 'P0002', NULL,
                 'an organization admin cannot reset the password of someone who also belongs elsewhere');
SELECT is((SELECT jsonb_array_length(u -> 'organizations') FROM jsonb_array_elements(api.list_users()) u
            WHERE (u ->> 'id')::bigint = :a3), 1, 'and sees only their own organization among the person''s');
SELECT tests.as_superuser();
SELECT tests.user('op-' || md5(random()::text) || '@t.org', '{}') AS operator \gset
UPDATE auth."user" SET operator = true WHERE id = :operator;
SELECT tests.act_as(:operator, 'admin');
SELECT is(api.set_password(:a3, 'operator set this') ->> 'ok', 'true', 'the operator can');
SELECT ok((api.create_organization('Clinic ' || md5(random()::text)) ->> 'id') IS NOT NULL,
          'the operator creates organizations');
SELECT tests.act_as(:admin, 'admin');
SELECT throws_ok($$SELECT api.create_organization('Mine')$$, '42501', NULL, 'an organization admin cannot');

-- 2. roles are read at every call: a revoked role stops at the next call, a granted one works at once
SELECT tests.act_as(:r1, 'reviewer');
SELECT lives_ok(format('SELECT api.next_review(%s)', :project), 'r1 reviews');
SELECT tests.as_superuser();
UPDATE core.project_member SET reviewer = false WHERE user_id = :r1 AND project_id = :project;
SELECT tests.act_as(:r1, 'reviewer');
SELECT throws_ok(format('SELECT api.next_review(%s)', :project), 'P0002', NULL,
                 'the next call after the reviewer role is revoked is refused');
SELECT tests.as_superuser();
SELECT throws_ok(format($$SELECT auth.request_role(%s, NULL, '{dl_reviewer}')$$, :r1), 'PT401', NULL,
                 'a request without a live session is refused before any role is taken');
INSERT INTO auth.session (id, user_id, method) VALUES ('00000000-0000-0000-0000-0000000000a1', :r1, 'password');
SELECT throws_ok(format($$SELECT auth.request_role(%s, '00000000-0000-0000-0000-0000000000a1', '{dl_reviewer}')$$, :r1),
                 '42501', NULL, 'the request role follows the tables: no reviewer role left anywhere');
UPDATE core.project_member SET reviewer = true WHERE user_id = :r1 AND project_id = :project;
SELECT is(auth.request_role(:r1, '00000000-0000-0000-0000-0000000000a1', '{dl_reviewer}'), 'dl_reviewer',
          'granted again: the next request acts as reviewer');

-- 3. double reads are independent: whoever annotated an image sees no other read of it before it is done
SELECT tests.as_superuser();
UPDATE core.project_member SET reviewer = true WHERE user_id = :a1 AND project_id = :project;
SELECT tests.act_as(:a1, 'annotator');
SELECT (api.next_item(:project) -> 'item') AS a1_item \gset
SELECT api.submit_annotation((:'a1_item'::jsonb ->> 'id')::bigint, tests.content(:mel));
SELECT tests.act_as(:a2, 'annotator');
SELECT api.next_item(:project) -> 'item' AS a2_item \gset
SELECT is(:'a2_item'::jsonb -> 'image' ->> 'id', :'a1_item'::jsonb -> 'image' ->> 'id', 'a2 reads the same image');
SELECT api.submit_annotation((:'a2_item'::jsonb ->> 'id')::bigint, tests.content(:nev));
SELECT tests.act_as(:a1, 'reviewer');
SELECT throws_ok(format('SELECT api.item_detail(%s)', :'a2_item'::jsonb ->> 'id'), 'P0002', NULL,
                 'a1, a reviewer too, cannot open the other read of the image they annotated');
SELECT is((SELECT count(*)::int FROM core.work_item w WHERE w.id = (:'a2_item'::jsonb ->> 'id')::bigint), 0,
          'nor see it through row-level security');
SELECT is(api.next_review(:project) -> 'item', 'null'::jsonb, 'nor is handed it to review');
SELECT tests.act_as(:r2, 'reviewer');
SELECT api.next_review(:project) -> 'item' AS r2_item \gset
SELECT is(:'r2_item'::jsonb -> 'read', '{"n": 1, "of": 2}'::jsonb, 'the reviewer sees which read they review');

-- 4. analysts see their organization's metrics only
SELECT tests.as_superuser();
UPDATE core.org_member SET analyst = true WHERE user_id = :a1 AND organization_id = :org_a;
SELECT metrics.refresh_all('test');
SELECT tests.act_as(:a1, 'analyst');
SELECT ok((SELECT count(*) > 0 FROM analytics.queue_by_status WHERE project_id = :project),
          'an analyst reads their organization''s queue');
SELECT is((SELECT count(*)::int FROM analytics.queue_by_status WHERE project_id = :project_b), 0,
          'and not another organization''s');
SELECT throws_ok('SELECT * FROM metrics.queue_by_status', '42501', NULL,
                 'the materialized views themselves are not theirs to read');
SELECT throws_ok(format('SELECT api.metrics(%s)', :project_b), 'P0002', NULL,
                 'api.metrics: another organization''s project does not exist');

-- 5. anonymous callers reach sign-in and health, nothing else
SELECT tests.as_superuser();
SELECT set_eq($$SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE n.nspname = 'api' AND has_function_privilege('dl_anon', p.oid, 'EXECUTE')$$,
              ARRAY['health', 'login'], 'dl_anon executes api.health and api.login, nothing else');

-- 6. project names are the organization's own
SELECT name AS project_name FROM core.project WHERE id = :project \gset
SELECT tests.act_as(:admin_b, 'admin');
SELECT lives_ok(format('SELECT api.create_project(%L)', :'project_name'),
                'another organization may use the same project name (a 409 would reveal it)');

SELECT * FROM finish();
ROLLBACK;
