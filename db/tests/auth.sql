-- Sign-in and sessions (R__auth.sql): api.login (one answer for every failure, lockout, audit), the sessions it
-- opens, auth.check_session on every request, api.logout, and who may call auth.oidc_sign_in. Accounts, project
-- roles, vacation and passwords: people.sql.
BEGIN;
SELECT plan(25);

SELECT * FROM tests.fixture(n_images => 0) \gset
SELECT email AS a1_email FROM auth."user" WHERE id = :a1 \gset
SELECT tests.act_as(0, 'anon');
SELECT set_config('request.jwt.claims', '{"request_id": "req-login"}', true);

SELECT is((api.login(:'a1_email', 'correct horse battery') -> 'user' ->> 'id')::bigint, :a1::bigint,
          'api.login: the right password signs in');
SELECT is(api.login(:'a1_email', 'wrong'), api.login('nobody@t.org', 'wrong'),
          'api.login: a wrong password and an unknown email fail the same way');
SELECT is(api.login(:'a1_email', 'wrong') ->> 'error', 'invalid_credentials',
          'api.login: the failure says nothing more');
SELECT is(api.login(upper(:'a1_email'), 'correct horse battery') ->> 'ok', 'true',
          'api.login: emails are case-insensitive');
SELECT api.login(:'a1_email', 'wrong') FROM generate_series(1, 5);
SELECT is(api.login(:'a1_email', 'correct horse battery'), api.login('nobody@t.org', 'x'),
          'api.login: after 5 failures the account is locked, and says so no differently');
SELECT tests.as_superuser();
SELECT ok((SELECT locked_until > now() + interval '14 minutes' FROM auth."user" WHERE id = :a1),
          'api.login: locked for 15 minutes');
SELECT ok((SELECT count(*) >= 7 FROM audit.event WHERE action = 'login_failed' AND entity_id = :a1
                                                  AND request_id = 'req-login'), 'api.login: every failure is audited');
SELECT ok(EXISTS (SELECT 1 FROM audit.event WHERE action = 'login_failed' AND entity_id IS NULL
                                             AND after ->> 'reason' = 'unknown_email'),
          'api.login: unknown emails too');
SELECT ok(EXISTS (SELECT 1 FROM audit.event WHERE action = 'login' AND actor_id = :a1),
          'api.login: success is audited');
UPDATE auth."user" SET locked_until = now() - interval '1 second' WHERE id = :a1;
SELECT tests.act_as(0, 'anon');
SELECT is(api.login(:'a1_email', 'correct horse battery') ->> 'ok', 'true',
          'api.login: after the lockout the password works');

SELECT tests.as_superuser();
SELECT ok(NOT has_function_privilege(r, 'auth.oidc_sign_in(text, text, text)', 'EXECUTE'),
          'auth.oidc_sign_in: ' || r || ' cannot sign anyone in by email')
  FROM unnest(ARRAY['dl_anon']) r;
SELECT ok(has_function_privilege('dl_authenticator', 'auth.oidc_sign_in(text, text, text)', 'EXECUTE'),
          'auth.oidc_sign_in: only the app''s login role maps a verified OIDC email to a user');

-- Sessions: opened by login, checked per request, ended by logout and deactivation (and by a password change:
-- people.sql).
SELECT * FROM tests.fixture(n_images => 0) \gset
SELECT email AS a1_email FROM auth."user" WHERE id = :a1 \gset
SELECT email AS a2_email FROM auth."user" WHERE id = :a2 \gset

SELECT tests.act_as(0, 'anon');
SELECT set_config('request.jwt.claims', '{"request_id": "req-s"}', true);
SELECT api.login(:'a1_email', 'correct horse battery') ->> 'session' AS s1 \gset
SELECT api.login(:'a1_email', 'correct horse battery') ->> 'session' AS s2 \gset
SELECT api.login(:'a2_email', 'correct horse battery') ->> 'session' AS s3 \gset
SELECT is(api.login(:'a1_email', 'wrong') ->> 'session', NULL, 'api.login: a failed sign-in opens no session');
SELECT tests.as_superuser();

SELECT isnt(:'s1'::text, :'s2'::text, 'api.login: each sign-in is its own session');
SELECT ok(auth.check_session(NULL, NULL), 'auth.check_session: an anonymous request passes');
SELECT ok(auth.check_session(:a1, :'s1'), 'auth.check_session: a live session of its user passes');
SELECT throws_ok(format('SELECT auth.check_session(%s, %L)', :a2, :'s1'), 'PT401', 'your session has ended',
                 'auth.check_session: a session presented for another user fails');
SELECT throws_ok(format('SELECT auth.check_session(%s, %L)', :a1, gen_random_uuid()), 'PT401', NULL,
                 'auth.check_session: an unknown session fails');
SELECT throws_ok(format('SELECT auth.check_session(%s, %L)', :a1, 'not-a-uuid'), 'PT401', NULL,
                 'auth.check_session: a malformed session id fails like an unknown one');
SELECT throws_ok(format('SELECT auth.check_session(%s, NULL)', :a1), 'PT401', NULL,
                 'auth.check_session: a signed-in request without a session fails');

-- logout ends exactly the session the token names
SELECT set_config('role', 'dl_annotator', true),
       set_config('request.jwt.claims', jsonb_build_object('sub', :a1, 'sid', :'s1')::text, true);
SELECT is(api.logout() ->> 'ok', 'true', 'api.logout: answers ok');
SELECT tests.as_superuser();
SELECT throws_ok(format('SELECT auth.check_session(%s, %L)', :a1, :'s1'), 'PT401', NULL,
                 'api.logout: after it the session fails');
SELECT ok(auth.check_session(:a1, :'s2'), 'api.logout: the user''s other session lives on');
SELECT is((SELECT revoked_reason FROM auth.session WHERE id = :'s1'), 'logout', 'api.logout: the reason is recorded');

-- deactivating the account ends its sessions at once
UPDATE auth."user" SET active = false WHERE id = :a2;
SELECT throws_ok(format('SELECT auth.check_session(%s, %L)', :a2, :'s3'), 'PT401', NULL,
                 'auth.check_session: a deactivated user''s session fails');

SELECT * FROM finish();
ROLLBACK;
