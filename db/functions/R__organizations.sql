-- Organizations: created by the installation's operator; their admins manage who belongs and who administers
-- or analyses. Analysts' database logins for psql.

CREATE OR REPLACE FUNCTION core.require_operator() RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
DECLARE
    me bigint := core.require_signed_in();
BEGIN
    IF NOT EXISTS (SELECT 1 FROM auth."user" u WHERE u.id = me AND u.active AND u.operator) THEN
        RAISE EXCEPTION 'permission denied: this needs the installation operator' USING ERRCODE = '42501';
    END IF;
    RETURN me;
END
$$;
COMMENT ON FUNCTION core.require_operator() IS 'The caller''s id when they are the installation operator; 42501 otherwise.';

CREATE OR REPLACE FUNCTION core.organization_json(p_organization bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT jsonb_build_object('id', g.id, 'name', g.name, 'created_at', g.created_at,
                              'members', (SELECT count(*) FROM core.org_member o WHERE o.organization_id = g.id),
                              'admins', (SELECT count(*) FROM core.org_member o WHERE o.organization_id = g.id
                                                                                  AND o.admin),
                              'projects', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', p.id, 'name', p.name)
                                                                     ORDER BY p.id), '[]')
                                             FROM core.project p WHERE p.organization_id = g.id))
      FROM core.organization g WHERE g.id = p_organization
$$;
COMMENT ON FUNCTION core.organization_json(bigint) IS 'An organization with its member and admin counts and projects.';

CREATE OR REPLACE FUNCTION api.create_organization(name text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_operator();
    org bigint;
BEGIN
    IF name IS NULL OR length(btrim(name)) NOT BETWEEN 1 AND 200 THEN
        PERFORM core.invalid('name', 'must be 1 to 200 characters');
    END IF;
    INSERT INTO core.organization (name, created_by) VALUES (btrim(create_organization.name), me) RETURNING id INTO org;
    PERFORM core.in_organization(org);
    PERFORM core.audit('create_organization', 'organization', org, NULL, core.organization_json(org));
    RETURN core.organization_json(org);
END
$$;
COMMENT ON FUNCTION api.create_organization(text) IS
    'Operator: creates an organization (a hospital, research group, partner). Then add_organization_member '
    'brings in its first admin.';

CREATE OR REPLACE FUNCTION api.list_organizations()
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    me bigint := core.require_signed_in();
    operator boolean := EXISTS (SELECT 1 FROM auth."user" u WHERE u.id = me AND u.active AND u.operator);
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(core.organization_json(g.id) ORDER BY g.name), '[]')
              FROM core.organization g
             WHERE operator OR g.id = ANY (auth.admin_orgs()));
END
$$;
COMMENT ON FUNCTION api.list_organizations() IS
    'The organizations you administer (every organization for the operator), with counts and projects.';

CREATE OR REPLACE FUNCTION api.add_organization_member(organization_id bigint, email text,
                                                       admin boolean DEFAULT false, analyst boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
-- Bringing an existing account into an organization is the operator's: an organization admin could otherwise
-- probe which emails have accounts elsewhere. Organization admins create their people with create_user.
DECLARE
    who bigint;
BEGIN
    PERFORM core.require_operator();
    IF NOT EXISTS (SELECT 1 FROM core.organization g WHERE g.id = organization_id) THEN
        RAISE EXCEPTION 'organization % not found', organization_id USING ERRCODE = 'P0002';
    END IF;
    SELECT u.id INTO who FROM auth."user" u
     WHERE u.email OPERATOR(public.=) auth.email_key(add_organization_member.email)::public.citext;
    IF who IS NULL THEN
        RAISE EXCEPTION 'no account has the email %', email USING ERRCODE = 'P0002';
    END IF;
    PERFORM core.in_organization(organization_id);
    INSERT INTO core.org_member (organization_id, user_id, admin, analyst)
    VALUES (organization_id, who, coalesce(admin, false), coalesce(analyst, false))
    ON CONFLICT ON CONSTRAINT org_member_pkey
    DO UPDATE SET admin = EXCLUDED.admin, analyst = EXCLUDED.analyst;
    PERFORM core.audit('add_organization_member', 'organization', organization_id, NULL,
                       jsonb_build_object('user_id', who, 'admin', coalesce(admin, false),
                                          'analyst', coalesce(analyst, false)));
    RETURN core.user_json(who, ARRAY[organization_id]);
END
$$;
COMMENT ON FUNCTION api.add_organization_member(bigint, text, boolean, boolean) IS
    'Operator: brings an existing account (by email) into an organization, optionally as its admin or analyst.';

CREATE OR REPLACE FUNCTION api.set_organization_roles(organization_id bigint, user_id bigint, admin boolean,
                                                      analyst boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    org bigint;
    before jsonb;
BEGIN
    PERFORM core.require_role('admin');
    org := core.admin_org(organization_id);
    IF NOT EXISTS (SELECT 1 FROM core.org_member o WHERE o.organization_id = org AND o.user_id = set_organization_roles.user_id) THEN
        RAISE EXCEPTION 'user % not found', user_id USING ERRCODE = 'P0002';
    END IF;
    IF user_id = auth.uid() AND NOT coalesce(admin, false) THEN
        PERFORM core.invalid('admin', 'you cannot remove your own admin role');
    END IF;
    before := core.user_json(user_id, ARRAY[org]);
    UPDATE core.org_member o SET admin = coalesce(set_organization_roles.admin, o.admin),
                                 analyst = coalesce(set_organization_roles.analyst, o.analyst)
     WHERE o.organization_id = org AND o.user_id = set_organization_roles.user_id;
    PERFORM core.audit('set_organization_roles', 'user', user_id, before, core.user_json(user_id, ARRAY[org]));
    RETURN core.user_json(user_id, ARRAY[org]);
END
$$;
COMMENT ON FUNCTION api.set_organization_roles(bigint, bigint, boolean, boolean) IS
    'Organization admin: makes a member of your organization its admin or analyst, or not (you cannot remove '
    'your own admin role).';

CREATE OR REPLACE FUNCTION api.remove_organization_member(organization_id bigint, user_id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    org bigint;
BEGIN
    PERFORM core.require_role('admin');
    IF organization_id IS NULL THEN
        PERFORM core.invalid('organization_id', 'is required');
    END IF;
    org := core.admin_org(organization_id);
    IF user_id = auth.uid() THEN
        PERFORM core.invalid('user_id', 'you cannot remove yourself');
    END IF;
    DELETE FROM core.org_member o WHERE o.organization_id = org AND o.user_id = remove_organization_member.user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % not found', user_id USING ERRCODE = 'P0002';
    END IF;
    PERFORM core.audit('remove_organization_member', 'organization', org, NULL,
                       jsonb_build_object('user_id', user_id));
    RETURN jsonb_build_object('organization_id', org, 'user_id', user_id, 'removed', true);
END
$$;
COMMENT ON FUNCTION api.remove_organization_member(bigint, bigint) IS
    'Organization admin: removes a person from your organization and from all its projects (their past work '
    'stays, attributed to them).';

GRANT EXECUTE ON FUNCTION api.create_organization(text), api.list_organizations(),
                          api.add_organization_member(bigint, text, boolean, boolean),
                          api.set_organization_roles(bigint, bigint, boolean, boolean),
                          api.remove_organization_member(bigint, bigint)
    TO dl_admin;

-- A database login for an analyst (psql, a BI tool): a LOGIN role in dl_analyst, mapped to their account, so
-- the analytics views show their organizations' rows. For the DBA: no application role may call it.
CREATE OR REPLACE FUNCTION auth.create_analyst_login(p_email text, p_login name, p_password text)
RETURNS name
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    who bigint;
BEGIN
    SELECT u.id INTO who FROM auth."user" u WHERE u.email OPERATOR(public.=) auth.email_key(p_email)::public.citext;
    IF who IS NULL THEN
        RAISE EXCEPTION 'no account has the email %', p_email USING ERRCODE = 'P0002';
    END IF;
    IF p_login !~ '^[a-z_][a-z0-9_]{2,62}$' OR p_login LIKE 'dl\_%' OR p_login = 'postgres' THEN
        PERFORM core.invalid('login', 'lower-case letters, digits and _ (not dl_...)');
    END IF;
    IF length(coalesce(p_password, '')) < 12 THEN
        PERFORM core.invalid('password', 'at least 12 characters');
    END IF;
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE dl_analyst', p_login, p_password);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), p_login);
    INSERT INTO auth.db_login (rolname, user_id) VALUES (p_login, who);
    RETURN p_login;
END
$$;
COMMENT ON FUNCTION auth.create_analyst_login(text, name, text) IS
    'DBA: creates a psql login for the account with this email; as it, SELECT * FROM analytics.<view> shows the '
    'rows of the organizations the account is analyst (or admin) of.';
REVOKE EXECUTE ON FUNCTION auth.create_analyst_login(text, name, text) FROM PUBLIC;
