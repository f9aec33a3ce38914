-- People (R__people.sql): accounts an organization admin creates, the project roles given to them, vacation, and
-- passwords (a new one ends every session of the person). Sign-in and sessions: auth.sql.
BEGIN;
SELECT plan(10);

SELECT * FROM tests.fixture(n_images => 0) \gset
SELECT email AS a1_email FROM auth."user" WHERE id = :a1 \gset

SELECT tests.act_as(:admin, 'admin');
SELECT api.create_user('new@t.org', 'New Person', 'long enough pw') AS new_user \gset
SELECT is((:'new_user'::jsonb -> 'organizations' -> 0 ->> 'admin')::boolean, false,
          'api.create_user: makes a member of the admin''s organization');
SELECT is(api.add_project_member(:project, (:'new_user'::jsonb ->> 'id')::bigint, '{annotator,reviewer}') -> 'roles',
          '["annotator", "reviewer"]'::jsonb, 'api.add_project_member: who is given several roles in a project');
SELECT throws_ok($$SELECT api.create_user('x@t.org', 'X', 'short')$$, '22023',
                 'password: at least 10 characters', 'api.create_user: a short password is refused');
SELECT throws_ok(format($$SELECT api.add_project_member(%s, %s, '{wizard}')$$, :project, :a1), '22023', NULL,
                 'api.add_project_member: an unknown role is refused');
SELECT tests.act_as(:a2, 'annotator');
SELECT throws_ok(format('SELECT api.set_vacation(%s, true)', :a3), 'P0002', NULL,
                 'api.set_vacation: an annotator cannot send someone else on vacation (nor learn the person exists)');
SELECT is(api.set_vacation(:a2, true) ->> 'on_vacation', 'true', 'api.set_vacation: but can go on vacation themselves');

-- a password change ends every session of the user, and needs the current password
SELECT tests.act_as(0, 'anon');
SELECT api.login(:'a1_email', 'correct horse battery') ->> 'session' AS s \gset
SELECT set_config('role', 'dl_annotator', true),
       set_config('request.jwt.claims', jsonb_build_object('sub', :a1, 'sid', :'s')::text, true);
SELECT throws_ok($$SELECT api.change_password('wrong', 'a new long password')$$, '22023',
                 'current_password: is not your current password',
                 'api.change_password: the current password is checked');
SELECT throws_ok($$SELECT api.change_password('correct horse battery', 'short')$$, '22023',
                 'new_password: at least 10 characters', 'api.change_password: a short new password is refused');
SELECT is(api.change_password('correct horse battery', 'a new long password') ->> 'sessions_ended', '1',
          'api.change_password: ends the live sessions');
SELECT tests.as_superuser();
SELECT throws_ok(format('SELECT auth.check_session(%s, %L)', :a1, :'s'), 'PT401', NULL,
                 'api.change_password: after it the old session fails');

SELECT * FROM finish();
ROLLBACK;
