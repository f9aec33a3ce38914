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
    RETURN jsonb_build_object('ok', true, 'user', core.user_json(u.id));
END
$$;
COMMENT ON FUNCTION api.login(text, text) IS
    'Checks an email and password. Returns {ok: true, user} or {ok: false, error} - the same for an unknown email, '
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
    RETURN jsonb_build_object('ok', true, 'user', core.user_json(u.id));
END
$$;
COMMENT ON FUNCTION auth.oidc_sign_in(text, text, text) IS
    'Maps a verified OIDC email to an active user (audited either way). Called by the app''s login role only.';
REVOKE EXECUTE ON FUNCTION auth.oidc_sign_in(text, text, text) FROM PUBLIC;
GRANT USAGE ON SCHEMA auth TO dl_authenticator;
GRANT EXECUTE ON FUNCTION auth.oidc_sign_in(text, text, text) TO dl_authenticator;
