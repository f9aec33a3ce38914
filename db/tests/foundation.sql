-- Foundation: schemas, extensions, group roles, and default privileges.
BEGIN;
SELECT plan(14);

SELECT has_schema(s) FROM unnest(ARRAY['core', 'api', 'auth', 'audit', 'metrics']) AS s;
SELECT has_extension('pgcrypto');
SELECT has_extension('citext');
SELECT has_extension('pg_trgm');

SELECT is((SELECT count(*)::int FROM pg_roles r
            WHERE r.rolname IN ('dl_anon', 'dl_annotator', 'dl_reviewer', 'dl_admin', 'dl_analyst', 'dl_member')
              AND NOT r.rolcanlogin), 6, 'six NOLOGIN group roles');
SELECT ok((SELECT rolcanlogin AND NOT rolinherit AND NOT rolsuper FROM pg_roles WHERE rolname = 'dl_authenticator'),
          'dl_authenticator logs in, does not inherit, is no superuser');
SELECT is((SELECT count(*)::int FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
            JOIN pg_roles u ON u.oid = m.member
           WHERE u.rolname = 'dl_authenticator'
             AND g.rolname IN ('dl_anon', 'dl_annotator', 'dl_reviewer', 'dl_admin', 'dl_analyst', 'dl_member')), 6,
          'the authenticator may switch to each group role');

SELECT function_privs_are('api', 'health', ARRAY[]::text[], 'dl_anon', ARRAY['EXECUTE']);
SELECT ok(NOT has_function_privilege('public', 'api.health()', 'EXECUTE'), 'PUBLIC cannot execute api functions');

-- health answers as the HTTP layer calls it: anonymous role, empty claims
SET LOCAL ROLE dl_anon;
SELECT is((api.health() ->> 'schema_version') IS NOT NULL, true, 'health reports a schema version to dl_anon');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
