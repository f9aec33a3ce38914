-- Sign-in sessions: opened by login, checked per request, ended by logout, password change and deactivation.
BEGIN;
SELECT plan(17);

SELECT * FROM tests.fixture(n_images => 0) \gset
SELECT email AS a1_email FROM auth."user" WHERE id = :a1 \gset
SELECT email AS a2_email FROM auth."user" WHERE id = :a2 \gset

SELECT tests.act_as(0, 'anon');
SELECT set_config('request.jwt.claims', '{"request_id": "req-s"}', true);
SELECT api.login(:'a1_email', 'correct horse battery') ->> 'session' AS s1 \gset
SELECT api.login(:'a1_email', 'correct horse battery') ->> 'session' AS s2 \gset
SELECT api.login(:'a2_email', 'correct horse battery') ->> 'session' AS s3 \gset
SELECT is(api.login(:'a1_email', 'wrong') ->> 'session', NULL, 'a failed sign-in opens no session');
SELECT tests.as_superuser();

SELECT isnt(:'s1'::text, :'s2'::text, 'each sign-in is its own session');
SELECT ok(auth.check_session(NULL, NULL), 'an anonymous request passes');
SELECT ok(auth.check_session(:a1, :'s1'), 'a live session of its user passes');
SELECT throws_ok(format('SELECT auth.check_session(%s, %L)', :a2, :'s1'), 'PT401', 'your session has ended',
                 'a session presented for another user fails');
SELECT throws_ok(format('SELECT auth.check_session(%s, %L)', :a1, gen_random_uuid()), 'PT401', NULL,
                 'an unknown session fails');
SELECT throws_ok(format('SELECT auth.check_session(%s, %L)', :a1, 'not-a-uuid'), 'PT401', NULL,
                 'a malformed session id fails like an unknown one');
SELECT throws_ok(format('SELECT auth.check_session(%s, NULL)', :a1), 'PT401', NULL,
                 'a signed-in request without a session fails');

-- logout ends exactly the session the token names
SELECT set_config('role', 'dl_annotator', true),
       set_config('request.jwt.claims', jsonb_build_object('sub', :a1, 'sid', :'s1')::text, true);
SELECT is(api.logout() ->> 'ok', 'true', 'logout answers ok');
SELECT tests.as_superuser();
SELECT throws_ok(format('SELECT auth.check_session(%s, %L)', :a1, :'s1'), 'PT401', NULL,
                 'after logout the session fails');
SELECT ok(auth.check_session(:a1, :'s2'), 'the user''s other session lives on');
SELECT is((SELECT revoked_reason FROM auth.session WHERE id = :'s1'), 'logout', 'the reason is recorded');

-- a password change ends every session of the user, and needs the current password
SELECT set_config('role', 'dl_annotator', true),
       set_config('request.jwt.claims', jsonb_build_object('sub', :a1, 'sid', :'s2')::text, true);
SELECT throws_ok($$SELECT api.change_password('wrong', 'a new long password')$$, '22023',
                 'current_password: is not your current password', 'the current password is checked');
SELECT throws_ok($$SELECT api.change_password('correct horse battery', 'short')$$, '22023',
                 'new_password: at least 10 characters', 'a short new password is refused');
SELECT is(api.change_password('correct horse battery', 'a new long password') ->> 'sessions_ended', '1',
          'changing the password ends the live sessions');
SELECT tests.as_superuser();
SELECT throws_ok(format('SELECT auth.check_session(%s, %L)', :a1, :'s2'), 'PT401', NULL,
                 'after a password change the old session fails');

-- deactivating the account ends its sessions at once
UPDATE auth."user" SET active = false WHERE id = :a2;
SELECT throws_ok(format('SELECT auth.check_session(%s, %L)', :a2, :'s3'), 'PT401', NULL,
                 'a deactivated user''s session fails');

SELECT * FROM finish();
ROLLBACK;
