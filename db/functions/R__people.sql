-- People: accounts, passwords, activity and vacation, managed within the organization's walls.
-- An organization admin manages the people who belong to their organization alone; a person in several
-- organizations is changed only by the operator or by themselves. Every refusal answers like a missing person.
-- (Sign-in and sessions: R__auth.sql.)

CREATE OR REPLACE FUNCTION core.user_json(p_user bigint, p_orgs bigint[] DEFAULT NULL) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- A person with their memberships. p_orgs limits the memberships shown to those organizations (what an
-- organization admin may know of a person who also works elsewhere); NULL shows all (the person themselves).
    WITH orgs AS (
        SELECT o.organization_id AS id, g.name, o.admin, o.analyst FROM core.org_member o
          JOIN core.organization g ON g.id = o.organization_id
         WHERE o.user_id = p_user AND (p_orgs IS NULL OR o.organization_id = ANY (p_orgs))),
    projects AS (
        SELECT p.id, p.name, p.organization_id, m.annotator, m.reviewer, m.admin OR orgs.admin AS admin,
               m.review_level, m.expertise
          FROM core.project p JOIN orgs ON orgs.id = p.organization_id
          LEFT JOIN core.project_member m ON m.project_id = p.id AND m.user_id = p_user
         WHERE m.user_id IS NOT NULL OR orgs.admin)
    SELECT jsonb_build_object(
        'id', u.id, 'email', u.email, 'display_name', u.display_name, 'active', u.active,
        'on_vacation', u.on_vacation, 'operator', u.operator,
        -- every kind of work the person does somewhere: what the pages offer them
        'roles', (SELECT coalesce(jsonb_agg(r ORDER BY r), '[]') FROM (
                    SELECT 'annotator' AS r WHERE EXISTS (SELECT 1 FROM projects WHERE annotator)
                    UNION SELECT 'reviewer' WHERE EXISTS (SELECT 1 FROM projects WHERE reviewer)
                    UNION SELECT 'admin' WHERE EXISTS (SELECT 1 FROM projects WHERE admin)
                                            OR EXISTS (SELECT 1 FROM orgs WHERE orgs.admin)
                                            OR u.operator
                    UNION SELECT 'analyst' WHERE EXISTS (SELECT 1 FROM orgs WHERE orgs.analyst)) k),
        'projects', (SELECT coalesce(jsonb_agg(x.id ORDER BY x.id), '[]') FROM projects x),
        'project_roles', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                              'project_id', x.id, 'project', x.name, 'organization_id', x.organization_id,
                              'roles', array_remove(ARRAY[CASE WHEN x.annotator THEN 'annotator' END,
                                                          CASE WHEN x.reviewer THEN 'reviewer' END,
                                                          CASE WHEN x.admin THEN 'admin' END], NULL),
                              'review_level', coalesce(x.review_level, 1), 'expertise', coalesce(x.expertise, '{}'),
                              'member', x.review_level IS NOT NULL) ORDER BY x.id), '[]') FROM projects x),
        'organizations', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', o.id, 'name', o.name, 'admin', o.admin,
                                                                       'analyst', o.analyst) ORDER BY o.id), '[]')
                            FROM orgs o))
      FROM auth."user" u WHERE u.id = p_user
$$;
COMMENT ON FUNCTION core.user_json(bigint, bigint[]) IS
    'A person as JSON: account fields, the kinds of work they do (roles), and their organizations and per-project '
    'roles (only within p_orgs when given).';

CREATE OR REPLACE FUNCTION core.may_manage_user(p_user bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := auth.uid();
    theirs bigint[];
BEGIN
    IF EXISTS (SELECT 1 FROM auth."user" u WHERE u.id = me AND u.active AND u.operator) THEN
        RETURN EXISTS (SELECT 1 FROM auth."user" u WHERE u.id = p_user);
    END IF;
    SELECT array_agg(o.organization_id) INTO theirs FROM core.org_member o WHERE o.user_id = p_user;
    RETURN cardinality(theirs) = 1 AND theirs[1] = ANY (auth.admin_orgs());
END
$$;
COMMENT ON FUNCTION core.may_manage_user(bigint) IS
    'True when the caller may change the account: the operator, or an admin of the one organization the person '
    'belongs to.';

CREATE OR REPLACE FUNCTION core.managed_user(p_user bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = '' AS $$
-- The guard of every account change: P0002 for a person the caller may not manage, exactly as for one that does
-- not exist. Names the person's organization for the audit trail.
BEGIN
    PERFORM core.require_signed_in();
    IF p_user IS NULL OR NOT core.may_manage_user(p_user) THEN
        RAISE EXCEPTION 'user % not found', p_user USING ERRCODE = 'P0002';
    END IF;
    PERFORM core.in_organization((SELECT min(o.organization_id) FROM core.org_member o WHERE o.user_id = p_user));
    RETURN p_user;
END
$$;
COMMENT ON FUNCTION core.managed_user(bigint) IS
    'p_user when the caller may manage that account (core.may_manage_user); P0002 "user not found" otherwise.';

CREATE OR REPLACE FUNCTION core.admin_org(p_organization bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = '' AS $$
-- The organization an admin acts in: the one named (which they must administer, or be the operator), else the
-- only one they administer.
DECLARE
    mine bigint[];
    operator boolean;
BEGIN
    PERFORM core.require_signed_in();
    mine := auth.admin_orgs();
    SELECT u.operator INTO operator FROM auth."user" u WHERE u.id = auth.uid() AND u.active;
    IF p_organization IS NULL THEN
        IF cardinality(mine) = 1 THEN
            p_organization := mine[1];
        ELSE
            PERFORM core.invalid('organization_id', 'is required (you administer none or several organizations)');
        END IF;
    ELSIF NOT (p_organization = ANY (mine) OR coalesce(operator, false))
          OR NOT EXISTS (SELECT 1 FROM core.organization g WHERE g.id = p_organization) THEN
        RAISE EXCEPTION 'organization % not found', p_organization USING ERRCODE = 'P0002';
    END IF;
    PERFORM core.in_organization(p_organization);
    RETURN p_organization;
END
$$;
COMMENT ON FUNCTION core.admin_org(bigint) IS
    'The organization an admin acts in (the named one, or the only one they administer); P0002 for one they do '
    'not administer, 22023 when it must be named.';

CREATE OR REPLACE FUNCTION core.own_admin_org(p_organization bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = '' AS $$
-- core.admin_org, without the operator's reach: the organization's own business (its projects, keys, webhooks,
-- consents) is for its admins.
DECLARE
    org bigint := core.admin_org(p_organization);
BEGIN
    IF NOT org = ANY (auth.admin_orgs()) THEN
        RAISE EXCEPTION 'organization % not found', org USING ERRCODE = 'P0002';
    END IF;
    RETURN org;
END
$$;
COMMENT ON FUNCTION core.own_admin_org(bigint) IS
    'The organization an admin acts in, which they must administer themselves (the operator is no exception).';

CREATE OR REPLACE FUNCTION api.create_user(email text, display_name text, password text,
                                           organization_id bigint DEFAULT NULL, org_admin boolean DEFAULT false,
                                           analyst boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    org bigint;
    new_id bigint;
BEGIN
    PERFORM core.require_role('admin');
    org := core.admin_org(organization_id);
    IF password IS NOT NULL AND length(password) < 10 THEN
        PERFORM core.invalid('password', 'at least 10 characters');
    END IF;
    INSERT INTO auth."user" (email, display_name, password_hash)
    VALUES (create_user.email, create_user.display_name,
            CASE WHEN password IS NOT NULL THEN public.crypt(password, public.gen_salt('bf', 10)) END)
    RETURNING id INTO new_id;
    INSERT INTO core.org_member (organization_id, user_id, admin, analyst)
    VALUES (org, new_id, coalesce(org_admin, false), coalesce(analyst, false));
    PERFORM core.audit('create_user', 'user', new_id, NULL, core.user_json(new_id, ARRAY[org]));
    RETURN core.user_json(new_id, ARRAY[org]);
END
$$;
COMMENT ON FUNCTION api.create_user(text, text, text, bigint, boolean, boolean) IS
    'Organization admin: creates an account in your organization (organization_id may be omitted when you '
    'administer one), optionally as organization admin or analyst; password NULL means OIDC sign-in only. Give '
    'project roles with add_project_member.';
GRANT EXECUTE ON FUNCTION api.create_user(text, text, text, bigint, boolean, boolean) TO dl_admin;

CREATE OR REPLACE FUNCTION api.list_users(organization_id bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- Organization admins see their organizations' people with their roles there. A project admin sees the
-- organization's directory (name, email) so they can add colleagues to their project, and roles only in the
-- projects they administer. Memberships in other organizations are never shown.
DECLARE
    full_orgs bigint[] := auth.admin_orgs();
    mine bigint[] := auth.projects_as('admin');
    dir_orgs bigint[];
BEGIN
    PERFORM core.require_role('admin');
    SELECT coalesce(array_agg(DISTINCT p.organization_id), '{}') INTO dir_orgs
      FROM core.project p WHERE p.id = ANY (mine) AND NOT p.organization_id = ANY (full_orgs);
    IF organization_id IS NOT NULL THEN
        IF NOT (organization_id = ANY (full_orgs) OR organization_id = ANY (dir_orgs)) THEN
            RAISE EXCEPTION 'organization % not found', organization_id USING ERRCODE = 'P0002';
        END IF;
        full_orgs := CASE WHEN organization_id = ANY (full_orgs) THEN ARRAY[organization_id] ELSE '{}' END;
        dir_orgs := CASE WHEN organization_id = ANY (dir_orgs) THEN ARRAY[organization_id] ELSE '{}' END;
    END IF;
    RETURN (SELECT coalesce(jsonb_agg(x.doc ORDER BY x.display_name, x.id), '[]') FROM (
        SELECT u.id, u.display_name,
               CASE WHEN EXISTS (SELECT 1 FROM core.org_member o WHERE o.user_id = u.id AND o.organization_id = ANY (full_orgs))
                    THEN core.user_json(u.id, full_orgs) || jsonb_build_object('manageable', core.may_manage_user(u.id))
                    ELSE jsonb_build_object(
                        'id', u.id, 'email', u.email, 'display_name', u.display_name, 'active', u.active,
                        'on_vacation', u.on_vacation, 'manageable', false,
                        'project_roles', (SELECT coalesce(jsonb_agg(core.member_json(m.project_id, u.id)
                                                                    ORDER BY m.project_id), '[]')
                                            FROM core.project_member m
                                           WHERE m.user_id = u.id AND m.project_id = ANY (mine))) END AS doc
          FROM auth."user" u
         WHERE EXISTS (SELECT 1 FROM core.org_member o
                        WHERE o.user_id = u.id AND o.organization_id = ANY (full_orgs || dir_orgs))) x);
END
$$;
COMMENT ON FUNCTION api.list_users(bigint) IS
    'Admin: the people of your organizations with their roles there (organization admin, with manageable: '
    'whether you may change the account), or the directory of your projects'' organization with roles in the '
    'projects you administer (project admin).';
GRANT EXECUTE ON FUNCTION api.list_users(bigint) TO dl_admin;

CREATE OR REPLACE FUNCTION api.set_user_active(user_id bigint, active boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    who bigint := core.managed_user(user_id);
    before jsonb := core.user_json(who);
BEGIN
    IF active IS NULL THEN
        PERFORM core.invalid('active', 'is required');
    END IF;
    IF who = auth.uid() AND NOT active THEN
        PERFORM core.invalid('active', 'you cannot deactivate yourself');
    END IF;
    UPDATE auth."user" u SET active = set_user_active.active WHERE u.id = who;
    IF NOT active THEN
        PERFORM core.revoke_sessions(who, 'deactivated');
    END IF;
    PERFORM core.audit('set_user_active', 'user', who, before, core.user_json(who));
    RETURN core.user_json(who, auth.admin_orgs());
END
$$;
COMMENT ON FUNCTION api.set_user_active(bigint, boolean) IS
    'Organization admin (of the person''s only organization) or operator: deactivates an account (its sessions '
    'end at once) or activates it again.';
GRANT EXECUTE ON FUNCTION api.set_user_active(bigint, boolean) TO dl_admin;

CREATE OR REPLACE FUNCTION api.set_vacation(user_id bigint, on_vacation boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    who bigint := user_id;
    before jsonb;
BEGIN
    IF who IS DISTINCT FROM core.require_signed_in() THEN
        who := core.managed_user(user_id);
    END IF;
    before := core.user_json(who);
    UPDATE auth."user" u SET on_vacation = set_vacation.on_vacation WHERE u.id = who;
    PERFORM core.audit('set_vacation', 'user', who, before, core.user_json(who));
    RETURN core.user_json(who, CASE WHEN who = auth.uid() THEN NULL ELSE auth.admin_orgs() END);
END
$$;
COMMENT ON FUNCTION api.set_vacation(bigint, boolean) IS
    'Marks a person on vacation (they get no new items) or back: yourself, or as the admin of their organization.';
GRANT EXECUTE ON FUNCTION api.set_vacation(bigint, boolean) TO dl_annotator, dl_reviewer, dl_admin, dl_member;

-- Passwords: a new one (your own, or set by an admin) ends every session of the person.

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
GRANT EXECUTE ON FUNCTION api.change_password(text, text)
    TO dl_annotator, dl_reviewer, dl_admin, dl_analyst, dl_member;

CREATE OR REPLACE FUNCTION api.set_password(user_id bigint, new_password text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    who bigint;
    ended integer;
BEGIN
    PERFORM core.require_role('admin');
    who := core.managed_user(user_id);
    ended := core.replace_password(who, new_password, 'password_reset');
    PERFORM core.audit('set_password', 'user', who, NULL, jsonb_build_object('sessions_ended', ended));
    RETURN jsonb_build_object('ok', true, 'sessions_ended', ended);
END
$$;
COMMENT ON FUNCTION api.set_password(bigint, text) IS
    'Organization admin (of the person''s only organization) or operator: sets a password (at least 10 '
    'characters; also unlocks the account) and ends all the person''s sessions.';
GRANT EXECUTE ON FUNCTION api.set_password(bigint, text) TO dl_admin;
