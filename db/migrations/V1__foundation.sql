-- Foundation: extensions, schemas and the group roles everything else is granted to.
-- Roles are cluster-wide, so they are created only when absent (several databases may share a cluster).

CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS citext;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE SCHEMA core;     -- tables: private to the database owner, reached only through api functions and RLS
CREATE SCHEMA api;      -- the public surface: every function here is an HTTP endpoint
CREATE SCHEMA auth;     -- users, password hashes, claims helpers
CREATE SCHEMA audit;    -- the append-only event log
CREATE SCHEMA metrics;  -- materialized views for analysts

COMMENT ON SCHEMA api IS '${app_name} public surface: one HTTP endpoint per function';

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['dl_anon', 'dl_annotator', 'dl_reviewer', 'dl_admin', 'dl_analyst'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'dl_authenticator') THEN
        CREATE ROLE dl_authenticator LOGIN NOINHERIT;
    END IF;
END
$$;

GRANT dl_anon, dl_annotator, dl_reviewer, dl_admin, dl_analyst TO dl_authenticator;
GRANT CONNECT ON DATABASE "${flyway:database}" TO dl_authenticator;

-- Nothing is executable by PUBLIC unless granted explicitly, function by function and role by role.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA api REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
REVOKE ALL ON SCHEMA core, auth, audit FROM PUBLIC;

GRANT USAGE ON SCHEMA api TO dl_anon, dl_annotator, dl_reviewer, dl_admin, dl_analyst;
GRANT USAGE ON SCHEMA metrics TO dl_analyst, dl_admin;
