-- Guards every api function starts with: who is calling, may they, and does the thing exist for them.

-- Bad input: 22023, the message starts with the field, and the field is in the error's COLUMN slot.
CREATE OR REPLACE FUNCTION core.invalid(p_field text, p_problem text) RETURNS void
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    RAISE EXCEPTION '%: %', p_field, p_problem USING ERRCODE = '22023', COLUMN = p_field;
END
$$;
COMMENT ON FUNCTION core.invalid(text, text) IS
    'Raises 22023 "<field>: <problem>" with the field in COLUMN (the HTTP layer answers 400 with details.field): '
    'how every function refuses bad input.';

CREATE OR REPLACE FUNCTION core.require_signed_in() RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
DECLARE
    me bigint := auth.uid();
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'sign in first' USING ERRCODE = '42501';  -- 401 for an anonymous caller
    END IF;
    RETURN me;
END
$$;
COMMENT ON FUNCTION core.require_signed_in() IS 'The caller''s id, or 42501 when nobody is signed in.';

CREATE OR REPLACE FUNCTION core.require_role(p_role auth.app_role) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = '' AS $$
DECLARE
    me bigint := core.require_signed_in();
BEGIN
    IF NOT auth.has_role(p_role) THEN
        RAISE EXCEPTION 'permission denied: this needs the % role', p_role USING ERRCODE = '42501';
    END IF;
    RETURN me;
END
$$;
COMMENT ON FUNCTION core.require_role(auth.app_role) IS
    'The caller''s id, or 42501 unless they hold the role in some project (admin: or administer an '
    'organization). The project-level check (core.require_project_role, core.lock_item_as) comes after it.';

CREATE OR REPLACE FUNCTION core.in_organization(p_organization bigint) RETURNS void
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    -- read by core.audit: the organization whose admins may read the events of this transaction
    PERFORM set_config('dl.organization', coalesce(p_organization::text, ''), true);
END
$$;
COMMENT ON FUNCTION core.in_organization(bigint) IS
    'Names the organization the current action happens in; core.audit records it on every event.';

CREATE OR REPLACE FUNCTION core.role_in(p_role text, p_project bigint) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
-- One probe of the membership keys: the project's organization when the active caller holds the role there
-- (member, annotator, reviewer, admin; an organization admin is admin and member of its projects), else NULL.
-- The hot-path form of "p_project = ANY (auth.projects_as(p_role))".
BEGIN
    RETURN (SELECT p.organization_id
              FROM core.project p
              JOIN auth."user" u ON u.id = auth.uid() AND u.active
              LEFT JOIN core.project_member m ON m.project_id = p.id AND m.user_id = u.id
              LEFT JOIN core.org_member o ON o.organization_id = p.organization_id AND o.user_id = u.id
             WHERE p.id = p_project
               AND CASE p_role WHEN 'annotator' THEN coalesce(m.annotator, false)
                               WHEN 'reviewer' THEN coalesce(m.reviewer, false)
                               WHEN 'admin' THEN coalesce(m.admin, false) OR coalesce(o.admin, false)
                               WHEN 'member' THEN m.user_id IS NOT NULL OR coalesce(o.admin, false)
                               ELSE false END);
END
$$;
COMMENT ON FUNCTION core.role_in(text, bigint) IS
    'The project''s organization when the caller holds the role in the project, else NULL (one indexed probe).';

CREATE OR REPLACE FUNCTION core.require_project_role(p_role text, p_project bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = '' AS $$
-- A project where the caller does not hold the role answers exactly like one that does not exist.
DECLARE
    me bigint := core.require_signed_in();
    org bigint := core.role_in(p_role, p_project);
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION 'project % not found', p_project USING ERRCODE = 'P0002';
    END IF;
    PERFORM core.in_organization(org);
    RETURN me;
END
$$;
COMMENT ON FUNCTION core.require_project_role(text, bigint) IS
    'The caller''s id when they hold the role (member, annotator, reviewer, admin) in the project; P0002 '
    '"project not found" otherwise.';

CREATE OR REPLACE FUNCTION core.admin_of(p_project bigint) RETURNS boolean
LANGUAGE plpgsql SET search_path = '' AS $$
-- For guards that find the project through another row (a rule, an image, a flag): is the caller its admin?
BEGIN
    IF p_project IS NULL OR NOT p_project = ANY (auth.projects_as('admin')) THEN
        RETURN false;
    END IF;
    PERFORM core.in_organization((SELECT p.organization_id FROM core.project p WHERE p.id = p_project));
    RETURN true;
END
$$;
COMMENT ON FUNCTION core.admin_of(bigint) IS
    'True when the caller administers the project (project admin, or admin of its organization).';

CREATE OR REPLACE FUNCTION core.caller(p_role text, p_project bigint) RETURNS core.actor
LANGUAGE plpgsql SET search_path = '' AS $$
-- The hot-path guard: one query for "signed in, active, holds the role in this project". An organization admin
-- acts as admin of every project of the organization.
DECLARE
    me bigint := core.require_signed_in();
    a core.actor;
    allowed boolean;
BEGIN
    SELECT u.id, u.on_vacation, coalesce(m.review_level, 1), coalesce(m.expertise, '{}'), p.organization_id,
           CASE p_role WHEN 'annotator' THEN m.annotator WHEN 'reviewer' THEN m.reviewer
                       WHEN 'member' THEN m.user_id IS NOT NULL OR o.admin
                       WHEN 'admin' THEN m.admin OR o.admin ELSE false END
      INTO a.id, a.on_vacation, a.review_level, a.expertise, a.organization_id, allowed
      FROM auth."user" u
      JOIN core.project p ON p.id = p_project
      LEFT JOIN core.project_member m ON m.project_id = p.id AND m.user_id = u.id
      LEFT JOIN core.org_member o ON o.organization_id = p.organization_id AND o.user_id = u.id
     WHERE u.id = me AND u.active;
    IF NOT coalesce(allowed, false) THEN
        RAISE EXCEPTION 'project % not found', p_project USING ERRCODE = 'P0002';
    END IF;
    PERFORM core.in_organization(a.organization_id);
    RETURN a;
END
$$;
COMMENT ON FUNCTION core.caller(text, bigint) IS
    'The caller as they act in the project (core.actor) when they hold the role there; P0002 otherwise.';

CREATE OR REPLACE FUNCTION core.require_member(p_project bigint) RETURNS void
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    PERFORM core.require_project_role('member', p_project);
END
$$;
COMMENT ON FUNCTION core.require_member(bigint) IS
    'P0002 "project not found" unless the caller belongs to the project (any role, or its organization''s admin).';

CREATE OR REPLACE FUNCTION core.item_not_found(p_item bigint) RETURNS void
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    RAISE EXCEPTION 'work item % not found', p_item USING ERRCODE = 'P0002';
END
$$;
COMMENT ON FUNCTION core.item_not_found(bigint) IS
    'Raises P0002 "work item <id> not found": the one answer for an item that does not exist and for one the '
    'caller may not see or act on.';

CREATE OR REPLACE FUNCTION core.lost_lock(p_item bigint) RETURNS void
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    RAISE EXCEPTION 'you no longer hold work item %', p_item USING ERRCODE = 'PT409',
        DETAIL = 'The lock expired or the item moved on.',
        HINT = 'Call next_item: your own expired item is handed back to you if nobody took it.';
END
$$;

CREATE OR REPLACE FUNCTION core.lock_item(p_item bigint) RETURNS core.work_item
LANGUAGE plpgsql SET search_path = '' AS $$
-- Every action on one item starts here: the row lock first, then decisions. An item the caller may not see
-- (auth.sees_work_item, the same rule as the row-level security policy) does not exist for them: 404, never a 409
-- that would confirm another annotator's item is there. Items they may see but not act on answer 409 later.
DECLARE
    it core.work_item;
BEGIN
    SELECT * INTO it FROM core.work_item w WHERE w.id = p_item FOR UPDATE;
    IF FOUND AND (it.annotator_id = auth.uid() OR it.assignee_id = auth.uid()) THEN
        RETURN it;  -- the caller's own item (the policy's first two cases, without its planning cost)
    END IF;
    IF NOT FOUND OR NOT auth.sees_work_item(it.annotator_id, it.assignee_id, it.project_id, it.status, it.id,
                                            it.image_id) THEN
        PERFORM core.item_not_found(p_item);
    END IF;
    RETURN it;
END
$$;
COMMENT ON FUNCTION core.lock_item(bigint) IS
    'Locks a work item the caller may see (auth.sees_work_item); P0002 "work item not found" otherwise.';

CREATE OR REPLACE FUNCTION core.lock_item_as(p_item bigint, p_role text) RETURNS core.work_item
LANGUAGE plpgsql SET search_path = '' AS $$
-- An item the caller sees but whose project they no longer hold the role in (revoked since) is not theirs to act
-- on: it answers like a missing item too.
DECLARE
    it core.work_item := core.lock_item(p_item);
    org bigint := core.role_in(p_role, it.project_id);
BEGIN
    IF org IS NULL THEN
        PERFORM core.item_not_found(p_item);
    END IF;
    PERFORM core.in_organization(org);
    RETURN it;
END
$$;
COMMENT ON FUNCTION core.lock_item_as(bigint, text) IS
    'core.lock_item, and the caller must hold the role (annotator, reviewer, admin) in the item''s project.';

CREATE OR REPLACE FUNCTION core.lock_held_item(p_item bigint, p_me bigint) RETURNS core.work_item
LANGUAGE plpgsql SET search_path = '' AS $$
-- The caller must hold the item: in_progress, theirs, lock not expired, and still be an annotator of the project.
DECLARE
    it core.work_item := core.lock_item_as(p_item, 'annotator');
BEGIN
    IF it.status <> 'in_progress' OR it.assignee_id IS DISTINCT FROM p_me OR it.lock_expires_at <= now() THEN
        PERFORM core.lost_lock(p_item);
    END IF;
    RETURN it;
END
$$;
COMMENT ON FUNCTION core.lock_held_item(bigint, bigint) IS
    'The work item, locked as core.lock_item_as(item, ''annotator'') does, when p_me holds it now (in_progress, '
    'theirs, lock not expired); PT409 otherwise. The guard of heartbeat, save_draft, submit_annotation, '
    'reject_image and release_item.';

CREATE OR REPLACE FUNCTION core.extend_lock(p_item core.work_item) RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
DECLARE
    expires timestamptz;
BEGIN
    UPDATE core.work_item w
       SET lock_expires_at = now() + make_interval(mins => (SELECT p.lock_minutes FROM core.project p
                                                              WHERE p.id = p_item.project_id))
     WHERE w.id = p_item.id
    RETURNING w.lock_expires_at INTO expires;
    RETURN expires;
END
$$;
COMMENT ON FUNCTION core.extend_lock(core.work_item) IS
    'Extends the lock of a held item to the project''s lock_minutes from now; returns the new expiry (heartbeat, '
    'save_draft).';

-- The guards that invoker functions (item_detail, search_taxonomy, open_flags ... running as the caller) reach.
GRANT EXECUTE ON FUNCTION core.require_project_role(text, bigint), core.in_organization(bigint), core.role_in(text, bigint)
    TO dl_annotator, dl_reviewer, dl_admin, dl_analyst;

CREATE OR REPLACE FUNCTION core.require_own_org(p_organization bigint, p_missing text) RETURNS void
LANGUAGE plpgsql SET search_path = '' AS $$
-- An object (a key, a webhook) of an organization the caller administers themselves, the operator no exception;
-- otherwise P0002 with p_missing, exactly as if it did not exist. Names the organization for the audit.
BEGIN
    IF p_organization IS NULL OR NOT p_organization = ANY (auth.admin_orgs()) THEN
        RAISE EXCEPTION '%', p_missing USING ERRCODE = 'P0002';
    END IF;
    PERFORM core.in_organization(p_organization);
END
$$;
COMMENT ON FUNCTION core.require_own_org(bigint, text) IS
    'P0002 with the given message unless the caller administers the organization (a NULL one: not found); then '
    'names it as the organization the action happens in.';
