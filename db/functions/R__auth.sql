-- Sign-in and user administration.

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
    -- with search_path '' a plain = would be pg_catalog's case-sensitive text equality: name citext's own
    SELECT * INTO u FROM auth."user" x WHERE x.email OPERATOR(public.=) login.email::public.citext FOR UPDATE;
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

CREATE OR REPLACE FUNCTION core.user_json(p_user bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT jsonb_build_object('id', u.id, 'email', u.email, 'display_name', u.display_name, 'roles', u.roles,
                              'expertise', u.expertise, 'review_level', u.review_level, 'active', u.active,
                              'on_vacation', u.on_vacation,
                              'projects', coalesce((SELECT jsonb_agg(m.project_id ORDER BY m.project_id)
                                                      FROM core.project_member m WHERE m.user_id = u.id), '[]'))
      FROM auth."user" u WHERE u.id = p_user
$$;

CREATE OR REPLACE FUNCTION api.me()
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    PERFORM core.require_signed_in();
    RETURN core.user_json(auth.uid());
END
$$;
COMMENT ON FUNCTION api.me() IS 'The signed-in user: roles, expertise, review level, projects.';

CREATE OR REPLACE FUNCTION core.check_roles(p_roles text[]) RETURNS auth.app_role[]
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY coalesce(p_roles, '{}') LOOP
        IF r IS NULL OR r NOT IN ('annotator', 'reviewer', 'admin', 'analyst') THEN
            PERFORM core.invalid('roles', format('unknown role %L (annotator, reviewer, admin, analyst)', r));
        END IF;
    END LOOP;
    RETURN (SELECT coalesce(array_agg(DISTINCT x::auth.app_role), '{}') FROM unnest(p_roles) x);
END
$$;

CREATE OR REPLACE FUNCTION api.create_user(email text, display_name text, password text, roles text[],
                                           expertise text[] DEFAULT '{}', review_level integer DEFAULT 1)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    new_id bigint;
BEGIN
    PERFORM core.require_role('admin');
    IF password IS NOT NULL AND length(password) < 10 THEN
        PERFORM core.invalid('password', 'at least 10 characters');
    END IF;
    IF review_level NOT IN (1, 2) THEN
        PERFORM core.invalid('review_level', 'must be 1 or 2');
    END IF;
    INSERT INTO auth."user" (email, display_name, password_hash, roles, expertise, review_level)
    VALUES (create_user.email, create_user.display_name,
            CASE WHEN password IS NOT NULL THEN public.crypt(password, public.gen_salt('bf', 10)) END,
            core.check_roles(create_user.roles), coalesce(create_user.expertise, '{}'), create_user.review_level)
    RETURNING id INTO new_id;
    PERFORM core.audit('create_user', 'user', new_id, NULL, core.user_json(new_id));
    RETURN core.user_json(new_id);
END
$$;
COMMENT ON FUNCTION api.create_user(text, text, text, text[], text[], integer) IS
    'Admin: creates a user with roles (annotator, reviewer, admin, analyst), expertise tags and review level; '
    'password NULL means OIDC sign-in only.';

CREATE OR REPLACE FUNCTION api.set_user_roles(user_id bigint, roles text[], review_level integer DEFAULT NULL,
                                              expertise text[] DEFAULT NULL, active boolean DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    before jsonb := core.user_json(user_id);
BEGIN
    PERFORM core.require_role('admin');
    IF before IS NULL THEN
        RAISE EXCEPTION 'user % not found', user_id USING ERRCODE = 'P0002';
    END IF;
    IF review_level IS NOT NULL AND review_level NOT IN (1, 2) THEN
        PERFORM core.invalid('review_level', 'must be 1 or 2');
    END IF;
    IF user_id = auth.uid() AND NOT 'admin' = ANY (roles) THEN
        PERFORM core.invalid('roles', 'you cannot remove your own admin role');
    END IF;
    UPDATE auth."user" u SET roles = core.check_roles(set_user_roles.roles),
           review_level = coalesce(set_user_roles.review_level, u.review_level),
           expertise = coalesce(set_user_roles.expertise, u.expertise),
           active = coalesce(set_user_roles.active, u.active)
     WHERE u.id = user_id;
    PERFORM core.audit('set_user_roles', 'user', user_id, before, core.user_json(user_id));
    RETURN core.user_json(user_id);
END
$$;
COMMENT ON FUNCTION api.set_user_roles(bigint, text[], integer, text[], boolean) IS
    'Admin: replaces a user''s roles; optionally sets review level, expertise tags and the active flag.';

CREATE OR REPLACE FUNCTION api.set_vacation(user_id bigint, on_vacation boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    before jsonb := core.user_json(user_id);
BEGIN
    PERFORM core.require_signed_in();
    IF user_id IS DISTINCT FROM auth.uid() THEN
        PERFORM core.require_role('admin');
    END IF;
    IF before IS NULL THEN
        RAISE EXCEPTION 'user % not found', user_id USING ERRCODE = 'P0002';
    END IF;
    UPDATE auth."user" u SET on_vacation = set_vacation.on_vacation WHERE u.id = user_id;
    PERFORM core.audit('set_vacation', 'user', user_id, before, core.user_json(user_id));
    RETURN core.user_json(user_id);
END
$$;
COMMENT ON FUNCTION api.set_vacation(bigint, boolean) IS
    'Marks a user on vacation (they get no new items) or back; for yourself, or any user as admin.';

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA core FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.login(text, text) TO dl_anon;
GRANT EXECUTE ON FUNCTION api.me() TO dl_annotator, dl_reviewer, dl_admin, dl_analyst;
GRANT EXECUTE ON FUNCTION api.create_user(text, text, text, text[], text[], integer) TO dl_admin;
GRANT EXECUTE ON FUNCTION api.set_user_roles(bigint, text[], integer, text[], boolean) TO dl_admin;
GRANT EXECUTE ON FUNCTION api.set_vacation(bigint, boolean) TO dl_annotator, dl_reviewer, dl_admin;

-- OIDC sign-in: the app has verified the ID token (issuer, audience, signature, nonce, email_verified); this maps
-- the verified email to an existing active user. Not an api function: no web caller may "sign in as an email";
-- only the app's login role may call it.
CREATE OR REPLACE FUNCTION auth.oidc_sign_in(p_email text, p_issuer text, p_subject text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    u auth."user";
BEGIN
    SELECT * INTO u FROM auth."user" x WHERE x.email OPERATOR(public.=) p_email::public.citext;
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

CREATE OR REPLACE FUNCTION core.check_new_password(p_password text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
BEGIN
    IF p_password IS NULL OR length(p_password) < 10 THEN
        PERFORM core.invalid('new_password', 'at least 10 characters');
    END IF;
    RETURN p_password;
END
$$;

CREATE OR REPLACE FUNCTION core.replace_password(p_user bigint, p_password text, p_reason text) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- A new password (also unlocks the account) ends every session of the user; returns how many ended.
BEGIN
    UPDATE auth."user" u
       SET password_hash = public.crypt(core.check_new_password(p_password), public.gen_salt('bf', 10)),
           password_changed_at = now(), failed_logins = 0, locked_until = NULL
     WHERE u.id = p_user;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % not found', p_user USING ERRCODE = 'P0002';
    END IF;
    RETURN core.revoke_sessions(p_user, p_reason);
END
$$;
REVOKE EXECUTE ON FUNCTION core.replace_password(bigint, text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION api.change_password(current_password text, new_password text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_signed_in();
    hash text;
    ended integer;
BEGIN
    SELECT u.password_hash INTO hash FROM auth."user" u WHERE u.id = me FOR UPDATE;
    IF hash IS NULL OR hash <> public.crypt(coalesce(current_password, ''), hash) THEN
        PERFORM core.invalid('current_password', 'is not your current password');
    END IF;
    ended := core.replace_password(me, new_password, 'password_changed');
    PERFORM core.audit('change_password', 'user', me, NULL, jsonb_build_object('sessions_ended', ended), me);
    RETURN jsonb_build_object('ok', true, 'sessions_ended', ended);
END
$$;
COMMENT ON FUNCTION api.change_password(text, text) IS
    'Changes your password (at least 10 characters) after checking the current one, and ends all your sessions, '
    'this one included: every token issued before stops working, so sign in again with the new password.';

CREATE OR REPLACE FUNCTION api.set_password(user_id bigint, new_password text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    ended integer;
BEGIN
    PERFORM core.require_role('admin');
    ended := core.replace_password(set_password.user_id, new_password, 'password_reset');
    PERFORM core.audit('set_password', 'user', set_password.user_id, NULL,
                       jsonb_build_object('sessions_ended', ended));
    RETURN jsonb_build_object('ok', true, 'sessions_ended', ended);
END
$$;
COMMENT ON FUNCTION api.set_password(bigint, text) IS
    'Admin: sets a user''s password (at least 10 characters; also unlocks the account) and ends all their '
    'sessions.';

GRANT EXECUTE ON FUNCTION api.logout(), api.change_password(text, text)
    TO dl_annotator, dl_reviewer, dl_admin, dl_analyst;
GRANT EXECUTE ON FUNCTION api.set_password(bigint, text) TO dl_admin;
