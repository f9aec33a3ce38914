-- Sign-in and sessions: login (password, OIDC), the sessions they open, logout, and the role each request acts in
-- (auth.begin_request -> auth.request_role). Who the signed-in caller is: api.me. Managing people and their
-- passwords: R__people.sql; organizations: R__organizations.sql; partner keys: R__partners.sql.

CREATE OR REPLACE FUNCTION api.login(email text, password text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- Never raises for bad credentials: the failure counter and the audit row must commit.
DECLARE
    u auth."user";
    ok boolean;
    max_failures constant integer := 5;
    lock_for constant interval := interval '15 minutes';
    failure constant jsonb := jsonb_build_object('ok', false, 'error', 'invalid_credentials',
                                                 'message', 'Wrong email or password, or the account is locked.');
BEGIN
    -- by the email's one form (auth.email_key): ＡＤＭＩＮ@… finds admin@…; a lookalike with an invisible or
    -- foreign-script character has none (NULL) and takes the unknown-email path below, like any unknown address.
    -- With search_path '' a plain = would be pg_catalog's text equality: name citext's own (the unique index's).
    SELECT * INTO u FROM auth."user" x
     WHERE x.email OPERATOR(public.=) auth.email_key(login.email)::public.citext FOR UPDATE;
    IF NOT FOUND THEN
        -- spend the same time as a real check, so timing does not reveal which emails exist
        PERFORM public.crypt(coalesce(password, ''), public.gen_salt('bf', 10));
        PERFORM core.audit('login_failed', 'user', NULL, NULL, jsonb_build_object('reason', 'unknown_email'), NULL);
        RETURN failure;
    END IF;
    ok := u.password_hash IS NOT NULL AND u.password_hash = public.crypt(coalesce(password, ''), u.password_hash);
    IF NOT u.active OR u.locked_until > now() OR NOT ok THEN
        IF NOT ok THEN
            UPDATE auth."user" x SET failed_logins = x.failed_logins + 1,
                   locked_until = CASE WHEN x.failed_logins + 1 >= max_failures THEN now() + lock_for END
             WHERE x.id = u.id;
        END IF;
        PERFORM core.audit('login_failed', 'user', u.id, NULL, jsonb_build_object('reason',
            CASE WHEN NOT u.active THEN 'inactive' WHEN u.locked_until > now() THEN 'locked'
                 ELSE 'wrong_password' END), u.id);
        RETURN failure;
    END IF;
    UPDATE auth."user" x SET failed_logins = 0, locked_until = NULL WHERE x.id = u.id;
    PERFORM core.audit('login', 'user', u.id, NULL, NULL, u.id);
    RETURN jsonb_build_object('ok', true, 'user', core.user_json(u.id),
                              'session', core.open_session(u.id, 'password'));
END
$$;
COMMENT ON FUNCTION api.login(text, text) IS
    'Checks an email and password. Returns {ok: true, user, session} (a new sign-in session) or {ok: false, error} - the same for an unknown email, '
    'a wrong password and a locked account; 5 failures lock the account for 15 minutes.';

GRANT EXECUTE ON FUNCTION api.login(text, text) TO dl_anon;

CREATE OR REPLACE FUNCTION api.me()
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    PERFORM core.require_signed_in();
    RETURN core.user_json(auth.uid());
END
$$;
COMMENT ON FUNCTION api.me() IS
    'The signed-in user: account, organizations (admin, analyst), and per project the roles held there '
    '(annotator, reviewer with review level and expertise, admin); roles lists every kind of work held anywhere.';
GRANT EXECUTE ON FUNCTION api.me() TO dl_annotator, dl_reviewer, dl_admin, dl_analyst, dl_member;

-- Which SQL role a request acts in is decided here, from the tables, at every request: a role granted or revoked
-- applies at the next request, whatever the token says. GRANT EXECUTE still decides which kinds of caller may call
-- a function at all; the app passes the kinds that may (from the catalog), in its order of preference.
CREATE OR REPLACE FUNCTION auth.request_role(p_user bigint, p_session text, p_candidates text[]) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- On every request: one probe for the session, then one per candidate, in the caller's order, until one fits (the
-- first usually does). No exception block: a subtransaction per request is not free.
DECLARE
    operator boolean;
    r text;
BEGIN
    IF p_user IS NULL THEN
        IF 'dl_anon' = ANY (p_candidates) THEN
            RETURN 'dl_anon';
        END IF;
        RAISE EXCEPTION 'sign in first' USING ERRCODE = 'PT401';
    END IF;
    IF p_session IS NOT NULL AND p_session ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' THEN
        SELECT u.operator INTO operator FROM auth.session s JOIN auth."user" u ON u.id = s.user_id
         WHERE s.id = p_session::uuid AND s.user_id = p_user AND s.revoked_at IS NULL AND u.active;
    END IF;
    IF operator IS NULL THEN
        RAISE EXCEPTION 'your session has ended' USING ERRCODE = 'PT401',
            HINT = 'Sign in again (after signing out, a password change or deactivation, old tokens stop working).';
    END IF;
    FOREACH r IN ARRAY p_candidates LOOP
        IF (CASE r
             WHEN 'dl_annotator' THEN EXISTS (SELECT 1 FROM core.project_member m WHERE m.user_id = p_user AND m.annotator)
             WHEN 'dl_reviewer' THEN EXISTS (SELECT 1 FROM core.project_member m WHERE m.user_id = p_user AND m.reviewer)
             WHEN 'dl_admin' THEN EXISTS (SELECT 1 FROM core.project_member m WHERE m.user_id = p_user AND m.admin)
                                  OR EXISTS (SELECT 1 FROM core.org_member o WHERE o.user_id = p_user AND o.admin)
                                  -- an operator who does no other work acts as admin (creating organizations)
                                  OR operator
             WHEN 'dl_analyst' THEN EXISTS (SELECT 1 FROM core.org_member o WHERE o.user_id = p_user AND o.analyst)
             WHEN 'dl_member' THEN true  -- every signed-in person
             ELSE false END) THEN
            RETURN r;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'permission denied: none of your roles may call this' USING ERRCODE = '42501';
END
$$;
COMMENT ON FUNCTION auth.request_role(bigint, text, text[]) IS
    'The SQL role a request runs as: the first of p_candidates (the kinds of caller the function is granted to) '
    'that the caller holds now, read from the membership tables (dl_member: anyone signed in); dl_anon for an '
    'anonymous caller when allowed. '
    'PT401 for an ended session or an anonymous caller, 42501 when no role fits. Called through '
    'auth.begin_request by the app''s login role.';
REVOKE EXECUTE ON FUNCTION auth.request_role(bigint, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.request_role(bigint, text, text[]) TO dl_authenticator;

CREATE OR REPLACE FUNCTION auth.begin_request(p_user bigint, p_session text, p_candidates text[], p_claims text,
                                              p_bucket text DEFAULT NULL, p_capacity double precision DEFAULT NULL,
                                              p_per_second double precision DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
-- SECURITY INVOKER on purpose: a security-definer function may not change the role. It runs as the login role,
-- takes a token from the caller's rate bucket (PT429 when empty), asks auth.request_role (definer) which role to
-- take, and takes it for the rest of the transaction.
DECLARE
    r text;
BEGIN
    IF p_bucket IS NOT NULL THEN
        PERFORM auth.require_rate(p_bucket, p_capacity, p_per_second);
    END IF;
    r := auth.request_role(p_user, p_session, p_candidates);
    PERFORM pg_catalog.set_config('request.jwt.claims',
        (coalesce(nullif(p_claims, ''), '{}')::jsonb || jsonb_build_object('role', r))::text, true);
    PERFORM pg_catalog.set_config('role', r, true);
    RETURN r;
END
$$;
COMMENT ON FUNCTION auth.begin_request(bigint, text, text[], text, text, double precision, double precision) IS
    'The first statement of every request, as the app''s login role: takes a token from the rate bucket p_bucket '
    '(when given; PT429 when empty), checks the session, picks the role (auth.request_role), sets the claims and '
    'the role for the transaction; returns the role.';
REVOKE EXECUTE ON FUNCTION auth.begin_request(bigint, text, text[], text, text, double precision, double precision)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.begin_request(bigint, text, text[], text, text, double precision, double precision)
    TO dl_authenticator;

-- OIDC sign-in: the app has verified the ID token (issuer, audience, signature, nonce, email_verified); this maps
-- the verified email to an existing active user. Not an api function: no web caller may "sign in as an email";
-- only the app's login role may call it.
CREATE OR REPLACE FUNCTION auth.oidc_sign_in(p_email text, p_issuer text, p_subject text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    u auth."user";
BEGIN
    SELECT * INTO u FROM auth."user" x WHERE x.email OPERATOR(public.=) auth.email_key(p_email)::public.citext;
    IF NOT FOUND OR NOT u.active THEN
        PERFORM core.audit('login_failed', 'user', u.id, NULL,
                           jsonb_build_object('method', 'oidc', 'issuer', p_issuer,
                                              'reason', CASE WHEN u.id IS NULL THEN 'unknown_email' ELSE 'inactive' END),
                           u.id);
        RETURN jsonb_build_object('ok', false, 'error', 'no_account',
                                  'message', 'No active DermLabel account has this email; ask an admin.');
    END IF;
    PERFORM core.audit('login', 'user', u.id, NULL,
                       jsonb_build_object('method', 'oidc', 'issuer', p_issuer, 'subject', p_subject), u.id);
    RETURN jsonb_build_object('ok', true, 'user', core.user_json(u.id),
                              'session', core.open_session(u.id, 'oidc'));
END
$$;
COMMENT ON FUNCTION auth.oidc_sign_in(text, text, text) IS
    'Maps a verified OIDC email to an active user (audited either way). Called by the app''s login role only.';
REVOKE EXECUTE ON FUNCTION auth.oidc_sign_in(text, text, text) FROM PUBLIC;
GRANT USAGE ON SCHEMA auth TO dl_authenticator;
GRANT EXECUTE ON FUNCTION auth.oidc_sign_in(text, text, text) TO dl_authenticator;

-- Sessions: opened at sign-in, checked on every request, revoked at sign-out and password change.

CREATE OR REPLACE FUNCTION core.open_session(p_user bigint, p_method text) RETURNS uuid
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
    INSERT INTO auth.session (user_id, method) VALUES (p_user, p_method) RETURNING id
$$;
REVOKE EXECUTE ON FUNCTION core.open_session(bigint, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION core.revoke_sessions(p_user bigint, p_reason text) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
    WITH gone AS (
        UPDATE auth.session s SET revoked_at = now(), revoked_reason = p_reason
         WHERE s.user_id = p_user AND s.revoked_at IS NULL RETURNING 1)
    SELECT count(*)::integer FROM gone
$$;
COMMENT ON FUNCTION core.revoke_sessions(bigint, text) IS
    'Ends every live session of a person (tokens stop working at their next request) with the reason recorded; '
    'returns how many ended. For a password change or reset, a deactivation and an erasure.';
REVOKE EXECUTE ON FUNCTION core.revoke_sessions(bigint, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION auth.check_session(p_user bigint, p_session text) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- Runs first in every request's statement, as the login role, before the caller's role is taken. Anonymous
-- requests carry no user and pass; a signed-in request needs a live session of an active user.
BEGIN
    IF p_user IS NULL THEN
        RETURN true;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM auth.session s JOIN auth."user" u ON u.id = s.user_id
                    WHERE s.id = p_session::uuid AND s.user_id = p_user AND s.revoked_at IS NULL AND u.active) THEN
        RAISE EXCEPTION 'your session has ended' USING ERRCODE = 'PT401',
            HINT = 'Sign in again (after signing out, a password change or deactivation, old tokens stop working).';
    END IF;
    RETURN true;
EXCEPTION WHEN invalid_text_representation THEN
    RAISE EXCEPTION 'your session has ended' USING ERRCODE = 'PT401', HINT = 'Sign in again.';
END
$$;
COMMENT ON FUNCTION auth.check_session(bigint, text) IS
    'true for an anonymous caller or a live session of an active user; PT401 otherwise. Called by the app''s '
    'login role at the start of every request.';
REVOKE EXECUTE ON FUNCTION auth.check_session(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.check_session(bigint, text) TO dl_authenticator;

CREATE OR REPLACE FUNCTION api.logout()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_signed_in();
    sid text := auth.claims() ->> 'sid';
BEGIN
    -- the request's session check already proved sid a live session of mine: it is a well-formed uuid
    UPDATE auth.session s SET revoked_at = now(), revoked_reason = 'logout'
     WHERE s.id = sid::uuid AND s.user_id = me AND s.revoked_at IS NULL;
    PERFORM core.audit('logout', 'user', me, NULL, NULL, me);
    RETURN jsonb_build_object('ok', true);
END
$$;
COMMENT ON FUNCTION api.logout() IS
    'Ends the session your token belongs to: that token (and the cookie holding it) stops working at once.';
GRANT EXECUTE ON FUNCTION api.logout() TO dl_annotator, dl_reviewer, dl_admin, dl_analyst, dl_member;
