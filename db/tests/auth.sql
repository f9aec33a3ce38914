-- Sign-in in SQL: one answer for every failure, lockout, audit; user administration.
BEGIN;
SELECT plan(18);

SELECT * FROM tests.fixture(n_images => 0) \gset
SELECT email AS a1_email FROM auth."user" WHERE id = :a1 \gset
SELECT tests.act_as(0, 'anon');
SELECT set_config('request.jwt.claims', '{"request_id": "req-login"}', true);

SELECT is((api.login(:'a1_email', 'correct horse battery') -> 'user' ->> 'id')::bigint, :a1::bigint,
          'the right password signs in');
SELECT is(api.login(:'a1_email', 'wrong'), api.login('nobody@t.org', 'wrong'),
          'a wrong password and an unknown email fail the same way');
SELECT is(api.login(:'a1_email', 'wrong') ->> 'error', 'invalid_credentials', 'the failure says nothing more');
SELECT is(api.login(upper(:'a1_email'), 'correct horse battery') ->> 'ok', 'true', 'emails are case-insensitive');
SELECT api.login(:'a1_email', 'wrong') FROM generate_series(1, 5);
SELECT is(api.login(:'a1_email', 'correct horse battery'), api.login('nobody@t.org', 'x'),
          'after 5 failures the account is locked, and says so no differently');
SELECT tests.as_superuser();
SELECT ok((SELECT locked_until > now() + interval '14 minutes' FROM auth."user" WHERE id = :a1), 'locked for 15 minutes');
SELECT ok((SELECT count(*) >= 7 FROM audit.event WHERE action = 'login_failed' AND entity_id = :a1
                                                  AND request_id = 'req-login'), 'every failure is audited');
SELECT ok(EXISTS (SELECT 1 FROM audit.event WHERE action = 'login_failed' AND entity_id IS NULL
                                             AND after ->> 'reason' = 'unknown_email'), 'unknown emails too');
SELECT ok(EXISTS (SELECT 1 FROM audit.event WHERE action = 'login' AND actor_id = :a1), 'success is audited');
UPDATE auth."user" SET locked_until = now() - interval '1 second' WHERE id = :a1;
SELECT tests.act_as(0, 'anon');
SELECT is(api.login(:'a1_email', 'correct horse battery') ->> 'ok', 'true', 'after the lockout the password works');

SELECT tests.act_as(:admin, 'admin');
SELECT api.create_user('new@t.org', 'New Person', 'long enough pw') AS new_user \gset
SELECT is((:'new_user'::jsonb -> 'organizations' -> 0 ->> 'admin')::boolean, false,
          'create_user makes a member of the admin''s organization');
SELECT is(api.add_project_member(:project, (:'new_user'::jsonb ->> 'id')::bigint, '{annotator,reviewer}') -> 'roles',
          '["annotator", "reviewer"]'::jsonb, 'who is given several roles in a project');
SELECT throws_ok($$SELECT api.create_user('x@t.org', 'X', 'short')$$, '22023',
                 'password: at least 10 characters', 'a short password is refused');
SELECT throws_ok(format($$SELECT api.add_project_member(%s, %s, '{wizard}')$$, :project, :a1), '22023', NULL,
                 'an unknown role is refused');
SELECT tests.act_as(:a2, 'annotator');
SELECT throws_ok(format('SELECT api.set_vacation(%s, true)', :a3), 'P0002', NULL,
                 'an annotator cannot send someone else on vacation (nor learn the person exists)');
SELECT is(api.set_vacation(:a2, true) ->> 'on_vacation', 'true', 'but can go on vacation themselves');

SELECT tests.as_superuser();
SELECT ok(NOT has_function_privilege(r, 'auth.oidc_sign_in(text, text, text)', 'EXECUTE'),
          r || ' cannot sign anyone in by email')
  FROM unnest(ARRAY['dl_anon']) r;
SELECT ok(has_function_privilege('dl_authenticator', 'auth.oidc_sign_in(text, text, text)', 'EXECUTE'),
          'only the app''s login role maps a verified OIDC email to a user');

SELECT * FROM finish();
ROLLBACK;
