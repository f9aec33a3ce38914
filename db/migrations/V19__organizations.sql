-- Organizations and per-project roles: the organization and the project are the walls.
--
-- Before: one global set of roles per person (auth."user".roles), so an admin of one project could reset any
-- account's password and read every project's counts. Now:
--   core.organization      owns projects;
--   core.org_member        who belongs to an organization, and who administers it (org admin) or reads its
--                          metrics (analyst);
--   core.project_member    who works in a project, as annotator, reviewer (with a review level and expertise
--                          tags) and/or project admin;
--   auth."user".operator   the installation's operator(s): create organizations and bring people into them.
-- Every check reads these tables at the caller's request (auth.request_role picks the SQL role from them; the
-- policies and api functions decide per project), so a role granted or revoked applies at the next request.

-- A signed-in person who holds no role anywhere yet (just created, or between projects) still is someone: they may
-- see who they are, change their password and sign out. dl_member is that kind of caller.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'dl_member') THEN
        CREATE ROLE dl_member NOLOGIN;
    END IF;
END
$$;
GRANT dl_member TO dl_authenticator;
GRANT USAGE ON SCHEMA api, auth TO dl_member;

CREATE TABLE core.organization (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    created_by  bigint REFERENCES auth."user" (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE core.organization IS
    'A hospital, research group or partner: owns projects; nothing of one organization is visible to another.';

CREATE TABLE core.org_member (
    organization_id bigint NOT NULL REFERENCES core.organization (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES auth."user" (id),
    admin           boolean NOT NULL DEFAULT false,
    analyst         boolean NOT NULL DEFAULT false,
    added_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX org_member_user_idx ON core.org_member (user_id, organization_id);
COMMENT ON TABLE core.org_member IS
    'Who belongs to an organization; admin: manages its people and projects; analyst: reads its metrics.';

ALTER TABLE auth."user" ADD COLUMN operator boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN auth."user".operator IS
    'Installation operator: creates organizations and brings existing accounts into them. Granted in SQL by the '
    'DBA (UPDATE auth."user" SET operator = true ...) or by the demo seed; sees no project data by itself.';

-- Projects belong to an organization; project names are unique within it (a global UNIQUE would tell one
-- organization the names of another's projects through a 409).
INSERT INTO core.organization (name) VALUES ('Default organization');
ALTER TABLE core.project ADD COLUMN organization_id bigint REFERENCES core.organization (id);
UPDATE core.project SET organization_id = (SELECT min(id) FROM core.organization);
ALTER TABLE core.project ALTER COLUMN organization_id SET NOT NULL;
ALTER TABLE core.project DROP CONSTRAINT project_name_key;
ALTER TABLE core.project ADD CONSTRAINT project_name_per_organization UNIQUE (organization_id, name);
CREATE INDEX project_organization_idx ON core.project (organization_id);

-- Roles per project. Review level and expertise move with them: a reviewer may be level 2 in one project and
-- level 1 in another.
ALTER TABLE core.project_member
    ADD COLUMN annotator    boolean NOT NULL DEFAULT false,
    ADD COLUMN reviewer     boolean NOT NULL DEFAULT false,
    ADD COLUMN admin        boolean NOT NULL DEFAULT false,
    ADD COLUMN review_level smallint NOT NULL DEFAULT 1 CONSTRAINT project_member_review_level CHECK (review_level IN (1, 2)),
    ADD COLUMN expertise    text[] NOT NULL DEFAULT '{}';
COMMENT ON TABLE core.project_member IS
    'Who works in a project and as what: annotator, reviewer (review level, expertise tags), project admin. '
    'A member with no role sees the project but can do nothing in it.';

-- Today's data: everyone joins the default organization; global admins administer it and analysts read it;
-- each person's global roles become their roles in the projects they belong to.
INSERT INTO core.org_member (organization_id, user_id, admin, analyst)
SELECT (SELECT min(id) FROM core.organization), u.id, 'admin' = ANY (u.roles), 'analyst' = ANY (u.roles)
  FROM auth."user" u;
UPDATE core.project_member m
   SET annotator = 'annotator' = ANY (u.roles), reviewer = 'reviewer' = ANY (u.roles),
       admin = 'admin' = ANY (u.roles), review_level = u.review_level, expertise = u.expertise
  FROM auth."user" u WHERE u.id = m.user_id;

-- Project membership needs organization membership: nobody works in a project of an organization they are not in.
CREATE FUNCTION core.project_member_in_org() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM core.org_member o JOIN core.project p ON p.organization_id = o.organization_id
                    WHERE p.id = NEW.project_id AND o.user_id = NEW.user_id) THEN
        RAISE EXCEPTION 'user % not found', NEW.user_id USING ERRCODE = 'P0002',
            DETAIL = 'A project member must belong to the project''s organization.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER project_member_in_org BEFORE INSERT OR UPDATE OF user_id, project_id ON core.project_member
    FOR EACH ROW EXECUTE FUNCTION core.project_member_in_org();

-- Leaving an organization ends the person's roles in its projects.
CREATE FUNCTION core.org_member_left() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    DELETE FROM core.project_member m USING core.project p
     WHERE p.id = m.project_id AND p.organization_id = OLD.organization_id AND m.user_id = OLD.user_id;
    RETURN OLD;
END
$$;
CREATE TRIGGER org_member_left AFTER DELETE ON core.org_member
    FOR EACH ROW EXECUTE FUNCTION core.org_member_left();

-- The global roles are gone; nothing reads them any more (the repeatables applied after this file read the
-- tables above).
REVOKE SELECT ON auth."user" FROM dl_annotator, dl_reviewer, dl_admin;
ALTER TABLE auth."user" DROP COLUMN roles, DROP COLUMN expertise, DROP COLUMN review_level;
GRANT SELECT (id, email, display_name, active, on_vacation) ON auth."user" TO dl_annotator, dl_reviewer, dl_admin;

-- Analysts who use psql log in as a database role of their own; this maps it to their account, so the analytics
-- views filter by the organizations they are analysts of (auth.create_analyst_login makes one).
CREATE TABLE auth.db_login (
    rolname     name PRIMARY KEY,
    user_id     bigint NOT NULL UNIQUE REFERENCES auth."user" (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE auth.db_login IS 'Database login roles of analysts (psql, BI tools) and the account each stands for.';
REVOKE ALL ON auth.db_login FROM PUBLIC;

-- The claim helpers, now per project. They stay the (SELECT f()) init plans the policies already use, so each runs
-- once per query. SECURITY DEFINER: they read membership tables the caller may not read.

CREATE FUNCTION auth.me() RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- The caller: the request's claims (the HTTP layer), else the account mapped to this database login (psql).
BEGIN
    RETURN coalesce(auth.uid(), (SELECT l.user_id FROM auth.db_login l WHERE l.rolname = session_user));
END
$$;
COMMENT ON FUNCTION auth.me() IS
    'The calling account: from the request claims, or for a psql login from auth.db_login; NULL when anonymous.';

CREATE FUNCTION auth.projects_as(p_role text) RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- p_role: 'member' (any membership), 'annotator', 'reviewer', or 'admin'. An organization admin is admin (and
-- member) of every project of the organization; an inactive account holds nothing.
DECLARE
    me bigint := auth.uid();
BEGIN
    IF me IS NULL OR NOT EXISTS (SELECT 1 FROM auth."user" u WHERE u.id = me AND u.active) THEN
        RETURN '{}';
    END IF;
    RETURN (SELECT coalesce(array_agg(DISTINCT x.project_id), '{}') FROM (
        SELECT m.project_id FROM core.project_member m
         WHERE m.user_id = me
           AND CASE p_role WHEN 'member' THEN true WHEN 'annotator' THEN m.annotator
                           WHEN 'reviewer' THEN m.reviewer WHEN 'admin' THEN m.admin ELSE false END
        UNION ALL
        SELECT p.id FROM core.project p JOIN core.org_member o ON o.organization_id = p.organization_id
         WHERE o.user_id = me AND o.admin AND p_role IN ('member', 'admin')) x);
END
$$;
COMMENT ON FUNCTION auth.projects_as(text) IS
    'The projects where the caller holds a role (member, annotator, reviewer, admin); organization admins are '
    'admins of all their organization''s projects. Policies use (SELECT auth.projects_as(...)): once per query.';

CREATE OR REPLACE FUNCTION auth.my_projects() RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    RETURN auth.projects_as('member');
END
$$;

-- "Holds the role somewhere": what GRANT-level checks (core.require_role) ask before the project-level check.
CREATE OR REPLACE FUNCTION auth.has_role(wanted auth.app_role) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- One indexed probe per kind (it guards many calls): no array of projects is built.
DECLARE
    me bigint := auth.uid();
BEGIN
    IF NOT EXISTS (SELECT 1 FROM auth."user" u WHERE u.id = me AND u.active) THEN
        RETURN false;
    END IF;
    RETURN CASE wanted
        WHEN 'annotator' THEN EXISTS (SELECT 1 FROM core.project_member m WHERE m.user_id = me AND m.annotator)
        WHEN 'reviewer' THEN EXISTS (SELECT 1 FROM core.project_member m WHERE m.user_id = me AND m.reviewer)
        WHEN 'admin' THEN EXISTS (SELECT 1 FROM core.project_member m WHERE m.user_id = me AND m.admin)
                          OR EXISTS (SELECT 1 FROM core.org_member o WHERE o.user_id = me AND o.admin)
                          OR EXISTS (SELECT 1 FROM auth."user" u WHERE u.id = me AND u.operator)
        WHEN 'analyst' THEN EXISTS (SELECT 1 FROM core.org_member o WHERE o.user_id = me AND o.analyst)
        ELSE false END;
END
$$;
COMMENT ON FUNCTION auth.has_role(auth.app_role) IS
    'True when the active caller holds the role in some project (admin: or administers an organization, or is '
    'the operator; analyst: in some organization). Project-level checks come after it.';

CREATE FUNCTION auth.admin_orgs() RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    RETURN (SELECT coalesce(array_agg(o.organization_id), '{}') FROM core.org_member o
              JOIN auth."user" u ON u.id = o.user_id WHERE o.user_id = auth.uid() AND o.admin AND u.active);
END
$$;
COMMENT ON FUNCTION auth.admin_orgs() IS 'The organizations the caller administers.';

CREATE FUNCTION auth.analyst_projects() RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- psql analysts are found through auth.db_login (auth.me); the HTTP layer sets the claims.
BEGIN
    RETURN (SELECT coalesce(array_agg(p.id), '{}') FROM core.project p
              JOIN core.org_member o ON o.organization_id = p.organization_id
              JOIN auth."user" u ON u.id = o.user_id
             WHERE o.user_id = auth.me() AND (o.analyst OR o.admin) AND u.active);
END
$$;
COMMENT ON FUNCTION auth.analyst_projects() IS
    'The projects whose metrics the caller may read: every project of the organizations they are analyst or '
    'admin of.';

CREATE FUNCTION auth.annotated_image(p_image bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- Double-read independence: whoever annotated an image is shown no other read of it before it is done.
BEGIN
    RETURN EXISTS (SELECT 1 FROM core.work_item o WHERE o.image_id = p_image AND o.annotator_id = auth.uid());
END
$$;
COMMENT ON FUNCTION auth.annotated_image(bigint) IS 'True when the caller annotated (or holds a read of) the image.';

-- Who may see a work item, per project: annotators what they annotate or hold; reviewers of the project items in
-- review - never a read of an image they annotated themselves - and those they reviewed; the project's admins
-- every item.
CREATE FUNCTION auth.sees_work_item(annotator bigint, assignee bigint, project bigint, status core.item_status,
                                    item bigint, image bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(annotator = (SELECT auth.uid())
                    OR assignee = (SELECT auth.uid())
                    OR (project = ANY ((SELECT auth.projects_as('reviewer'))::bigint[])
                        AND ((status = 'review' AND NOT auth.annotated_image(image)) OR auth.has_reviewed(item)))
                    OR project = ANY ((SELECT auth.projects_as('admin'))::bigint[]),
                    false)
$$;
COMMENT ON FUNCTION auth.sees_work_item(bigint, bigint, bigint, core.item_status, bigint, bigint) IS
    'Annotators see the items they annotate or hold; reviewers of a project its items in review (never a read of '
    'an image they annotated) and those they reviewed; the project''s admins every item of it.';

GRANT EXECUTE ON FUNCTION auth.me(), auth.projects_as(text), auth.admin_orgs(), auth.analyst_projects(),
                          auth.annotated_image(bigint),
                          auth.sees_work_item(bigint, bigint, bigint, core.item_status, bigint, bigint)
    TO dl_anon, dl_annotator, dl_reviewer, dl_admin, dl_analyst;

DROP POLICY visible_items ON core.work_item;
CREATE POLICY visible_items ON core.work_item FOR SELECT TO dl_annotator, dl_reviewer, dl_admin
    USING (auth.sees_work_item(annotator_id, assignee_id, project_id, status, id, image_id));
DROP FUNCTION auth.sees_item(bigint, bigint, bigint, core.item_status, bigint);

-- People: yourself, your project colleagues, and the people of the organizations you administer.
DROP POLICY self_or_colleague ON auth."user";
CREATE POLICY self_or_colleague ON auth."user" FOR SELECT TO dl_annotator, dl_reviewer, dl_admin USING (
    id = (SELECT auth.uid())
    OR EXISTS (SELECT 1 FROM core.org_member o WHERE o.user_id = "user".id
                                                AND o.organization_id = ANY ((SELECT auth.admin_orgs())::bigint[]))
    OR EXISTS (SELECT 1 FROM core.project_member theirs
                WHERE theirs.user_id = "user".id
                  AND theirs.project_id = ANY ((SELECT auth.projects_as('member'))::bigint[])));

-- Rules and drafts: the project's admins (no longer "an admin somewhere who is a member here").
DROP POLICY admins ON core.work_rule;
CREATE POLICY admins ON core.work_rule FOR SELECT TO dl_admin
    USING (project_id = ANY ((SELECT auth.projects_as('admin'))::bigint[]));
DROP POLICY own_or_admin ON core.annotation_draft;
CREATE POLICY own_or_admin ON core.annotation_draft FOR SELECT TO dl_annotator, dl_reviewer, dl_admin USING (
    author_id = (SELECT auth.uid())
    OR EXISTS (SELECT 1 FROM core.work_item w
                WHERE w.id = item_id AND w.project_id = ANY ((SELECT auth.projects_as('admin'))::bigint[])));

-- Organizations: members see theirs.
ALTER TABLE core.organization ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.org_member ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON core.organization, core.org_member TO dl_annotator, dl_reviewer, dl_admin;
CREATE POLICY members ON core.organization FOR SELECT TO dl_annotator, dl_reviewer, dl_admin
    USING (EXISTS (SELECT 1 FROM core.org_member o WHERE o.organization_id = organization.id
                                                    AND o.user_id = (SELECT auth.uid())));
CREATE POLICY admins ON core.org_member FOR SELECT TO dl_annotator, dl_reviewer, dl_admin
    USING (user_id = (SELECT auth.uid()) OR organization_id = ANY ((SELECT auth.admin_orgs())::bigint[]));

-- The audit trail: an admin reads the events of their organizations. core.audit records the organization the
-- action happened in (the guards name it); events written before this migration belong to the default
-- organization, which this migration created first (id 1) - history is not rewritten to say so.
ALTER TABLE audit.event ADD COLUMN organization_id bigint;
CREATE INDEX event_organization_idx ON audit.event (organization_id, id);
DROP POLICY admins ON audit.event;
CREATE POLICY admins ON audit.event FOR SELECT TO dl_admin
    USING (coalesce(organization_id, 1) = ANY ((SELECT auth.admin_orgs())::bigint[]));

-- Analysts read the metrics through views that keep their organizations' rows (schema analytics, below, made by
-- the metrics repeatable); the materialized views themselves are no longer theirs to read.
CREATE SCHEMA analytics;
COMMENT ON SCHEMA analytics IS
    'The metrics, as analysts see them: one security-barrier view per metrics view, filtered to the projects of '
    'the organizations the caller is analyst of.';
REVOKE SELECT ON ALL TABLES IN SCHEMA metrics FROM dl_analyst, dl_admin;
REVOKE USAGE ON SCHEMA metrics FROM dl_analyst, dl_admin;
GRANT USAGE ON SCHEMA analytics TO dl_analyst;
GRANT USAGE ON SCHEMA auth TO dl_analyst;

-- What the hot-path guard (core.caller) returns: the caller as they act in one project.
CREATE TYPE core.actor AS (
    id              bigint,
    on_vacation     boolean,
    review_level    smallint,
    expertise       text[],
    organization_id bigint
);
COMMENT ON TYPE core.actor IS 'A caller in one project: id, vacation, review level and expertise there, organization.';

-- Functions whose signature or meaning changed with per-project roles; their repeatables create the new ones.
DROP FUNCTION IF EXISTS core.caller(auth.app_role, bigint);
DROP FUNCTION IF EXISTS core.gold_check_for(auth."user", bigint);
DROP FUNCTION IF EXISTS core.user_json(bigint);
DROP FUNCTION IF EXISTS core.check_roles(text[]);
DROP FUNCTION IF EXISTS api.set_user_roles(bigint, text[], integer, text[], boolean);  -- api.set_project_roles, set_user_active
DROP FUNCTION IF EXISTS api.create_user(text, text, text, text[], text[], integer);
DROP FUNCTION IF EXISTS api.add_project_member(bigint, bigint);
DROP FUNCTION IF EXISTS api.list_users();
DROP FUNCTION IF EXISTS api.create_project(text, text, integer, integer);
-- monitoring counts are no longer an anonymous endpoint: /metrics reads ops.* as the app's login role
DROP FUNCTION IF EXISTS api.queue_stats();
DROP FUNCTION IF EXISTS api.ai_queue_stats();
CREATE SCHEMA ops;
COMMENT ON SCHEMA ops IS 'Figures for the app''s own monitoring (/metrics), callable by its login role only.';
REVOKE ALL ON SCHEMA ops FROM PUBLIC;
GRANT USAGE ON SCHEMA ops TO dl_authenticator;
